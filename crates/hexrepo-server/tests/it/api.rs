//! The Hex API through the router: auth, publish rules and error shapes, and the
//! `Expect: 100-continue` handshake over a real socket.

use std::io::{Read as _, Write as _};

use axum::http::StatusCode;
use hexfmt::keys::PrivateKey;
use hexfmt::metadata::Metadata;
use hexfmt::tarball::TarballBuilder;
use hexrepo_registry::Layout;
use hexrepo_registry::keys::{KeyStore, Permission};
use hexrepo_server::api::ApiConfig;
use hexrepo_server::auth::{Authenticator, BasicCredentials, ReadAuth};
use hexrepo_server::{AppState, ServerConfig, router};
use hexrepo_store::Store;
use serde_json::Value;

use crate::support::Repo;

fn fixture_key() -> PrivateKey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/mix-reference/test_private_key.pem"
    );
    PrivateKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

pub(crate) fn api_repo() -> (Repo, String, String) {
    api_repo_with(None)
}

/// An API repository "acme" with a `writer` (repository + api:write) and a `reader`
/// (repository) key, and the operator's basic credentials when given.
pub(crate) fn api_repo_with(basic: Option<(&str, &str)>) -> (Repo, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let keys = KeyStore::new(&layout.store());
    let (_, writer) = keys
        .create(
            "writer",
            &[Permission::Repository, Permission::ApiWrite],
            None,
        )
        .unwrap();
    let (_, reader) = keys
        .create("reader", &[Permission::Repository], None)
        .unwrap();
    let api = ApiConfig {
        store: layout.store(),
        repository: "acme".into(),
        key: fixture_key(),
        reserved: vec!["elixir".into()],
        base_url: "http://hex.test".into(),
    };
    let auth = Authenticator::new(
        ReadAuth::Auto,
        basic.map(|(u, p)| BasicCredentials::new(u, p)),
        Some(keys),
    );
    let app = router(AppState::new(ServerConfig {
        cache_bytes: 0,
        api: Some(api),
        ..ServerConfig::new(Store::local(dir.path()), auth)
    }));
    (Repo { dir, app }, writer, reader)
}

pub(crate) fn tarball(name: &str, version: &str) -> Vec<u8> {
    let metadata = Metadata {
        name: name.into(),
        version: version.into(),
        app: Some(name.into()),
        ..Metadata::default()
    };
    TarballBuilder::new(&metadata)
        .file("src/x.erl", "-module(x).")
        .build()
}

pub(crate) fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn publish_needs_a_write_key_and_answers_in_hex_shape() {
    let (repo, writer, reader) = api_repo();
    let body = tarball("foo", "1.0.0");
    let (response, bytes) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[],
            body.clone(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(&bytes)["message"],
        "missing authentication information"
    );
    let (response, bytes) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", "nope")],
            body.clone(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&bytes)["message"], "invalid API key");
    let (response, _) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", &reader)],
            body.clone(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (response, bytes) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", &writer)],
            body.clone(),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let release = json(&bytes);
    assert_eq!(release["version"], "1.0.0");
    assert_eq!(
        release["checksum"],
        hexfmt::checksum::Checksum::sha256(&body).to_hex_lower()
    );
    assert_eq!(
        response.headers()["location"],
        "http://hex.test/api/repos/acme/packages/foo/releases/1.0.0"
    );

    let (response, bytes) = repo
        .post(
            "/api/publish?replace=false",
            &[("authorization", &writer)],
            body.clone(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = json(&bytes);
    assert_eq!(error["status"], 422);
    assert_eq!(
        error["errors"]["inserted_at"],
        "must include the --replace flag to update an existing release"
    );

    // The same routes under /api/repos/acme; another repository's prefix is a 404.
    let (response, _) = repo
        .get(
            "/api/repos/acme/packages/foo",
            &[("authorization", &reader)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = repo
        .get(
            "/api/repos/other/packages/foo",
            &[("authorization", &reader)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_name_their_field() {
    let (repo, writer, _) = api_repo();
    let auth = [("authorization", writer.as_str())];
    for (uri, body, field) in [
        (
            "/api/packages/bar/releases?replace=false",
            tarball("foo", "1.0.0"),
            "name",
        ),
        (
            "/api/publish?replace=false",
            tarball("elixir", "1.0.0"),
            "name",
        ),
        (
            "/api/publish?replace=false",
            tarball("foo", "1.0.0+build"),
            "version",
        ),
        ("/api/publish?replace=false", b"garbage".to_vec(), "tar"),
    ] {
        let (response, bytes) = repo.post(uri, &auth, body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert!(
            json(&bytes)["errors"][field].is_string(),
            "{field}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[tokio::test]
async fn users_me_lists_organizations_for_mix() {
    let (repo, writer, _) = api_repo();
    let (response, bytes) = repo
        .get("/api/users/me", &[("authorization", &writer)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let me = json(&bytes);
    assert_eq!(me["username"], "writer");
    assert_eq!(
        me["organizations"],
        serde_json::json!([{"name": "acme", "role": "write"}])
    );
    assert_eq!(me["packages"], Value::Array(Vec::new()));
    let (response, _) = repo
        .get(
            "/api/auth?domain=api&resource=write",
            &[("authorization", &writer)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn replies_are_erlang_terms_when_asked() {
    let (repo, writer, _) = api_repo();
    let (response, bytes) = repo
        .get(
            "/api/users/me",
            &[
                ("authorization", &writer),
                ("accept", "application/vnd.hex+erlang"),
            ],
        )
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.hex+erlang; charset=utf-8"
    );
    let term = hexfmt::etf::decode(&bytes).unwrap();
    assert_eq!(
        term.map_get("username").and_then(hexfmt::etf::Term::as_str),
        Some("writer")
    );
}

/// Sends raw HTTP/1.1 and returns what the server said before and after the body.
fn expect_continue(
    address: std::net::SocketAddr,
    auth: Option<&str>,
    length: usize,
    body: &[u8],
) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let auth = auth
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /api/packages/foo/releases?replace=false HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/octet-stream\r\ncontent-length: {length}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 25];
    let n = stream.read(&mut first).unwrap();
    let first = String::from_utf8_lossy(&first[..n]).into_owned();
    if !first.starts_with("HTTP/1.1 100") {
        return (first, String::new());
    }
    stream.write_all(body).unwrap();
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
    (first, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_only_after_auth_and_size_checks() {
    let (repo, writer, _) = api_repo();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = repo.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let body = tarball("foo", "1.0.0");
    let len = body.len();
    let (first, _) = tokio::task::spawn_blocking(move || expect_continue(address, None, len, &[]))
        .await
        .unwrap();
    assert!(
        first.starts_with("HTTP/1.1 401"),
        "no 100 before auth: {first}"
    );
    let w = writer.clone();
    let (first, _) = tokio::task::spawn_blocking(move || {
        expect_continue(address, Some(&w), 17 * 1024 * 1024, &[])
    })
    .await
    .unwrap();
    assert!(
        first.starts_with("HTTP/1.1 413"),
        "no 100 for an oversized body: {first}"
    );
    let (first, rest) =
        tokio::task::spawn_blocking(move || expect_continue(address, Some(&writer), len, &body))
            .await
            .unwrap();
    assert!(first.starts_with("HTTP/1.1 100"), "{first}");
    assert!(rest.contains("HTTP/1.1 201"), "{rest}");
}

#[tokio::test]
async fn names_too_long_for_a_file_are_a_4xx_on_every_route() {
    let (repo, writer, _) = api_repo();
    let auth = [("authorization", writer.as_str())];
    let long = "a".repeat(300);
    let version = format!("1.0.0-{}", "b".repeat(300));
    for (method, uri) in [
        ("GET", format!("/api/packages/{long}")),
        ("GET", format!("/api/packages/{long}/releases/1.0.0")),
        ("GET", format!("/api/packages/{long}/owners")),
        ("DELETE", format!("/api/packages/{long}/releases/1.0.0")),
        (
            "POST",
            format!("/api/packages/{long}/releases/1.0.0/retire"),
        ),
        ("GET", format!("/api/packages/{long}/releases/1.0.0/docs")),
        ("GET", format!("/api/packages/foo/releases/{version}")),
        (
            "DELETE",
            format!("/api/packages/foo/releases/{version}/docs"),
        ),
        ("GET", format!("/packages/{long}")),
        ("GET", format!("/tarballs/{long}-1.0.0.tar")),
        ("GET", format!("/docs/foo-{version}.tar.gz")),
    ] {
        let (response, _) = repo.send(method, &uri, &auth, b"{}".to_vec()).await;
        assert!(
            response.status().is_client_error(),
            "{method} {}...: {}",
            &uri[..40],
            response.status()
        );
    }
    // A 200-character name is refused at publish, naming the field.
    let (response, bytes) = repo
        .post(
            "/api/publish?replace=false",
            &auth,
            tarball(&"a".repeat(200), "1.0.0"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json(&bytes)["errors"]["name"].is_string());
}

#[tokio::test]
async fn dependency_names_and_repositories_are_checked_before_signing() {
    use hexfmt::metadata::MetadataRequirement;
    let (repo, writer, _) = api_repo();
    let auth = [("authorization", writer.as_str())];
    let with_requirement = |name: &str, repository: Option<&str>| {
        let metadata = Metadata {
            name: "foo".into(),
            version: "1.0.0".into(),
            app: Some("foo".into()),
            requirements: vec![MetadataRequirement {
                name: name.into(),
                app: None,
                requirement: Some("~> 1.0".into()),
                optional: false,
                repository: repository.map(str::to_owned),
            }],
            ..Metadata::default()
        };
        TarballBuilder::new(&metadata)
            .file("src/x.erl", "-module(x).")
            .build()
    };
    for (name, repository) in [
        ("../../names", Some("hexpm")),
        ("bad name", Some("hexpm")),
        (&*"x".repeat(300), Some("hexpm")),
        ("jason", Some("../evil")),
        ("jason", Some("hex pm")),
    ] {
        let (response, bytes) = repo
            .post(
                "/api/publish?replace=false",
                &auth,
                with_requirement(name, repository),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:.40} from {repository:?}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(
            json(&bytes)["errors"]["requirements"].is_object(),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(!repo.root().join("packages/foo").exists(), "nothing signed");
    }
}

#[tokio::test]
async fn names_and_versions_in_api_paths_cannot_name_other_files() {
    let (repo, writer, _) = api_repo();
    std::fs::write(repo.root().join("victim-1.0.0.tar.gz"), b"keep me").unwrap();
    let auth = [("authorization", writer.as_str())];
    for (method, uri) in [
        ("POST", "/api/packages/..%2Fvictim/releases/1.0.0/docs"),
        ("DELETE", "/api/packages/..%2Fvictim/releases/1.0.0/docs"),
        ("DELETE", "/api/packages/..%2Fnames/releases/1.0.0"),
        ("POST", "/api/packages/..%2Fnames/releases/1.0.0/retire"),
        ("DELETE", "/api/packages/foo/releases/..%2F..%2Fx/docs"),
        ("GET", "/api/packages/..%2Fversions"),
        ("GET", "/api/keys/..%2F.hexrepo"),
        ("POST", "/api/packages/.hidden/releases?replace=false"),
    ] {
        let (response, _) = repo.send(method, uri, &auth, b"x".to_vec()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {uri}");
    }
    assert_eq!(
        std::fs::read(repo.root().join("victim-1.0.0.tar.gz")).unwrap(),
        b"keep me"
    );
}

#[tokio::test]
async fn the_docs_redirect_tells_only_readers_whether_docs_exist() {
    let (repo, writer, reader) = api_repo();
    let (response, _) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", &writer)],
            tarball("foo", "1.0.0"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let route = "/api/packages/foo/releases/1.0.0/docs";
    // A private repository: no answer about docs without credentials, or with wrong ones.
    for headers in [vec![], vec![("authorization", "nope")]] {
        let (response, _) = repo.get(route, &headers).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
    }
    let (response, _) = repo.get(route, &[("authorization", &reader)]).await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "a reader learns: no docs"
    );
}

#[tokio::test]
async fn a_retire_body_is_read_only_as_far_as_a_retirement_needs() {
    let (repo, writer, _) = api_repo();
    let (response, _) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", &writer)],
            tarball("foo", "1.0.0"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let before = std::fs::read(repo.root().join("packages/foo")).unwrap();
    // A megabyte of JSON (a valid shape, an absurd message): refused before decoding.
    let message = "x".repeat(1024 * 1024);
    let body = format!(r#"{{"reason": "other", "message": "{message}"}}"#).into_bytes();
    let (response, bytes) = repo
        .post(
            "/api/packages/foo/releases/1.0.0/retire",
            &[
                ("authorization", &writer),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&bytes)["errors"]["body"], "too big");
    assert_eq!(
        std::fs::read(repo.root().join("packages/foo")).unwrap(),
        before
    );
}

/// A gzipped docs tar: `index.html`, then `(path, type, link target)` entries with no data.
fn docs_with(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut index = tar::Header::new_ustar();
    index.set_size(6);
    index.set_mode(0o644);
    tar.append_data(&mut index, "index.html", &b"<html>"[..])
        .unwrap();
    for &(path, kind, target) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        // Raw fields: `set_path` would refuse the hostile ones.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        tar.append(&header, std::io::empty()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn hostile_docs_are_refused_naming_the_entry_and_nothing_is_stored() {
    use tar::EntryType::{Char, Fifo, Link, Regular, Symlink};
    let (repo, writer, _) = api_repo();
    let (response, _) = repo
        .post(
            "/api/packages/foo/releases?replace=false",
            &[("authorization", &writer)],
            tarball("foo", "1.0.0"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let route = "/api/packages/foo/releases/1.0.0/docs";
    let stored = repo.root().join("docs/foo-1.0.0.tar.gz");
    for (entries, named) in [
        (&[("../evil.html", Regular, "")][..], "\"../evil.html\""),
        (&[("abs", Symlink, "/etc/passwd")], "\"abs\""),
        (
            &[("d/up", Symlink, ".."), ("s", Symlink, "d/up/..")],
            "\"s\"",
        ),
        (
            &[("d/up", Symlink, ".."), ("d/up/x.html", Regular, "")],
            "\"d/up/x.html\"",
        ),
        (&[("hard", Link, "index.html")], "\"hard\" is a hard link"),
        (&[("tty", Char, "")], "\"tty\" is a character device"),
        (&[("pipe", Fifo, "")], "\"pipe\" is a fifo"),
        (
            &[("index.html", Regular, "")],
            "\"index.html\" appears twice",
        ),
    ] {
        let (response, bytes) = repo
            .post(route, &[("authorization", &writer)], docs_with(entries))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{entries:?}"
        );
        let message = json(&bytes)["errors"]["tar"].as_str().unwrap().to_owned();
        assert!(message.contains(named), "{entries:?}: {message}");
        assert!(!stored.exists(), "{entries:?}: docs stored");
    }
    // The same docs without the hostile entries are stored.
    let (response, _) = repo
        .post(route, &[("authorization", &writer)], docs_with(&[]))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(stored.exists());
}
