//! `GET /users/me` (mix calls it before publishing and maps over `organizations`) and
//! `GET /auth` (does the key have a permission?).

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::response::Response;
use hexrepo_registry::keys::Permission;
use serde_json::json;

use super::{ApiError, Format, Reply, authorize, respond};
use crate::router::AppState;

pub async fn me(State(state): State<AppState>, format: Format, request: Request) -> Response {
    let result = authorize(&state, &request, Permission::ApiRead).and_then(|actor| {
        let api = super::config(&state)?;
        Ok(Reply::ok(json!({
            "username": actor.name,
            "email": null,
            "organizations": [],
            "permissions": super::keys::permissions_json(api, &actor.permissions),
        })))
    });
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
