//! Integration tests of the repository endpoint through the router itself (no sockets).

mod access;
mod files;
mod support;
