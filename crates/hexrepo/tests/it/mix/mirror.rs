//! mix through hexrepo's lazy mirror of a local upstream named `hexpm` (built by `hexrepo build`
//! with a key of its own, which mix is told to trust with `mix hex.repo set hexpm
//! --public-key`): with `HEX_MIRROR`, and on a protected server, with credentials in the
//! `HEX_MIRROR` URL or `mix hex.repo set hexpm --url ... --auth-key KEY` (Hex sends
//! `HEX_MIRROR` no credentials of its own).

use std::path::Path;

use super::{Dep, Mix, Project, create_key};
use crate::mirror_support::{Upstream, served_upstream};
use crate::serve_support::HexrepoServer;
use crate::support::temp_dir;

/// `hexrepo serve --mirror` (lazy) of the upstream at `upstream_url`, with the extra `args`.
fn mirror_server(
    work: &Path,
    upstream: &Upstream,
    upstream_url: &str,
    args: &[&str],
) -> HexrepoServer {
    let key = upstream.public_key();
    let mirror = work.join("mirror");
    let mut all = vec![
        "--mirror",
        "--mirror-storage",
        mirror.to_str().expect("UTF-8 path"),
        "--upstream-url",
        upstream_url,
        "--upstream-public-key",
        key.to_str().expect("UTF-8 path"),
    ];
    all.extend_from_slice(args);
    HexrepoServer::start_in(work, &all, &[])
}

/// mix trusting the upstream's key for `hexpm`, and a project that needs alpha (alpha -> beta
/// -> gamma, all from `hexpm`).
fn mix_and_app(upstream: &Upstream) -> (Mix, Project) {
    let mix = Mix::new();
    let key = upstream.public_key();
    mix.ok(
        mix.home(),
        &[
            "hex.repo",
            "set",
            "hexpm",
            "--public-key",
            key.to_str().expect("UTF-8 path"),
        ],
    );
    let app = Project::new(
        &mix,
        mix.home(),
        "app",
        "0.1.0",
        &[Dep::hexpm("alpha", "~> 1.0")],
    );
    (mix, app)
}

fn assert_chain_fetched(output: &str) {
    for release in ["alpha 1.0.0", "beta 1.0.0", "gamma 1.1.0"] {
        assert!(output.contains(release), "{release} not fetched:\n{output}");
    }
}

#[test]
fn mix_resolves_through_the_mirror_with_hex_mirror() {
    let (upstream, nginx) = served_upstream();
    let work = temp_dir();
    let server = mirror_server(work.path(), &upstream, &nginx.url(), &[]);
    let (mut mix, app) = mix_and_app(&upstream);
    mix.set("HEX_MIRROR", &format!("{}/mirrors/hexpm", server.url()));
    assert_chain_fetched(&mix.ok(app.dir(), &["deps.get"]));
    assert!(
        nginx.access_log().contains("/tarballs/gamma-1.1.0.tar"),
        "the mirror fetched from upstream:\n{}",
        nginx.access_log()
    );
}

#[test]
fn mix_reaches_a_protected_mirror_with_a_key_or_credentials_in_the_url() {
    let (upstream, nginx) = served_upstream();
    let work = temp_dir();
    let server = mirror_server(
        work.path(),
        &upstream,
        &nginx.url(),
        &["--auth-username", "team", "--auth-password", "s3cret"],
    );
    let mirror_url = format!("{}/mirrors/hexpm", server.url());
    let key = create_key(work.path(), "reader", &["--read-only"]);

    // HEX_MIRROR carries no Hex credentials: refused (401), whatever key Hex holds.
    let (mut mix, app) = mix_and_app(&upstream);
    mix.set("HEX_MIRROR", &mirror_url);
    mix.set("HEX_REPOS_KEY", &key);
    let refused = mix.fails(app.dir(), &["deps.get"]);
    assert!(
        refused.contains("Failed to fetch record for alpha"),
        "{refused}"
    );
    // Credentials in its URL are sent (basic auth).
    let with_userinfo = format!(
        "{}/mirrors/hexpm",
        server.url_with_userinfo("team", "s3cret")
    );
    mix.set("HEX_MIRROR", &with_userinfo);
    assert_chain_fetched(&mix.ok(app.dir(), &["deps.get"]));

    // `hex.repo set hexpm --url --auth-key`, the key sent as it is (`--no-oauth-exchange`), or
    // first exchanged for a token at HEX_API_URL/oauth/token, which hexrepo answers when
    // HEX_API_URL points at it.
    let api_url = format!("{}/api", server.url());
    for (options, api) in [
        (&["--no-oauth-exchange"][..], None),
        (&[][..], Some(&api_url)),
    ] {
        let (mut mix, app) = mix_and_app(&upstream);
        mix.unset("HEX_MIRROR");
        if let Some(api) = api {
            mix.set("HEX_API_URL", api);
        }
        let mut args = vec![
            "hex.repo",
            "set",
            "hexpm",
            "--url",
            &mirror_url,
            "--auth-key",
            &key,
        ];
        args.extend_from_slice(options);
        mix.ok(mix.home(), &args);
        assert_chain_fetched(&mix.ok(app.dir(), &["deps.get"]));
    }
    assert!(
        server
            .log()
            .contains("method=POST path=/api/oauth/token status=200"),
        "{}",
        server.log()
    );
}
