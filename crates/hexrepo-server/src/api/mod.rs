//! The Hex HTTP API (HEX-PROTOCOL.md §6), enough for `mix hex.publish`, `mix hex.retire`,
//! `mix hex.owner`, `mix hex.organization key`, `rebar3 hex publish` and hex_core: publish,
//! replace, revert, retire, docs, package info, owners and keys, under `/api` and
//! `/api/repos/NAME`, plus `/api/orgs/NAME/keys` and the OAuth key exchange. Handlers authorize, decode, call a registry
//! service on a blocking thread (RSA, gzip and fsync are not for the async workers) and encode.

mod body;
mod error;
mod format;
mod keys;
mod oauth;
mod owners;
mod packages;
mod releases;
mod users;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, Request};
use axum::routing::{get, post, put};
use hexfmt::keys::PrivateKey;
use hexfmt::name::is_valid_package_name;
use hexfmt::version::Version;
use hexrepo_registry::keys::{KeyStore, Permission, is_valid_key_name};
use hexrepo_registry::owners::is_valid_identity_name;
use hexrepo_store::Store;

pub use body::{MAX_SMALL_BODY, UPLOAD_MEMORY, UploadBudget};
pub use error::ApiError;
pub use format::{Format, Reply, respond};

use crate::auth::Identity;
use crate::router::AppState;

/// What the API needs beyond the repository endpoint: the signing key and repository name.
#[derive(Debug)]
pub struct ApiConfig {
    /// Where the repository is.
    pub store: Store,
    /// The repository name.
    pub repository: String,
    /// The signing key.
    pub key: PrivateKey,
    /// Package names nobody may publish.
    pub reserved: Vec<String>,
    /// The public base URL, for links in replies.
    pub base_url: String,
}

/// The API routes, mounted at `/api` and `/api/repos/{repo}`.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/users/me", get(users::me))
        .route("/auth", get(users::auth))
        .route("/publish", post(releases::publish))
        .route("/packages", get(packages::search))
        .route("/packages/{name}", get(packages::show))
        .route("/packages/{name}/releases", post(releases::publish))
        .route(
            "/packages/{name}/releases/{version}",
            get(packages::release).delete(releases::revert),
        )
        .route(
            "/packages/{name}/releases/{version}/retire",
            post(releases::retire).delete(releases::unretire),
        )
        .route(
            "/packages/{name}/releases/{version}/docs",
            get(releases::docs_redirect)
                .post(releases::publish_docs)
                .delete(releases::remove_docs),
        )
        .route(
            "/keys",
            get(keys::list).post(keys::create).delete(keys::revoke_all),
        )
        .route("/keys/{key}", get(keys::show).delete(keys::revoke))
        .route("/packages/{name}/owners", get(owners::list))
        .route(
            "/packages/{name}/owners/{owner}",
            put(owners::add).delete(owners::remove),
        );
    // `mix hex.organization key ORG ...`: the same key handlers, where ORG is this repository.
    let orgs = Router::new()
        .route(
            "/orgs/{org}/keys",
            get(keys::list).post(keys::create).delete(keys::revoke_all),
        )
        .route(
            "/orgs/{org}/keys/{key}",
            get(keys::show).delete(keys::revoke),
        )
        .route("/oauth/token", post(oauth::token));
    Router::new()
        .nest("/api", api.clone().merge(orgs))
        .nest("/api/repos/{repo}", api)
}

impl ApiConfig {
    /// The API URL of this repository, `BASE/api/repos/NAME`, as hex.pm names a private
    /// repository's resources (`/api/repos/acme/packages/foo`).
    pub fn api_url(&self) -> String {
        format!("{}/api/repos/{}", self.base_url, self.repository)
    }

    /// The registry's publisher for this repository.
    pub fn publisher(&self) -> hexrepo_registry::publish::Publisher<'_> {
        hexrepo_registry::publish::Publisher {
            store: self.store.clone(),
            repository: &self.repository,
            key: &self.key,
            reserved: &self.reserved,
        }
    }
}

/// Who made an authorized request.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Key name, or "basic-auth" for the operator: what the audit log records.
    pub name: String,
    /// The identity it owns packages as: its key name, or the operator's basic-auth username.
    pub identity: String,
    /// The basic-auth operator, who may do everything.
    pub operator: bool,
    /// What the actor may do.
    pub permissions: Vec<Permission>,
    /// The client's address, when known.
    pub remote: Option<String>,
}

/// The API configuration, or 503 when this server cannot sign.
fn config(state: &AppState) -> Result<&ApiConfig, ApiError> {
    state.api().ok_or(ApiError::Unavailable(
        "the API is disabled: start hexrepo serve with the repository's private key",
    ))
}

/// Path parameters, checking `repo` (when routed under `/api/repos/{repo}`) and `org` (under
/// `/api/orgs/{org}`) name this repository.
fn params(
    state: &AppState,
    params: HashMap<String, String>,
) -> Result<HashMap<String, String>, ApiError> {
    let api = config(state)?;
    let other = ["repo", "org"]
        .iter()
        .filter_map(|p| params.get(*p))
        .find(|repo| **repo != api.repository);
    if let Some(repo) = other {
        return Err(ApiError::UnknownRepository {
            asked: repo.chars().take(64).collect(),
            served: api.repository.clone(),
        });
    }
    // Every path parameter that becomes part of a file name is validated here, once: a name
    // or version that is not one (`..%2F`, `/`, a dot-file) is a 404 before any file is touched.
    let valid = params.get("name").is_none_or(|n| is_valid_package_name(n))
        && params.get("version").is_none_or(|v| {
            v.len() <= hexfmt::version::MAX_VERSION_TEXT && Version::parse(v).is_ok()
        })
        && params.get("key").is_none_or(|k| is_valid_key_name(k))
        && params
            .get("owner")
            .is_none_or(|o| is_valid_identity_name(o));
    if valid {
        Ok(params)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Authorizes a request that needs `needed`.
fn authorize<B>(
    state: &AppState,
    request: &Request<B>,
    needed: Permission,
) -> Result<Actor, ApiError> {
    let mut actor = authorize_headers(state, request.headers(), needed)?;
    actor.remote = remote_address(request);
    Ok(actor)
}

/// Authorizes by headers alone; the caller fills in the client's address.
fn authorize_headers(
    state: &AppState,
    headers: &HeaderMap,
    needed: Permission,
) -> Result<Actor, ApiError> {
    let remote = None;
    match state.auth().identify(headers) {
        Identity::Anonymous => Err(ApiError::Unauthorized("missing authentication information")),
        Identity::Invalid => Err(ApiError::Unauthorized("invalid API key")),
        Identity::Operator => Ok(Actor {
            name: "basic-auth".to_owned(),
            identity: state
                .auth()
                .operator_name()
                .unwrap_or("basic-auth")
                .to_owned(),
            operator: true,
            permissions: vec![Permission::Repository, Permission::ApiWrite],
            remote,
        }),
        Identity::Key(key) if key.allows(needed) => Ok(Actor {
            identity: key.name.clone(),
            name: key.name,
            operator: false,
            permissions: key.permissions,
            remote,
        }),
        Identity::Key(_) => Err(ApiError::Forbidden(
            "key not authorized for this action".to_owned(),
        )),
    }
}

/// The client's IP address, when the server records connections (it does in `hexrepo serve`).
fn remote_address<B>(request: &Request<B>) -> Option<String> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The key store of the repository.
fn key_store(api: &ApiConfig) -> KeyStore {
    KeyStore::new(&api.store)
}

/// Runs blocking registry work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}
