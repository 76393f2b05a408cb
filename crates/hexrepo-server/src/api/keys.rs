//! Keys through the API: `GET|POST|DELETE /keys`, `GET|DELETE /keys/NAME`, and the same under
//! `/orgs/ORG/keys` (`mix hex.organization key ORG ...`, where ORG is this repository), with
//! Hex's permission shape `{domain, resource}` (HEX-PROTOCOL.md §6.2). Secrets are returned
//! once, at creation, and stored hashed. A key sees, creates and revokes only keys within its
//! own permissions (`keys::covers`).

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use hexrepo_registry::audit::{self, AuditEntry};
use hexrepo_registry::keys::{KeyRecord, KeyStoreError, Permission, covers};
use serde_json::{Value, json};

use super::format::decode_body;
use super::{
    Actor, ApiConfig, ApiError, Format, Reply, authorize, blocking, config, key_store, params,
    respond,
};
use crate::router::AppState;

/// `GET /keys`: the active keys.
pub async fn list(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = guarded(&state, p, &request, Permission::ApiRead).map(|actor| {
        let api = config(&state)?;
        let keys = key_store(api).load().map_err(key_error)?;
        Ok(Reply::ok(Value::Array(
            keys.iter()
                .filter(|k| k.revoked_at.is_none() && covers(&actor.permissions, &k.permissions))
                .map(|k| key_json(api, k, None))
                .collect(),
        )))
    });
    respond(format, result.and_then(|r| r))
}

/// `GET /keys/NAME`.
pub async fn show(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let name = p.get("key").cloned().unwrap_or_default();
    let result = guarded(&state, p, &request, Permission::ApiRead).and_then(|actor| {
        let api = config(&state)?;
        let keys = key_store(api).load().map_err(key_error)?;
        keys.iter()
            .find(|k| {
                k.name == name
                    && k.revoked_at.is_none()
                    && covers(&actor.permissions, &k.permissions)
            })
            .map(|k| Reply::ok(key_json(api, k, None)))
            .ok_or(ApiError::NotFound)
    });
    respond(format, result)
}

/// `POST /keys` with `{name, permissions: [{domain, resource}]}`: 201 with the secret.
pub async fn create(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = async {
        let actor = guarded(&state, p, &request, Permission::ApiWrite)?;
        let headers = request.headers().clone();
        let bytes = super::body::read_small(request).await?;
        let body = decode_body(&headers, &bytes)?;
        let name = body["name"]
            .as_str()
            .ok_or_else(|| ApiError::field("name", "can't be blank"))?
            .to_owned();
        let permissions = parse_permissions(config(&state)?, &body["permissions"])?;
        // A key cannot grant more than its creator holds.
        if !covers(&actor.permissions, &permissions) {
            return Err(ApiError::Forbidden(
                "key not authorized for this action".to_owned(),
            ));
        }
        blocking(move || {
            let api = config(&state)?;
            let (record, secret) = key_store(api)
                .create(&name, &permissions, Some(&actor.name))
                .map_err(key_error)?;
            audit_key(api, &actor, "key.create", &record.name)?;
            Ok(Reply {
                status: StatusCode::CREATED,
                body: Some(key_json(api, &record, Some(&secret))),
                location: None,
            })
        })
        .await
    };
    respond(format, result.await)
}

/// `DELETE /keys/NAME`.
pub async fn revoke(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = guarded(&state, p.clone(), &request, Permission::ApiWrite).map(|actor| {
        let api = config(&state)?;
        let name = p.get("key").cloned().unwrap_or_default();
        let store = key_store(api);
        // As for create: a key cannot revoke one that holds more than it does.
        let target = store
            .load()
            .map_err(key_error)?
            .into_iter()
            .find(|k| k.name == name && k.revoked_at.is_none())
            .ok_or(ApiError::NotFound)?;
        if !covers(&actor.permissions, &target.permissions) {
            return Err(ApiError::Forbidden(
                "key not authorized for this action".to_owned(),
            ));
        }
        let record = store.revoke(&name).map_err(key_error)?;
        audit_key(api, &actor, "key.revoke", &record.name)?;
        Ok(Reply::ok(key_json(api, &record, None)))
    });
    respond(format, result.and_then(|r| r))
}

/// `DELETE /keys`: revokes every key but the one making the request and those holding more
/// than it does (which it could not revoke one by one either).
pub async fn revoke_all(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = guarded(&state, p, &request, Permission::ApiWrite).map(|actor| {
        let api = config(&state)?;
        let store = key_store(api);
        for key in store.load().map_err(key_error)? {
            if key.revoked_at.is_none()
                && key.name != actor.name
                && covers(&actor.permissions, &key.permissions)
            {
                store.revoke(&key.name).map_err(key_error)?;
                audit_key(api, &actor, "key.revoke", &key.name)?;
            }
        }
        Ok(Reply::no_content())
    });
    respond(format, result.and_then(|r| r))
}

fn guarded(
    state: &AppState,
    p: HashMap<String, String>,
    request: &Request,
    needed: Permission,
) -> Result<Actor, ApiError> {
    params(state, p).and_then(|_| authorize(state, request, needed))
}

/// Hex's `[{domain, resource}]`: `api` (bare, as `mix --permission api` sends it, or `write`)
/// and `api:read`; `repository` naming this repository (or none), and `repositories`. A
/// `repository` naming another repository is refused, not quietly turned into this one.
fn parse_permissions(api: &ApiConfig, value: &Value) -> Result<Vec<Permission>, ApiError> {
    let Some(list) = value.as_array() else {
        return Ok(vec![Permission::ApiWrite]);
    };
    list.iter()
        .map(|p| match (p["domain"].as_str(), p["resource"].as_str()) {
            (Some("api"), Some("read")) => Ok(Permission::ApiRead),
            (Some("api"), Some("write" | "") | None) => Ok(Permission::ApiWrite),
            (Some("repository"), Some("") | None) | (Some("repositories"), _) => {
                Ok(Permission::Repository)
            }
            (Some("repository"), Some(repo)) if repo == api.repository => {
                Ok(Permission::Repository)
            }
            (Some("repository"), Some(repo)) => Err(ApiError::field(
                "permissions",
                format!(
                    "this server hosts no repository named {:?}; its repository is {:?}",
                    repo.chars().take(64).collect::<String>(),
                    api.repository
                ),
            )),
            _ => Err(ApiError::field(
                "permissions",
                format!("unsupported permission {p}"),
            )),
        })
        .collect()
}

/// Permissions in Hex's `{domain, resource}` shape.
pub(super) fn permissions_json(api: &ApiConfig, permissions: &[Permission]) -> Vec<Value> {
    permissions
        .iter()
        .map(|p| match p {
            Permission::ApiRead => json!({"domain": "api", "resource": "read"}),
            Permission::ApiWrite => json!({"domain": "api", "resource": "write"}),
            Permission::Repository => json!({"domain": "repository", "resource": api.repository}),
        })
        .collect()
}

fn key_json(api: &ApiConfig, key: &KeyRecord, secret: Option<&str>) -> Value {
    let iso = |t: u64| super::packages::iso8601(i64::try_from(t).unwrap_or(i64::MAX));
    let mut body = json!({
        "name": key.name,
        "permissions": permissions_json(api, &key.permissions),
        "revoked_at": key.revoked_at.map(iso),
        "inserted_at": iso(key.created_at),
        "updated_at": iso(key.revoked_at.unwrap_or(key.created_at)),
        "url": format!("{}/api/keys/{}", api.base_url, key.name),
    });
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    body
}

fn key_error(error: KeyStoreError) -> ApiError {
    match error {
        KeyStoreError::Duplicate(_) => ApiError::field("name", "has already been taken"),
        KeyStoreError::InvalidName(_) => ApiError::field("name", error.to_string()),
        KeyStoreError::NotFound(_) => ApiError::NotFound,
        other => ApiError::Internal(other.to_string()),
    }
}

fn audit_key(api: &ApiConfig, actor: &Actor, action: &str, key: &str) -> Result<(), ApiError> {
    let mut entry = AuditEntry::now(&actor.name, action, None, None, actor.remote.clone());
    entry.key = Some(key.to_owned());
    audit::append(&api.store, &entry).map_err(|e| ApiError::Internal(e.to_string()))
}
