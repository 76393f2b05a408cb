//! Integration tests of the `hexrepo` binary, judged by real Hex clients (rebar3 and the `hex_core`
//! it bundles, through `tools/hex-core`) over a real static server (nginx, `tools/serve-static`).
//! Missing clients make the tests fail, never skip: `apt-get install -y erlang rebar3 nginx-light`.

mod api;
mod clients;
mod hexrepo_build;
mod interop;
mod mirror;
mod mirror_archive;
mod mirror_lazy;
mod mirror_progress;
mod mirror_resume;
mod mirror_schedule;
mod mirror_support;
mod mix;
mod push;
mod relay;
mod replicas;
mod serve;
mod serve_support;
mod support;
