//! Hex package formats, pure: the registry protobuf messages and their signed, gzipped
//! envelope; RSA keys, signatures and fingerprints; package tarballs (reader, validator and a
//! builder); `metadata.config` Erlang terms; versions and requirements.
//!
//! This crate does no IO, no networking and no async: every function takes bytes and returns
//! values, so it can be fuzzed, property-tested and reused by any server or client.
//! It implements HEX-PROTOCOL.md §1.2–1.4 (registry encoding and keys), §2 (schemas),
//! §3 (tarballs and metadata) and §7 (versions and requirements).
//!
//! Each parser has its own error enum (rather than one for the crate) because callers handle
//! them at different layers: a tarball error is a user's bad upload, a key error is config.

pub mod checksum;
pub mod docs;
pub mod etf;
pub mod keys;
pub mod metadata;
pub mod name;
pub mod proto;
pub mod registry;
pub mod requirement;
pub mod tarball;
pub mod term;
pub mod version;
