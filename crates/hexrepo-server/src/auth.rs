//! Who may read the repository: HTTP basic auth (the guide's `AUTH_USERNAME`/`AUTH_PASSWORD`)
//! and repository keys sent bare in `Authorization`, as `mix hex.repo add --auth-key` and
//! rebar3's `repo_key` do (HEX-PROTOCOL.md §1.7). Every comparison is constant-time; no
//! credential is ever logged.
//!
//! Keys are re-read when their file changes: on local disk checked with one `stat` per
//! request; on object stores refreshed in the background at most every [`KEYS_REFRESH`], so
//! a key created or revoked on another replica takes effect within that time. Until the first
//! read completes, and whenever the key file cannot be read, no key is accepted and reads
//! require credentials: it fails closed.
//!
//! 401 or 403: a request with no credentials gets 401 with a `WWW-Authenticate` challenge, so
//! curl and browsers work; a request with wrong credentials gets 403. Current Hex answers a 401
//! by offering an interactive hex.pm login, which is the wrong advice for a bad key, and a 403
//! is reported as a plain permission problem instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use hexfmt::checksum::Checksum;
use hexrepo_registry::keys::{KeyRecord, KeyStore, Permission, authenticate};
use hexrepo_store::{Fetched, StorageKey};

/// How often a server on an object store looks for changed keys.
pub const KEYS_REFRESH: Duration = Duration::from_secs(1);

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
    /// The username alone, which is no secret: the operator's identity as a package owner.
    username: String,
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
            username: username.to_owned(),
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
    loaded: Arc<Mutex<LoadedKeys>>,
    /// A background refresh (object stores) is running.
    refreshing: Arc<AtomicBool>,
}

#[derive(Debug)]
struct LoadedKeys {
    /// The key file's version token when read; `None`: there was no file.
    version: Option<String>,
    keys: Arc<Vec<KeyRecord>>,
    /// Never read yet, or the key file exists but cannot be read: fail closed.
    broken: bool,
    /// When the store was last asked.
    checked: Option<Instant>,
}

impl Authenticator {
    /// An authenticator; `keys` is the repository's key store, when it has one.
    pub fn new(
        mode: ReadAuth,
        basic: Option<BasicCredentials>,
        keys: Option<KeyStore>,
    ) -> Authenticator {
        let authenticator = Authenticator {
            mode,
            basic,
            keys,
            loaded: Arc::new(Mutex::new(LoadedKeys {
                version: None,
                keys: Arc::default(),
                broken: true,
                checked: None,
            })),
            refreshing: Arc::new(AtomicBool::new(false)),
        };
        // Read them now, so the first requests need not fail closed. Outside async code a
        // blocking read is fine on any store; inside, object stores are read in the background.
        if tokio::runtime::Handle::try_current().is_err() {
            authenticator.load_now();
        } else {
            authenticator.current_keys();
        }
        authenticator
    }

    /// Reads the key file now, blocking.
    fn load_now(&self) {
        let Some(store) = &self.keys else { return };
        let mut loaded = self.loaded.lock().expect("key cache lock");
        loaded.checked = Some(Instant::now());
        match store.load_with_meta() {
            Ok((keys, meta)) => {
                loaded.version = meta.map(|m| m.version);
                apply(&mut loaded, Ok(keys));
            }
            Err(e) => apply(&mut loaded, Err(e)),
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

    /// The keys as this server knows them now, revoked ones included (none while the key file
    /// cannot be read: fail closed).
    pub fn keys(&self) -> Arc<Vec<KeyRecord>> {
        self.current_keys().0
    }

    /// The operator's basic-auth username, when basic credentials are configured.
    pub fn operator_name(&self) -> Option<&str> {
        self.basic.as_ref().map(|b| b.username.as_str())
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
    ///
    /// When anonymous access is allowed, credentials this server does not know (or a key without
    /// the permission) are served as anonymous rather than refused: Hex 2.5.0 and 2.5.1 send the
    /// user's hex.pm OAuth token to every repository added with `mix hex.repo add`, and
    /// `HEX_TRUSTED_MIRROR_URL` does so on every version, so refusing them would lock those users
    /// out of an open repository. The request gains nothing an anonymous one would not get.
    pub fn check(&self, headers: &HeaderMap, needed: Permission, required: bool) -> Access {
        match self.identify(headers) {
            Identity::Operator => Access::Allowed(None),
            Identity::Key(key) if key.allows(needed) => Access::Allowed(Some(key.name)),
            Identity::Anonymous | Identity::Key(_) | Identity::Invalid if !required => {
                Access::Allowed(None)
            }
            Identity::Anonymous => Access::Missing,
            Identity::Key(_) | Identity::Invalid => Access::Denied,
        }
    }

    /// The key store's records, re-read when its file changes, and whether the file is
    /// unreadable (then no key is accepted and reads require credentials: fail closed).
    fn current_keys(&self) -> (Arc<Vec<KeyRecord>>, bool) {
        let Some(store) = &self.keys else {
            return (Arc::default(), false);
        };
        let Some(local) = store.store().local_version(&StorageKey::Keys) else {
            self.refresh_in_background(store);
            let loaded = self.loaded.lock().expect("key cache lock");
            return (loaded.keys.clone(), loaded.broken);
        };
        let version = local.token().map(str::to_owned);
        let mut loaded = self.loaded.lock().expect("key cache lock");
        if loaded.checked.is_none() || loaded.version != version {
            loaded.checked = Some(Instant::now());
            loaded.version = version;
            apply(&mut loaded, store.load());
        }
        (loaded.keys.clone(), loaded.broken)
    }

    /// Starts one background read of the key file when the last is older than
    /// [`KEYS_REFRESH`]. Needs a tokio runtime; without one, keys stay as they are.
    fn refresh_in_background(&self, store: &KeyStore) {
        let due = self
            .loaded
            .lock()
            .expect("key cache lock")
            .checked
            .is_none_or(|at| at.elapsed() >= KEYS_REFRESH);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !due || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (store, loaded, refreshing) = (
            store.clone(),
            Arc::clone(&self.loaded),
            Arc::clone(&self.refreshing),
        );
        runtime.spawn(async move {
            let version = loaded.lock().expect("key cache lock").version.clone();
            let fetched = store.store().fetch(&StorageKey::Keys, version).await;
            let mut loaded = loaded.lock().expect("key cache lock");
            loaded.checked = Some(Instant::now());
            match fetched {
                // Unchanged: what we concluded from it stands, broken or not.
                Ok(Fetched::NotModified) => {}
                Ok(Fetched::Missing) => {
                    loaded.version = None;
                    apply(&mut loaded, Ok(Vec::new()));
                }
                Ok(Fetched::Found(object)) => {
                    loaded.version = Some(object.meta.version);
                    apply(&mut loaded, store.parse(&object.bytes));
                }
                // An outage keeps the keys we know; the first read keeps failing closed.
                Err(e) => tracing::warn!("cannot refresh repository keys: {e}"),
            }
            refreshing.store(false, Ordering::Release);
        });
    }
}

fn apply(
    loaded: &mut LoadedKeys,
    keys: Result<Vec<KeyRecord>, hexrepo_registry::keys::KeyStoreError>,
) {
    match keys {
        Ok(keys) => {
            loaded.keys = Arc::new(keys);
            loaded.broken = false;
        }
        Err(e) => {
            tracing::error!("cannot read repository keys, refusing every key until fixed: {e}");
            loaded.keys = Arc::default();
            loaded.broken = true;
        }
    }
}

fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &value[prefix.len()..])
}
