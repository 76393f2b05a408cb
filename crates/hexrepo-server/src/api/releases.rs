//! Writes through the API: publish (both routes), revert, retire, unretire, docs. Each checks
//! `api:write` before the body is read, so `Expect: 100-continue` is answered only after auth
//! and the size check (hyper sends `100 Continue` when a handler first reads the body).

use std::collections::HashMap;

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hexfmt::tarball::MAX_TARBALL_SIZE;
use hexrepo_registry::RegistryError;
use hexrepo_registry::audit::{self, AuditEntry};
use hexrepo_registry::keys::Permission;
use hexrepo_registry::publish::PublishError;
use hexrepo_registry::retire::{Reason, Retirement, set_retirement};
use hexrepo_store::{Precondition, StorageKey, StoreError};
use serde_json::json;

use super::body::{read_small, read_upload};
use super::format::decode_body;
use super::packages::release_json;
use super::{Actor, ApiError, Format, Reply, authorize, blocking, config, params, respond};
use crate::router::AppState;

type Params = Path<HashMap<String, String>>;

/// `POST /packages/NAME/releases?replace=BOOL` and `POST /publish?replace=BOOL`.
pub async fn publish(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    Query(q): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    respond(format, publish_release(state, p, &q, request).await)
}

async fn publish_release(
    state: AppState,
    p: HashMap<String, String>,
    query: &HashMap<String, String>,
    request: Request,
) -> Result<Reply, ApiError> {
    let p = params(&state, p)?;
    let actor = authorize(&state, &request, Permission::ApiWrite)?;
    let upload = read_upload(state.uploads(), request, MAX_TARBALL_SIZE, "tar").await?;
    let bytes = upload.bytes.clone();
    // hexpm treats a missing `replace` as true; clients always send it.
    let replace = query.get("replace").is_none_or(|v| v == "true");
    let name = p.get("name").cloned();
    blocking(move || {
        let api = config(&state)?;
        let publisher = api.publisher();
        let outcome = publisher
            .publish(&bytes, name.as_deref(), replace)
            .map_err(publish_error)?;
        let meta = &outcome.metadata;
        let action = if outcome.created {
            "publish"
        } else {
            "replace"
        };
        record(
            &state,
            &actor,
            action,
            Some(&meta.name),
            Some(&meta.version),
        )?;
        if outcome.created && outcome.package.releases.len() == 1 && !actor.operator {
            record_first_owner(&state, api, &actor, &meta.name);
        }
        let body = release_json(
            api,
            &meta.name,
            &meta.version,
            Some((meta, &outcome.package)),
        )
        .map_err(registry_error)?;
        let location = format!(
            "{}/packages/{}/releases/{}",
            api.api_url(),
            meta.name,
            meta.version
        );
        let status = if outcome.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(Reply {
            status,
            body: Some(body),
            location: Some(location),
        })
    })
    .await
}

/// `DELETE /packages/NAME/releases/VERSION`.
pub async fn revert(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let result = release_write_with_headers(
        state,
        p,
        &headers,
        remote_of(remote.as_ref()),
        |state, api, actor, name, version| {
            let publisher = api.publisher();
            publisher.revert(name, version).map_err(registry_error)?;
            record(state, actor, "revert", Some(name), Some(version))?;
            Ok(Reply::no_content())
        },
    );
    respond(format, result.await)
}

/// `POST /packages/NAME/releases/VERSION/retire` with `{reason, message}`.
pub async fn retire(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    request: Request,
) -> Response {
    respond(format, retire_release(state, p, request).await)
}

async fn retire_release(
    state: AppState,
    p: HashMap<String, String>,
    request: Request,
) -> Result<Reply, ApiError> {
    check_before_body(&state, &p, &request)?;
    let headers = request.headers().clone();
    let remote = super::remote_address(&request);
    let body = decode_body(&headers, &read_small(request).await?)?;
    let reason: Reason = body["reason"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| ApiError::field("reason", e))?;
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    let retirement = Retirement { reason, message };
    release_write_with_headers(
        state,
        p,
        &headers,
        remote,
        move |state, api, actor, name, version| {
            let changed = set_retirement(
                &api.store,
                &api.repository,
                &api.key,
                name,
                version,
                Some(&retirement),
            )
            .map_err(registry_error)?;
            if !changed.is_empty() {
                record(state, actor, "retire", Some(name), Some(version))?;
            }
            Ok(Reply::no_content())
        },
    )
    .await
}

/// `DELETE /packages/NAME/releases/VERSION/retire`.
pub async fn unretire(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let result = release_write_with_headers(
        state,
        p,
        &headers,
        remote_of(remote.as_ref()),
        |state, api, actor, name, version| {
            let changed =
                set_retirement(&api.store, &api.repository, &api.key, name, version, None)
                    .map_err(registry_error)?;
            if !changed.is_empty() {
                record(state, actor, "unretire", Some(name), Some(version))?;
            }
            Ok(Reply::no_content())
        },
    );
    respond(format, result.await)
}

/// `POST /packages/NAME/releases/VERSION/docs`: a gzipped tar with `index.html` at its root.
pub async fn publish_docs(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    request: Request,
) -> Response {
    respond(format, store_docs(state, p, request).await)
}

async fn store_docs(
    state: AppState,
    p: HashMap<String, String>,
    request: Request,
) -> Result<Reply, ApiError> {
    check_before_body(&state, &p, &request)?;
    let headers = request.headers().clone();
    let remote = super::remote_address(&request);
    let upload = read_upload(state.uploads(), request, MAX_TARBALL_SIZE, "tar").await?;
    let bytes = upload.bytes.clone();
    hexfmt::docs::read_docs_tarball(&bytes).map_err(|e| ApiError::field("tar", e.to_string()))?;
    release_write_with_headers(
        state,
        p,
        &headers,
        remote,
        move |state, api, actor, name, version| {
            // Under the repository lock (on disk), so a concurrent revert cannot orphan these
            // docs on this machine.
            let _lock = api.store.lock().map_err(store_error)?;
            let package = super::packages::load_package(api, name).map_err(registry_error)?;
            if !package.releases.iter().any(|r| r.version == version) {
                return Err(ApiError::NotFound);
            }
            api.store
                .put(
                    &StorageKey::docs(name, version),
                    bytes.clone(),
                    Precondition::Overwrite,
                )
                .map_err(store_error)?;
            record(state, actor, "docs.publish", Some(name), Some(version))?;
            Ok(Reply {
                status: StatusCode::CREATED,
                body: None,
                location: Some(format!("{}/docs/{name}-{version}.tar.gz", api.base_url)),
            })
        },
    )
    .await
}

/// `DELETE /packages/NAME/releases/VERSION/docs`.
pub async fn remove_docs(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let result = release_write_with_headers(
        state,
        p,
        &headers,
        remote_of(remote.as_ref()),
        |state, api, actor, name, version| {
            let key = StorageKey::docs(name, version);
            if api.store.head(&key).map_err(store_error)?.is_none() {
                return Err(ApiError::NotFound);
            }
            api.store.delete(&key).map_err(store_error)?;
            record(state, actor, "docs.remove", Some(name), Some(version))?;
            Ok(Reply::no_content())
        },
    );
    respond(format, result.await)
}

fn remote_of(connect: Option<&Extension<ConnectInfo<SocketAddr>>>) -> Option<String> {
    connect.map(|c| c.0.0.ip().to_string())
}

/// Authorizes `api:write` and checks the route, before any body is read.
fn check_before_body(
    state: &AppState,
    p: &HashMap<String, String>,
    request: &Request,
) -> Result<(), ApiError> {
    params(state, p.clone())?;
    authorize(state, request, Permission::ApiWrite).map(drop)
}

async fn release_write_with_headers(
    state: AppState,
    p: HashMap<String, String>,
    headers: &HeaderMap,
    remote: Option<String>,
    work: impl FnOnce(&AppState, &super::ApiConfig, &Actor, &str, &str) -> Result<Reply, ApiError>
    + Send
    + 'static,
) -> Result<Reply, ApiError> {
    let p = params(&state, p)?;
    let mut actor = super::authorize_headers(&state, headers, Permission::ApiWrite)?;
    actor.remote = remote;
    let (Some(name), Some(version)) = (p.get("name").cloned(), p.get("version").cloned()) else {
        return Err(ApiError::NotFound);
    };
    blocking(move || {
        let api = config(&state)?;
        work(&state, api, &actor, &name, &version)
    })
    .await
}

fn record(
    state: &AppState,
    actor: &Actor,
    action: &str,
    package: Option<&str>,
    version: Option<&str>,
) -> Result<(), ApiError> {
    let api = config(state)?;
    let entry = AuditEntry::now(&actor.name, action, package, version, actor.remote.clone());
    audit::append(&api.store, &entry).map_err(registry_error)
}

/// Makes the key that published a package's first release its full owner, unless the package
/// already has owners (from an earlier life, or a concurrent publish). A failure is logged, not
/// returned: the release is already public, and an error would make the client retry into
/// "already published"; an operator or any writer can still add the owner by hand.
fn record_first_owner(state: &AppState, api: &super::ApiConfig, actor: &Actor, package: &str) {
    let recorded = super::owners::owner_store(state, api)
        .record_first_publisher(package, &actor.identity)
        .map_err(|e| e.to_string())
        .and_then(|recorded| {
            if recorded {
                let mut entry = AuditEntry::now(
                    &actor.name,
                    "owner.add",
                    Some(package),
                    None,
                    actor.remote.clone(),
                );
                entry.owner = Some(actor.identity.clone());
                entry.level = Some("full".to_owned());
                audit::append(&api.store, &entry).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
    if let Err(e) = recorded {
        tracing::error!(
            "{package}: cannot record {} as its owner: {e}",
            actor.identity
        );
    }
}

fn publish_error(error: PublishError) -> ApiError {
    match error {
        PublishError::Tarball(e) => ApiError::field("tar", e.to_string()),
        PublishError::NameMismatch { .. } => {
            ApiError::field("name", "metadata does not match package name")
        }
        e @ (PublishError::InvalidName(_) | PublishError::ReservedName(_)) => {
            ApiError::field("name", e.to_string())
        }
        PublishError::InvalidVersion(e) => ApiError::field("version", e.to_string()),
        PublishError::AlreadyPublished { .. } => ApiError::field(
            "inserted_at",
            "must include the --replace flag to update an existing release",
        ),
        PublishError::Requirement {
            dependency,
            message,
        } => ApiError::Validation(json!({ "requirements": { dependency: message } })),
        PublishError::Registry(e) => registry_error(e),
    }
}

pub(super) fn registry_error(error: RegistryError) -> ApiError {
    match error {
        RegistryError::NoSuchPackage(_) | RegistryError::NoSuchRelease { .. } => ApiError::NotFound,
        RegistryError::RetirementMessage(_) => ApiError::field("message", error.to_string()),
        RegistryError::Store(e) => store_error(e),
        e @ RegistryError::Contention { .. } => {
            tracing::warn!("{e}");
            ApiError::Unavailable("too many concurrent writes, retry later")
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// An outage of the store is a 503 the client may retry; the detail goes to the log.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(store_error)`
pub(super) fn store_error(error: StoreError) -> ApiError {
    if error.is_unavailable() {
        tracing::warn!("storage unavailable: {error}");
        ApiError::Unavailable("storage unavailable, retry later")
    } else {
        ApiError::Internal(error.to_string())
    }
}

/// `GET /packages/NAME/releases/VERSION/docs`: a redirect to the docs tarball.
pub async fn docs_redirect(
    State(state): State<AppState>,
    format: Format,
    Path(p): Params,
    request: Request,
) -> Response {
    // Whether a release has docs is itself something only readers may learn.
    let access = super::packages::read_access(&state, p, &request);
    let result = async {
        let p = access?;
        let api = config(&state)?;
        let (name, version) = (
            p.get("name").cloned().unwrap_or_default(),
            p.get("version").cloned().unwrap_or_default(),
        );
        let store = api.store.clone();
        let key = StorageKey::docs(&name, &version);
        if super::blocking(move || store.head(&key).map_err(store_error))
            .await?
            .is_none()
        {
            return Err(ApiError::NotFound);
        }
        Ok(Reply {
            status: StatusCode::FOUND,
            body: None,
            location: Some(format!("{}/docs/{name}-{version}.tar.gz", api.base_url)),
        })
    };
    respond(format, result.await)
}
