//! Keys through the API: `GET|POST|DELETE /keys`, `GET|DELETE /keys/NAME`, with Hex's
//! permission shape `{domain, resource}` (HEX-PROTOCOL.md §6.2). Secrets are returned once, at
//! creation, and stored hashed.

use std::collections::HashMap;

use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use hexrepo_registry::audit::{self, AuditEntry};
use hexrepo_registry::keys::{KeyRecord, KeyStoreError, Permission};
use serde_json::{Value, json};

use super::format::decode_body;
use super::{
    Actor, ApiError, Format, Reply, authorize, blocking, config, key_store, params, respond,
};
use crate::router::AppState;

/// `GET /keys`: the active keys.
pub async fn list(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = guarded(&state, p, &request, Permission::ApiRead).map(|_| {
        let api = config(&state)?;
        let keys = key_store(api).load().map_err(key_error)?;
        Ok(Reply::ok(Value::Array(
            keys.iter()
                .filter(|k| k.revoked_at.is_none())
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
    let result = guarded(&state, p, &request, Permission::ApiRead).and_then(|_| {
        let api = config(&state)?;
        let keys = key_store(api).load().map_err(key_error)?;
        keys.iter()
            .find(|k| k.name == name && k.revoked_at.is_none())
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
        let bytes = to_bytes(request.into_body(), 64 * 1024)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        let body = decode_body(&headers, &bytes)?;
        let name = body["name"]
            .as_str()
            .ok_or_else(|| ApiError::field("name", "can't be blank"))?
            .to_owned();
        let permissions = parse_permissions(&body["permissions"])?;
        // A key cannot grant more than its creator holds.
        if permissions
            .iter()
            .any(|p| !actor.permissions.iter().any(|held| held.grants(*p)))
        {
            return Err(ApiError::Forbidden("key not authorized for this action"));
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
        let record = key_store(api).revoke(&name).map_err(key_error)?;
        audit_key(api, &actor, "key.revoke", &record.name)?;
        Ok(Reply::ok(key_json(api, &record, None)))
    });
    respond(format, result.and_then(|r| r))
}

/// `DELETE /keys`: revokes every key but the one making the request.
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
            if key.revoked_at.is_none() && key.name != actor.name {
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

fn parse_permissions(value: &Value) -> Result<Vec<Permission>, ApiError> {
    let Some(list) = value.as_array() else {
        return Ok(vec![Permission::ApiWrite]);
    };
    list.iter()
        .map(|p| match (p["domain"].as_str(), p["resource"].as_str()) {
            (Some("api"), Some("read")) => Ok(Permission::ApiRead),
            (Some("api"), Some("write") | None) => Ok(Permission::ApiWrite),
            (Some("repository" | "repositories"), _) => Ok(Permission::Repository),
            _ => Err(ApiError::field(
                "permissions",
                format!("unsupported permission {p}"),
            )),
        })
        .collect()
}

/// Permissions in Hex's `{domain, resource}` shape.
pub(super) fn permissions_json(api: &super::ApiConfig, permissions: &[Permission]) -> Vec<Value> {
    permissions
        .iter()
        .map(|p| match p {
            Permission::ApiRead => json!({"domain": "api", "resource": "read"}),
            Permission::ApiWrite => json!({"domain": "api", "resource": "write"}),
            Permission::Repository => json!({"domain": "repository", "resource": api.repository}),
        })
        .collect()
}

fn key_json(api: &super::ApiConfig, key: &KeyRecord, secret: Option<&str>) -> Value {
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

fn audit_key(
    api: &super::ApiConfig,
    actor: &Actor,
    action: &str,
    key: &str,
) -> Result<(), ApiError> {
    let mut entry = AuditEntry::now(&actor.name, action, None, None, actor.remote.clone());
    entry.key = Some(key.to_owned());
    audit::append(&api.store, &entry).map_err(|e| ApiError::Internal(e.to_string()))
}
