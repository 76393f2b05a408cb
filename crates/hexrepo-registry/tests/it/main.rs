//! Integration tests of the registry services, one binary (STYLE.md): each module owns a topic.

mod build;
mod hexpm_interop;
mod mirror;
mod publish;
mod support;
mod verify;
mod version_interop;
