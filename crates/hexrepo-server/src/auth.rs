//! Who may read the repository: HTTP basic auth (the guide's `AUTH_USERNAME`/`AUTH_PASSWORD`)
//! and repository keys sent bare in `Authorization`, as `mix hex.repo add --auth-key` and
//! rebar3's `repo_key` do (HEX-PROTOCOL.md §1.7). Every comparison is constant-time; no
//! credential is ever logged.
//!
//! 401 or 403: a request with no credentials gets 401 with a `WWW-Authenticate` challenge, so
//! curl and browsers work; a request with wrong credentials gets 403. Current Hex answers a 401
//! by offering an interactive hex.pm login, which is the wrong advice for a bad key, and a 403
//! is reported as a plain permission problem instead.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use hexfmt::checksum::Checksum;
use hexrepo_registry::keys::{KeyRecord, KeyStore, Permission, authenticate};

/// When reads need credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAuth {
    /// Required once basic credentials are configured or a repository key has been created
    /// (revoked keys count: revoking never opens the repository).
    Auto,
    /// Always required.
    Required,
    /// Never required (a public repository; keys still work for the API).
    Public,
}

/// The basic-auth pair, kept as a digest so it cannot be printed by accident.
#[derive(Clone)]
pub struct BasicCredentials {
    digest: Checksum,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicCredentials(redacted)")
    }
}

impl BasicCredentials {
    /// Credentials for `username` and `password`.
    pub fn new(username: &str, password: &str) -> BasicCredentials {
        BasicCredentials {
            digest: Checksum::sha256(format!("{username}:{password}").as_bytes()),
        }
    }

    fn matches(&self, user_colon_pass: &[u8]) -> bool {
        let presented = Checksum::sha256(user_colon_pass);
        verify_slices_are_equal(presented.as_bytes(), self.digest.as_bytes()).is_ok()
    }
}

/// The outcome of checking a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Go ahead; `Some(name)` when a key was used.
    Allowed(Option<String>),
    /// No credentials were sent but they are required: 401.
    Missing,
    /// The credentials are wrong, revoked or lack the permission: 403.
    Denied,
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No credentials.
    Anonymous,
    /// The basic-auth credentials of the configuration: the operator.
    Operator,
    /// An active key.
    Key(KeyRecord),
    /// Credentials that match nothing (wrong password, unknown or revoked key).
    Invalid,
}

/// Checks requests against the configured credentials and the repository's key store.
#[derive(Debug)]
pub struct Authenticator {
    mode: ReadAuth,
    basic: Option<BasicCredentials>,
    keys: Option<KeyStore>,
    loaded: Mutex<LoadedKeys>,
}

#[derive(Debug, Default)]
struct LoadedKeys {
    stamp: Option<(u64, i64, u64)>,
    keys: Arc<Vec<KeyRecord>>,
    /// The key file exists but cannot be read: fail closed until it is fixed.
    broken: bool,
}

impl Authenticator {
    /// An authenticator; `keys` is the repository's key store, when it has one.
    pub fn new(
        mode: ReadAuth,
        basic: Option<BasicCredentials>,
        keys: Option<KeyStore>,
    ) -> Authenticator {
        Authenticator {
            mode,
            basic,
            keys,
            loaded: Mutex::new(LoadedKeys::default()),
        }
    }

    /// Whether reading the repository needs credentials right now.
    pub fn read_requires_credentials(&self) -> bool {
        match self.mode {
            ReadAuth::Required => true,
            ReadAuth::Public => false,
            // Basic auth configured: no need to look at the key store on every request.
            ReadAuth::Auto if self.basic.is_some() => true,
            ReadAuth::Auto => {
                // Any repository key ever created keeps reads closed, revoked or not: revoking a
                // leaked key must never open the repository to everyone.
                let (keys, broken) = self.current_keys();
                broken
                    || keys
                        .iter()
                        .any(|k| k.permissions.contains(&Permission::Repository))
            }
        }
    }

    /// Who is asking: nobody, the basic-auth operator, a key, or someone with bad credentials.
    pub fn identify(&self, headers: &HeaderMap) -> Identity {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Identity::Anonymous;
        };
        let value = value.as_bytes();
        if let Some(encoded) = strip_prefix_ignore_case(value, b"basic ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii());
            return match (&self.basic, decoded) {
                (Some(basic), Ok(pair)) if basic.matches(&pair) => Identity::Operator,
                _ => Identity::Invalid,
            };
        }
        // Bare key (mix, rebar3), tolerating a `Bearer ` prefix some tools add.
        let secret = strip_prefix_ignore_case(value, b"bearer ").unwrap_or(value);
        let Ok(secret) = std::str::from_utf8(secret.trim_ascii()) else {
            return Identity::Invalid;
        };
        let (keys, _) = self.current_keys();
        authenticate(&keys, secret).map_or(Identity::Invalid, |key| Identity::Key(key.clone()))
    }

    /// Checks a request that needs `needed`; `required` says whether anonymous access is refused.
    /// The basic-auth operator may do everything.
    pub fn check(&self, headers: &HeaderMap, needed: Permission, required: bool) -> Access {
        match self.identify(headers) {
            Identity::Anonymous if required => Access::Missing,
            Identity::Anonymous | Identity::Operator => Access::Allowed(None),
            Identity::Key(key) if key.allows(needed) => Access::Allowed(Some(key.name)),
            Identity::Key(_) | Identity::Invalid => Access::Denied,
        }
    }

    /// The key store's records, re-read when its file changes, and whether the file is
    /// unreadable (then no key is accepted and reads require credentials: fail closed).
    fn current_keys(&self) -> (Arc<Vec<KeyRecord>>, bool) {
        let Some(store) = &self.keys else {
            return (Arc::default(), false);
        };
        let path: PathBuf = store.path();
        let stamp = std::fs::metadata(&path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt as _;
            (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.len())
        });
        let mut loaded = self.loaded.lock().expect("key cache lock");
        if loaded.stamp != stamp || stamp.is_none() && !loaded.keys.is_empty() {
            loaded.stamp = stamp;
            match store.load() {
                Ok(keys) => {
                    loaded.keys = Arc::new(keys);
                    loaded.broken = false;
                }
                Err(e) => {
                    tracing::error!(
                        "cannot read repository keys, refusing every key until fixed: {e}"
                    );
                    loaded.keys = Arc::default();
                    loaded.broken = true;
                }
            }
        }
        (loaded.keys.clone(), loaded.broken)
    }
}

fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &value[prefix.len()..])
}
