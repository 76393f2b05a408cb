//! Integration tests of the repository endpoint through the router itself (no sockets).

mod access;
mod api;
mod files;
mod stores;
mod support;
