//! Package owners through the API (`mix hex.owner`): `GET /packages/NAME/owners`, and `PUT` and
//! `DELETE /packages/NAME/owners/OWNER`, the PUT taking `{level, transfer}`. The rules live in
//! `hexrepo_registry::owners`; this module translates HTTP and writes the audit records.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use hexrepo_registry::audit::{self, AuditEntry};
use hexrepo_registry::keys::Permission;
use hexrepo_registry::owners::{Level, Owner, OwnerStore, OwnersError, Requester};
use serde_json::{Value, json};

use super::format::decode_body;
use super::packages::{iso8601, read_access};
use super::releases::registry_error;
use super::{
    Actor, ApiConfig, ApiError, Format, Reply, authorize, blocking, config, params, respond,
};
use crate::router::AppState;

/// `GET /packages/NAME/owners`: hex.pm's owner objects, oldest owner first.
pub async fn list(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = match read_access(&state, p, &request) {
        Ok(p) => {
            blocking(move || {
                let api = config(&state)?;
                let name = p.get("name").cloned().unwrap_or_default();
                let owners = owner_store(&state, api).list(&name).map_err(owners_error)?;
                Ok(Reply::ok(Value::Array(
                    owners.iter().map(|o| owner_json(api, o)).collect(),
                )))
            })
            .await
        }
        Err(e) => Err(e),
    };
    respond(format, result)
}

/// `PUT /packages/NAME/owners/OWNER` with `{level, transfer}`: 204.
pub async fn add(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = async {
        let p = params(&state, p)?;
        let actor = authorize(&state, &request, Permission::ApiWrite)?;
        let headers = request.headers().clone();
        let bytes = super::body::read_small(request).await?;
        let body = decode_body(&headers, &bytes)?;
        // hex.pm's default level, for clients that send none.
        let level: Level = body["level"]
            .as_str()
            .unwrap_or("full")
            .parse()
            .map_err(|e: OwnersError| ApiError::field("level", e.to_string()))?;
        let transfer = body["transfer"].as_bool().unwrap_or(false);
        let (package, owner) = names(&p);
        blocking(move || {
            let api = config(&state)?;
            let changed = owner_store(&state, api)
                .add(&package, requester(&actor), &owner, level, transfer)
                .map_err(owners_error)?;
            if changed {
                let (action, level) = if transfer {
                    ("owner.transfer", Level::Full)
                } else {
                    ("owner.add", level)
                };
                audit_owner(api, &actor, action, &package, &owner, Some(level))?;
            }
            Ok(Reply::no_content())
        })
        .await
    };
    respond(format, result.await)
}

/// `DELETE /packages/NAME/owners/OWNER`: 204.
pub async fn remove(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = async move {
        let p = params(&state, p)?;
        let actor = authorize(&state, &request, Permission::ApiWrite)?;
        let (package, owner) = names(&p);
        blocking(move || {
            let api = config(&state)?;
            owner_store(&state, api)
                .remove(&package, requester(&actor), &owner)
                .map_err(owners_error)?;
            audit_owner(api, &actor, "owner.remove", &package, &owner, None)?;
            Ok(Reply::no_content())
        })
        .await
    };
    respond(format, result.await)
}

/// The owners of the repository's packages; the operator's username is an identity too.
pub(super) fn owner_store<'s>(state: &'s AppState, api: &ApiConfig) -> OwnerStore<'s> {
    OwnerStore::new(&api.store, state.auth().operator_name())
}

/// hex.pm's minimal user object for an identity (`UserView.show`), as owners and publishers
/// are shown.
pub(super) fn user_json(api: &ApiConfig, name: &str) -> Value {
    json!({
        "username": name,
        // Identities here have no e-mail address, and `mix hex.owner list` prints only the
        // `email` and `level` columns: the name goes here too, so the table says who owns.
        "email": name,
        "full_name": null,
        "handles": {},
        // A key's API URL (the operator's username names no resource; mix never follows it).
        "url": format!("{}/api/keys/{name}", api.base_url),
    })
}

/// An owner as `GET /packages/NAME/owners` lists it: the user object plus level and times.
pub(super) fn owner_json(api: &ApiConfig, owner: &Owner) -> Value {
    let iso = |t: u64| iso8601(i64::try_from(t).unwrap_or(i64::MAX));
    let mut body = user_json(api, &owner.name);
    body["level"] = json!(owner.level.as_str());
    body["inserted_at"] = json!(iso(owner.inserted_at));
    body["updated_at"] = json!(iso(owner.updated_at));
    body
}

fn names(p: &HashMap<String, String>) -> (String, String) {
    (
        p.get("name").cloned().unwrap_or_default(),
        p.get("owner").cloned().unwrap_or_default(),
    )
}

fn requester(actor: &Actor) -> Requester<'_> {
    Requester {
        name: &actor.identity,
        operator: actor.operator,
    }
}

pub(super) fn owners_error(error: OwnersError) -> ApiError {
    match error {
        OwnersError::Registry(e) => registry_error(e),
        e @ (OwnersError::NoSuchPackage(_) | OwnersError::UnknownIdentity(_)) => {
            ApiError::Missing(e.to_string())
        }
        e @ OwnersError::NotAllowed { .. } => ApiError::Forbidden(e.to_string()),
        e @ (OwnersError::NotAnOwner { .. } | OwnersError::LastFullOwner { .. }) => {
            ApiError::field("owner", e.to_string())
        }
        e @ OwnersError::InvalidLevel(_) => ApiError::field("level", e.to_string()),
        e @ (OwnersError::Keys(_) | OwnersError::Corrupt { .. }) => {
            ApiError::Internal(e.to_string())
        }
    }
}

fn audit_owner(
    api: &ApiConfig,
    actor: &Actor,
    action: &str,
    package: &str,
    owner: &str,
    level: Option<Level>,
) -> Result<(), ApiError> {
    let mut entry = AuditEntry::now(
        &actor.name,
        action,
        Some(package),
        None,
        actor.remote.clone(),
    );
    entry.owner = Some(owner.to_owned());
    entry.level = level.map(|l| l.as_str().to_owned());
    audit::append(&api.store, &entry).map_err(registry_error)
}
