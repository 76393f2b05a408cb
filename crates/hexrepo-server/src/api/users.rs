//! `GET /users/me` (mix calls it before publishing and maps over `organizations`; `mix hex.owner
//! packages` reads `packages`) and `GET /auth` (does the key have a permission?).

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::response::Response;
use hexrepo_registry::keys::Permission;
use serde_json::{Value, json};

use super::owners::{owner_store, owners_error};
use super::{ApiError, Format, Reply, authorize, blocking, respond};
use crate::router::AppState;

/// `GET /users/me`: who the key is, its role in this repository (mix's publish maps over
/// `organizations`) and the packages it owns (`mix hex.owner packages`).
pub async fn me(State(state): State<AppState>, format: Format, request: Request) -> Response {
    let result = match authorize(&state, &request, Permission::ApiRead) {
        Ok(actor) => {
            blocking(move || {
                let api = super::config(&state)?;
                let role = if actor.operator {
                    "admin"
                } else if actor.permissions.contains(&Permission::ApiWrite) {
                    "write"
                } else {
                    "read"
                };
                let packages: Vec<Value> = owner_store(&state, api)
                    .owned_by(&actor.identity)
                    .map_err(owners_error)?
                    .into_iter()
                    .map(|(name, _)| {
                        json!({
                            "name": name,
                            "repository": api.repository,
                            // No web pages here, as in the package body.
                            "html_url": null,
                            "url": format!("{}/packages/{name}", api.api_url()),
                        })
                    })
                    .collect();
                Ok(Reply::ok(json!({
                    "username": actor.name,
                    "email": null,
                    "organizations": [{"name": api.repository, "role": role}],
                    "packages": packages,
                    "permissions": super::keys::permissions_json(api, &actor.permissions),
                })))
            })
            .await
        }
        Err(e) => Err(e),
    };
    respond(format, result)
}

pub async fn auth(
    State(state): State<AppState>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let needed = match (
        query.get("domain").map(String::as_str),
        query.get("resource").map(String::as_str),
    ) {
        (Some("api"), Some("read")) => Ok(Permission::ApiRead),
        (Some("api"), Some("write") | None) => Ok(Permission::ApiWrite),
        (Some("repository" | "repositories"), _) => Ok(Permission::Repository),
        _ => Err(ApiError::BadRequest(
            "unknown domain or resource".to_owned(),
        )),
    };
    let result = needed
        .and_then(|needed| authorize(&state, &request, needed))
        .map(|_| Reply::no_content());
    respond(format, result)
}
