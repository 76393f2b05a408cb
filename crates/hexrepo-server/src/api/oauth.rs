//! `POST /oauth/token` for the one grant a repository key needs: Hex's `client_credentials`
//! exchange, which `mix hex.repo set hexpm --url URL --auth-key KEY` (and
//! `HEX_TRUSTED_MIRROR_URL` with `HEX_REPOS_KEY`) performs before fetching, and then sends
//! `Authorization: Bearer TOKEN` to the repository. There are no sessions, device codes or
//! refresh tokens here: users authenticate with keys.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use hexrepo_registry::keys::authenticate;
use serde_json::json;

use super::format::decode_body;
use super::{Format, Reply, config, respond};
use crate::router::AppState;

/// How long a client may keep the token before exchanging again. The token does not expire
/// by itself: this only bounds how long a client goes without asking.
const EXPIRES_IN: u64 = 3600;

/// `POST /oauth/token` with `{grant_type: "client_credentials", client_id, client_secret: KEY,
/// scope}`: 200 `{access_token, token_type, expires_in}` for an active key.
pub async fn token(State(state): State<AppState>, format: Format, request: Request) -> Response {
    let result = async {
        config(&state)?;
        let headers = request.headers().clone();
        let bytes = super::body::read_small(request).await?;
        let body = decode_body(&headers, &bytes)?;
        if body["grant_type"].as_str() != Some("client_credentials") {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only the client_credentials grant is supported: exchange a repository key",
            ));
        }
        let secret = body["client_secret"].as_str().unwrap_or_default();
        let keys = state.auth().keys();
        if authenticate(&keys, secret).is_none() {
            return Ok(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "client_secret is not an active key of this repository",
            ));
        }
        // The token is the key itself, which the repository already accepts as `Bearer KEY`:
        // revoking the key revokes the token at once, and nothing else needs storing.
        Ok(Reply::ok(json!({
            "access_token": secret,
            "token_type": "bearer",
            "expires_in": EXPIRES_IN,
        })))
    };
    respond(format, result.await)
}

/// OAuth's error shape, as hex.pm answers token requests (not the API's `{status, message}`).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply {
        status,
        body: Some(json!({"error": error, "error_description": description})),
        location: None,
    }
}
