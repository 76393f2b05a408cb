//! Keys as `mix hex.organization key ORG ...` manages them under `/api/orgs/ORG/keys`, and the
//! OAuth exchange of a key for a token that `mix hex.repo set hexpm --auth-key` performs.

use crate::api::{api_repo, json};
use crate::owners::publish;
use axum::http::StatusCode;
use hexfmt::etf::{self, Term};
use hexrepo_registry::keys::Permission;

const ETF: &str = "application/vnd.hex+erlang";

/// What `mix hex.organization key ORG generate --key-name NAME [--permission D:R]` sends.
fn generate_body(name: &str, permissions: &[(&str, &str)]) -> Vec<u8> {
    etf::encode(&Term::map([
        ("name", Term::binary(name)),
        (
            "permissions",
            Term::List(
                permissions
                    .iter()
                    .map(|(d, r)| {
                        Term::map([("domain", Term::binary(d)), ("resource", Term::binary(r))])
                    })
                    .collect(),
            ),
        ),
    ]))
}

#[tokio::test]
async fn organization_keys_are_this_repositorys_keys() {
    let (repo, writer, _) = api_repo();
    let headers = [
        ("authorization", writer.as_str()),
        ("accept", ETF),
        ("content-type", ETF),
    ];
    // generate: exactly 201 with the secret; the default permission is repository:ORG.
    let (response, bytes) = repo
        .post(
            "/api/orgs/acme/keys",
            &headers,
            generate_body("laptop", &[("repository", "acme")]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = etf::decode(&bytes).unwrap();
    let secret = created.map_get("secret").and_then(Term::as_str).unwrap();
    let laptop = repo
        .keys()
        .load()
        .unwrap()
        .into_iter()
        .find(|k| k.name == "laptop")
        .unwrap();
    assert_eq!(laptop.permissions, [Permission::Repository]);
    publish(&repo, &writer, "foo").await;
    let (response, _) = repo
        .get("/packages/foo", &[("authorization", secret)])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the key reads the repository"
    );

    // `--permission api` (resource "") and `api:read`.
    let (response, _) = repo
        .post(
            "/api/orgs/acme/keys",
            &headers,
            generate_body("ci", &[("api", ""), ("api", "read")]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn other_organizations_are_refused_by_name() {
    let (repo, writer, _) = api_repo();
    // Another repository is refused, not quietly turned into this one.
    let (response, bytes) = repo
        .post(
            "/api/orgs/acme/keys",
            &[("authorization", writer.as_str()), ("content-type", ETF)],
            generate_body("x", &[("repository", "other")]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json(&bytes)["errors"]["permissions"]
            .as_str()
            .unwrap()
            .contains("\"other\"")
    );
    // An organization that is not this repository: the same 404 as /api/repos/NAME.
    let (response, bytes) = repo
        .get("/api/orgs/other/keys", &[("authorization", &writer)])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let message = json(&bytes)["message"].as_str().unwrap().to_owned();
    let (_, bytes) = repo
        .get(
            "/api/repos/other/packages/foo",
            &[("authorization", &writer)],
        )
        .await;
    assert_eq!(json(&bytes)["message"], message.as_str());
    assert!(message.contains("\"other\""), "{message}");
}

#[tokio::test]
async fn organization_keys_are_listed_and_revoked_as_mix_reads_them() {
    let (repo, writer, _) = api_repo();
    let headers = [
        ("authorization", writer.as_str()),
        ("accept", ETF),
        ("content-type", ETF),
    ];
    for name in ["laptop", "ci"] {
        let (response, _) = repo
            .post(
                "/api/orgs/acme/keys",
                &headers,
                generate_body(name, &[("repository", "acme")]),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // list: a list of maps with string name and inserted_at.
    let (response, bytes) = repo.get("/api/orgs/acme/keys", &headers).await;
    assert_eq!(response.status(), StatusCode::OK);
    let Term::List(keys) = etf::decode(&bytes).unwrap() else {
        panic!("keys must be a list")
    };
    let mut names = Vec::new();
    for key in &keys {
        assert!(key.map_get("inserted_at").and_then(Term::as_str).is_some());
        names.push(
            key.map_get("name")
                .and_then(Term::as_str)
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(names, ["writer", "reader", "laptop", "ci"]);

    // revoke NAME, then revoke --all, which keeps the requesting key.
    let (response, _) = repo
        .request("DELETE", "/api/orgs/acme/keys/laptop", &headers)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = repo
        .request("DELETE", "/api/orgs/acme/keys", &headers)
        .await;
    assert!(response.status().is_success());
    let active: Vec<_> = repo
        .keys()
        .load()
        .unwrap()
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| k.name)
        .collect();
    assert_eq!(active, ["writer"]);
}

#[tokio::test]
async fn a_key_sees_and_revokes_only_keys_within_its_permissions() {
    let (repo, writer, _) = api_repo();
    let (_, api_only) = repo
        .keys()
        .create("api-only", &[Permission::ApiWrite], None)
        .unwrap();
    let auth = [("authorization", api_only.as_str())];
    let (_, bytes) = repo.get("/api/orgs/acme/keys", &auth).await;
    let names: Vec<_> = json(&bytes)
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["api-only"], "writer and reader hold `repository`");
    for uri in ["/api/orgs/acme/keys/writer", "/api/keys/reader"] {
        let (response, _) = repo.request("DELETE", uri, &auth).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    let (response, _) = repo.get("/api/keys/writer", &auth).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (response, _) = repo.request("DELETE", "/api/keys", &auth).await;
    assert!(response.status().is_success());
    let active = repo
        .keys()
        .load()
        .unwrap()
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    assert_eq!(active, 3, "revoke --all left the stronger keys alone");
    // The writer holds both, so it may.
    let (response, _) = repo
        .request(
            "DELETE",
            "/api/keys/api-only",
            &[("authorization", &writer)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// What hex_core sends to exchange a repository key.
fn exchange_body(grant: &str, secret: &str) -> Vec<u8> {
    etf::encode(&Term::map([
        ("grant_type", Term::binary(grant)),
        (
            "client_id",
            Term::binary("78ea6566-89fd-481e-a1d6-7d9d78eacca8"),
        ),
        ("client_secret", Term::binary(secret)),
        ("scope", Term::binary("repositories")),
    ]))
}

#[tokio::test]
async fn a_key_is_exchanged_for_a_token_the_repository_accepts() {
    let (repo, writer, reader) = api_repo();
    publish(&repo, &writer, "foo").await;
    let headers = [("accept", ETF), ("content-type", ETF)];
    let (response, bytes) = repo
        .post(
            "/api/oauth/token",
            &headers,
            exchange_body("client_credentials", &reader),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = etf::decode(&bytes).unwrap();
    let token = body
        .map_get("access_token")
        .and_then(Term::as_str)
        .unwrap()
        .to_owned();
    assert_eq!(
        body.map_get("expires_in").and_then(Term::as_i64),
        Some(3600)
    );
    assert_eq!(
        body.map_get("token_type").and_then(Term::as_str),
        Some("bearer")
    );
    let bearer = format!("Bearer {token}");
    let (response, _) = repo
        .get("/packages/foo", &[("authorization", &bearer)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = repo.get("/packages/foo", &[]).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "reads are closed"
    );

    // Unknown secrets and other grants, in OAuth's error shape.
    let (response, bytes) = repo
        .post(
            "/api/oauth/token",
            &[("content-type", ETF)],
            exchange_body("client_credentials", "0123456789abcdef0123456789abcdef"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&bytes)["error"], "invalid_grant");
    assert!(json(&bytes)["error_description"].is_string());
    let (response, bytes) = repo
        .post(
            "/api/oauth/token",
            &[("content-type", ETF)],
            exchange_body("refresh_token", &reader),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&bytes)["error"], "unsupported_grant_type");
    let (response, _) = repo
        .post(
            "/api/oauth/token",
            &[("content-type", "application/json")],
            vec![b' '; 65 * 1024],
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Revoking the key revokes the token.
    let (response, _) = repo
        .request("DELETE", "/api/keys/reader", &[("authorization", &writer)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = repo
        .post(
            "/api/oauth/token",
            &[("content-type", ETF)],
            exchange_body("client_credentials", &reader),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (response, _) = repo
        .get("/packages/foo", &[("authorization", &bearer)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
