//! Integration tests of the repository endpoint through the router itself (no sockets).

mod access;
mod api;
mod files;
mod keys;
mod owners;
mod stores;
mod support;
