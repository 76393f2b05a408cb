//! Who may read: basic auth, repository keys, 401 versus 403, and the operational endpoints.

use axum::http::StatusCode;
use base64::Engine as _;
use hexrepo_registry::keys::Permission;
use hexrepo_server::auth::ReadAuth;

use crate::support::{header, repo};

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn basic_auth_401_without_credentials_403_with_wrong_ones() {
    let repo = repo(ReadAuth::Auto, Some(("team", "s3cret")));
    let (response, _) = repo.get("/packages/foo", &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&response, "www-authenticate"),
        Some("Basic realm=\"hexrepo\"")
    );
    for wrong in [
        basic("team", "wrong"),
        basic("other", "s3cret"),
        "Basic !!!".to_owned(),
        "0123456789abcdef0123456789abcdef".to_owned(),
    ] {
        let (response, _) = repo
            .get("/packages/foo", &[("authorization", &wrong)])
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{wrong}");
    }
    let (response, body) = repo
        .get(
            "/packages/foo",
            &[("authorization", &basic("team", "s3cret"))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, b"package-foo");
    assert_eq!(
        header(&response, "cache-control"),
        Some("private, max-age=60")
    );
    // Unknown paths say nothing about auth, and the health check needs none.
    assert_eq!(
        repo.get("/nope", &[]).await.0.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(repo.get("/healthz", &[]).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_repository_key_turns_auth_on_and_revoking_it_takes_effect_at_once() {
    let repo = repo(ReadAuth::Auto, None);
    assert_eq!(
        repo.get("/names", &[]).await.0.status(),
        StatusCode::OK,
        "no credentials exist: open"
    );

    let (_, secret) = repo
        .keys()
        .create("ci", &[Permission::Repository], None)
        .unwrap();
    assert_eq!(
        repo.get("/names", &[]).await.0.status(),
        StatusCode::UNAUTHORIZED
    );
    for presented in [
        secret.clone(),
        format!("Bearer {secret}"),
        format!("  {secret} "),
    ] {
        let (response, _) = repo.get("/names", &[("authorization", &presented)]).await;
        assert_eq!(response.status(), StatusCode::OK, "{presented:?}");
    }
    repo.keys().revoke("ci").unwrap();
    let (response, _) = repo.get("/names", &[("authorization", &secret)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (response, _) = repo.get("/names", &[]).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "revoking the last key keeps reads closed"
    );
}

#[tokio::test]
async fn an_api_only_key_cannot_read_the_repository() {
    let repo = repo(ReadAuth::Required, None);
    let (_, secret) = repo
        .keys()
        .create("publisher", &[Permission::ApiWrite], None)
        .unwrap();
    let (response, _) = repo.get("/names", &[("authorization", &secret)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn open_reads_serve_unknown_credentials_as_anonymous() {
    // Hex 2.5.0/2.5.1 send the user's hex.pm OAuth token to every repository, and
    // HEX_TRUSTED_MIRROR_URL does on every version: an open repository must not lock them out.
    for repo in [repo(ReadAuth::Public, None), repo(ReadAuth::Auto, None)] {
        assert_eq!(repo.get("/names", &[]).await.0.status(), StatusCode::OK);
        for presented in ["not-a-key", "Bearer hexpm-oauth-token", &basic("team", "x")] {
            let (response, _) = repo.get("/names", &[("authorization", presented)]).await;
            assert_eq!(response.status(), StatusCode::OK, "{presented}");
        }
    }
    // Once reads need credentials, unknown ones stay refused.
    let closed = repo(ReadAuth::Required, None);
    let (response, _) = closed
        .get("/names", &[("authorization", "not-a-key")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_need_credentials() {
    let repo = repo(ReadAuth::Auto, Some(("team", "s3cret")));
    let auth = basic("team", "s3cret");
    repo.get("/packages/foo", &[("authorization", &auth)]).await;
    repo.get("/packages/foo", &[]).await;
    assert_eq!(
        repo.get("/metrics", &[]).await.0.status(),
        StatusCode::UNAUTHORIZED
    );
    let (response, body) = repo.get("/metrics", &[("authorization", &auth)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(
            r#"hexrepo_http_requests_total{route="/packages/{name}",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"hexrepo_http_requests_total{route="/packages/{name}",method="GET",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("hexrepo_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        // 11 bytes of package plus the 24-byte "authentication required\n" of the 401.
        text.contains(r#"hexrepo_http_response_bytes_total{route="/packages/{name}"} 35"#),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreadable_key_file_fails_closed() {
    let repo = repo(ReadAuth::Auto, None);
    let (_, secret) = repo
        .keys()
        .create("ci", &[Permission::Repository], None)
        .unwrap();
    std::fs::write(repo.keys().path(), b"{ truncated").unwrap();
    assert_eq!(
        repo.get("/names", &[]).await.0.status(),
        StatusCode::UNAUTHORIZED
    );
    let (response, _) = repo.get("/names", &[("authorization", &secret)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn made_up_methods_fold_into_one_metrics_label() {
    let repo = repo(ReadAuth::Auto, Some(("team", "s3cret")));
    for i in 0..200 {
        repo.request(&format!("MADEUP{i}"), "/names", &[]).await;
    }
    let auth = basic("team", "s3cret");
    let (_, body) = repo.get("/metrics", &[("authorization", &auth)]).await;
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("MADEUP"), "{text}");
    let series = text
        .lines()
        .filter(|l| {
            l.starts_with("hexrepo_http_requests_total{") && l.contains(r#"method="OTHER""#)
        })
        .count();
    assert_eq!(series, 1, "{text}");
}
