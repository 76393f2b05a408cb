//! `hexrepo key create|list|revoke`: repository keys, kept hashed with the repository
//! (`.hexrepo/keys.json`). The secret is printed once, at creation.

use std::process::ExitCode;

use hexrepo_registry::keys::{KeyStore, Permission};

use crate::settings::{Flags, Settings};

/// Arguments of `hexrepo key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a key and print its secret (shown only this once).
    Create {
        /// A name for the key [default: key-UNIXTIME].
        #[arg(value_name = "NAME")]
        key_name: Option<String>,
        /// Only read the repository (what mix and rebar3 need to fetch packages).
        #[arg(long, conflicts_with = "publish_only")]
        read_only: bool,
        /// Only use the API (publish, retire, owners), without reading the repository: with
        /// `read_auth = auto` such a key leaves an open repository open.
        #[arg(long)]
        publish_only: bool,
        #[command(flatten)]
        flags: Flags,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        flags: Flags,
    },
    /// Revoke a key by name.
    Revoke {
        /// The key's name.
        #[arg(value_name = "NAME")]
        key_name: String,
        #[command(flatten)]
        flags: Flags,
    },
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (Action::Create { flags, .. } | Action::List { flags } | Action::Revoke { flags, .. }) =
        &args.action;
    let settings = Settings::resolve(flags)?;
    let store = KeyStore::new(&settings.open_store()?);
    match &args.action {
        Action::Create {
            key_name,
            read_only,
            publish_only,
            ..
        } => {
            let name = key_name.clone().unwrap_or_else(|| {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                format!("key-{secs}")
            });
            let permissions: &[Permission] = if *read_only {
                &[Permission::Repository]
            } else if *publish_only {
                &[Permission::ApiWrite]
            } else {
                &[Permission::Repository, Permission::ApiWrite]
            };
            let (record, secret) = store.create(&name, permissions, Some("cli"))?;
            eprintln!(
                "created key {:?} with permissions {:?}; its secret (shown only now):",
                record.name, record.permissions
            );
            println!("{secret}");
        }
        Action::List { .. } => {
            for key in store.load()? {
                let state = key
                    .revoked_at
                    .map_or_else(|| "active".to_owned(), |t| format!("revoked at {t}"));
                println!(
                    "{}\t{:?}\tcreated at {}\t{state}",
                    key.name, key.permissions, key.created_at
                );
            }
        }
        Action::Revoke { key_name, .. } => {
            store.revoke(key_name)?;
            eprintln!("revoked key {key_name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
