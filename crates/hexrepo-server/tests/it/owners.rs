//! Package owners through the router, as `mix hex.owner` and `mix hex.user` reach them: the
//! first publisher owns, full owners decide, the last full owner stays, and every change is
//! audited.

use axum::http::StatusCode;
use hexfmt::etf::{self, Term};
use hexrepo_registry::audit;
use hexrepo_registry::keys::Permission;
use hexrepo_store::Store;
use serde_json::{Value, json};

use crate::api::{api_repo, api_repo_with, json, tarball};
use crate::support::Repo;

const ETF: &str = "application/vnd.hex+erlang";

/// What `mix hex.owner add|transfer` sends.
fn owner_body(level: &str, transfer: bool) -> Vec<u8> {
    etf::encode(&Term::map([
        ("level", Term::binary(level)),
        ("transfer", Term::Bool(transfer)),
    ]))
}

pub(crate) async fn publish(repo: &Repo, auth: &str, name: &str) {
    let (response, bytes) = repo
        .post(
            &format!("/api/packages/{name}/releases?replace=false"),
            &[("authorization", auth)],
            tarball(name, "1.0.0"),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

async fn put_owner(
    repo: &Repo,
    auth: &str,
    uri: &str,
    level: &str,
    transfer: bool,
) -> (StatusCode, Value) {
    let (response, bytes) = repo
        .send(
            "PUT",
            uri,
            &[("authorization", auth), ("content-type", ETF)],
            owner_body(level, transfer),
        )
        .await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        json(&bytes)
    };
    (response.status(), body)
}

async fn owners(repo: &Repo, auth: &str, package: &str) -> Vec<(String, String)> {
    let (response, bytes) = repo
        .get(
            &format!("/api/packages/{package}/owners"),
            &[("authorization", auth)],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    json(&bytes)
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["username"].as_str().unwrap().to_owned(),
                o["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_first_publisher_owns_and_full_owners_change_ownership() {
    let (repo, writer, reader) = api_repo();
    let (_, other) = repo
        .keys()
        .create(
            "other",
            &[Permission::Repository, Permission::ApiWrite],
            None,
        )
        .unwrap();
    publish(&repo, &writer, "foo").await;
    // A second release by another key changes nothing.
    let (response, _) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", &other)],
            tarball("foo", "1.1.0"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // hex.pm's owner objects; `email` carries the name, since mix prints only email and level.
    let (response, bytes) = repo
        .get("/api/packages/foo/owners", &[("authorization", &reader)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed = json(&bytes);
    let owner = &listed[0];
    assert_eq!(listed.as_array().unwrap().len(), 1);
    for (field, value) in [
        ("username", json!("writer")),
        ("email", json!("writer")),
        ("level", json!("full")),
        ("handles", json!({})),
        ("full_name", Value::Null),
    ] {
        assert_eq!(owner[field], value, "{field}");
    }
    for field in ["url", "inserted_at", "updated_at"] {
        assert!(owner[field].is_string(), "{field}: {owner}");
    }
    let (_, bytes) = repo
        .get("/api/packages/foo", &[("authorization", &reader)])
        .await;
    assert_eq!(json(&bytes)["owners"][0]["username"], "writer");

    // Not a full owner: refused, and the message says why.
    let uri = "/api/packages/foo/owners/other";
    let (status, body) = put_owner(&repo, &other, uri, "full", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("full owner"),
        "{body}"
    );
    // api:write is needed before anything else.
    let (status, _) = put_owner(&repo, &reader, uri, "full", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = put_owner(&repo, &writer, uri, "maintainer", false).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        owners(&repo, &reader, "foo").await,
        pairs(&[("writer", "full"), ("other", "maintainer")])
    );
    // A maintainer still may not change owners.
    let (status, _) = put_owner(&repo, &other, uri, "full", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Unknown identities, levels and packages.
    let (status, body) = put_owner(
        &repo,
        &writer,
        "/api/packages/foo/owners/nobody",
        "full",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"].as_str().unwrap().contains("\"nobody\""),
        "{body}"
    );
    let (status, body) = put_owner(&repo, &writer, uri, "owner", false).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["level"].is_string(), "{body}");
    let (status, body) = put_owner(
        &repo,
        &writer,
        "/api/packages/nope/owners/other",
        "full",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");
    let (response, _) = repo
        .get("/api/packages/nope/owners", &[("authorization", &reader)])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, _) = put_owner(
        &repo,
        &writer,
        "/api/packages/foo/owners/..%2Fkeys",
        "full",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn transfers_and_removals_keep_a_full_owner_and_are_audited() {
    let (repo, writer, reader) = api_repo();
    let (_, other) = repo
        .keys()
        .create(
            "other",
            &[Permission::Repository, Permission::ApiWrite],
            None,
        )
        .unwrap();
    publish(&repo, &writer, "foo").await;
    let uri = "/api/packages/foo/owners/other";
    let (status, _) = put_owner(&repo, &writer, uri, "maintainer", false).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The last full owner stays.
    let (response, bytes) = repo
        .request(
            "DELETE",
            "/api/packages/foo/owners/writer",
            &[("authorization", &writer)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json(&bytes)["errors"]["owner"].is_string());

    // Transfer, under /api/repos/acme as `--organization acme` sends it: the only owner now.
    let (status, body) = put_owner(
        &repo,
        &writer,
        "/api/repos/acme/packages/foo/owners/other",
        "full",
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        owners(&repo, &reader, "foo").await,
        pairs(&[("other", "full")])
    );
    let (status, _) = put_owner(&repo, &writer, uri, "full", false).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the old owner lost its rights"
    );

    // The new owner adds the old one back and removes it again.
    let back = "/api/packages/foo/owners/writer";
    let (status, _) = put_owner(&repo, &other, back, "full", false).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (response, _) = repo
        .request("DELETE", back, &[("authorization", &other)])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (response, _) = repo
        .request("DELETE", back, &[("authorization", &other)])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "not an owner any more"
    );

    let actions: Vec<(String, Option<String>, Option<String>)> =
        audit::read(&Store::local(repo.root()))
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("owner."))
            .map(|e| (e.action, e.owner, e.level))
            .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        actions,
        [
            ("owner.add".to_owned(), s("writer"), s("full")),
            ("owner.add".to_owned(), s("other"), s("maintainer")),
            ("owner.transfer".to_owned(), s("other"), s("full")),
            ("owner.add".to_owned(), s("writer"), s("full")),
            ("owner.remove".to_owned(), s("writer"), None),
        ]
    );
}

#[tokio::test]
async fn mix_reads_owner_lists_and_owned_packages_as_erlang_terms() {
    let (repo, writer, _) = api_repo();
    publish(&repo, &writer, "foo").await;
    publish(&repo, &writer, "bar").await;
    let etf_auth = [("authorization", writer.as_str()), ("accept", ETF)];
    let (response, bytes) = repo.get("/api/packages/foo/owners", &etf_auth).await;
    assert_eq!(response.status(), StatusCode::OK);
    let Term::List(list) = etf::decode(&bytes).unwrap() else {
        panic!("owners must be a list")
    };
    assert_eq!(
        list[0].map_get("email").and_then(Term::as_str),
        Some("writer")
    );
    assert_eq!(
        list[0].map_get("level").and_then(Term::as_str),
        Some("full")
    );

    // `mix hex.owner packages` and `mix hex.publish` read /users/me.
    let (_, bytes) = repo.get("/api/users/me", &etf_auth).await;
    let me = etf::decode(&bytes).unwrap();
    let Some(Term::List(packages)) = me.map_get("packages") else {
        panic!("packages must be a list: {me:?}")
    };
    let mut names: Vec<_> = packages
        .iter()
        .map(|p| p.map_get("name").and_then(Term::as_str).unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bar", "foo"]);
    assert_eq!(
        packages[0].map_get("repository").and_then(Term::as_str),
        Some("acme")
    );
    assert!(packages[0].map_get("html_url").is_some());
    let Some(Term::List(orgs)) = me.map_get("organizations") else {
        panic!("organizations must be a list: {me:?}")
    };
    assert_eq!(orgs[0].map_get("name").and_then(Term::as_str), Some("acme"));
    assert_eq!(
        orgs[0].map_get("role").and_then(Term::as_str),
        Some("write")
    );
}

#[tokio::test]
async fn the_operator_publishes_without_owning_and_may_change_any_owners() {
    let (repo, writer, reader) = api_repo_with(Some(("admin", "s3cret")));
    let operator = "Basic YWRtaW46czNjcmV0"; // admin:s3cret
    publish(&repo, operator, "foo").await;
    assert!(owners(&repo, &reader, "foo").await.is_empty());

    // Nobody owns it yet: any writer may name the first owner, here the operator by username.
    let (status, body) = put_owner(
        &repo,
        &writer,
        "/api/packages/foo/owners/admin",
        "full",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Now only the owner (the operator) may change them.
    let (status, _) = put_owner(
        &repo,
        &writer,
        "/api/packages/foo/owners/writer",
        "full",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The operator may change any package's owners, owner or not.
    publish(&repo, &writer, "bar").await;
    let (status, _) = put_owner(
        &repo,
        operator,
        "/api/packages/bar/owners/reader",
        "maintainer",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        owners(&repo, &reader, "bar").await,
        pairs(&[("writer", "full"), ("reader", "maintainer")])
    );

    let (_, bytes) = repo
        .get("/api/users/me", &[("authorization", operator)])
        .await;
    let me = json(&bytes);
    assert_eq!(
        me["organizations"],
        json!([{"name": "acme", "role": "admin"}])
    );
    assert_eq!(me["packages"][0]["name"], "foo");
    let (_, bytes) = repo
        .get("/api/users/me", &[("authorization", &reader)])
        .await;
    // reader has no api:read: /users/me refuses it.
    assert_eq!(json(&bytes)["status"], 403);
}
