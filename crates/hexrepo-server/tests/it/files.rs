//! What is served and how: the allow-list, conditional requests, ranges, HEAD, freshness.

use std::fs;

use axum::http::StatusCode;
use hexrepo_server::auth::ReadAuth;

use crate::support::{header, repo};

#[tokio::test]
async fn serves_repository_resources_as_stored_with_an_etag() {
    let repo = repo(ReadAuth::Public, None);
    for (uri, body, kind) in [
        ("/names", &b"names-bytes"[..], "application/octet-stream"),
        ("/versions", b"versions-bytes", "application/octet-stream"),
        ("/packages/foo", b"package-foo", "application/octet-stream"),
        (
            "/tarballs/foo-1.0.0.tar",
            &[7u8; 1000][..],
            "application/x-tar",
        ),
        ("/docs/foo-1.0.0.tar.gz", b"docs", "application/gzip"),
        (
            "/installs/hex-1.x.csv",
            b"1.0.0,abc,1.14.0\n",
            "application/octet-stream",
        ),
    ] {
        let (response, bytes) = repo.get(uri, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(bytes, body, "{uri}");
        assert!(
            header(&response, "etag").is_some_and(|e| e.starts_with('"')),
            "{uri}"
        );
        assert!(header(&response, "last-modified").is_some(), "{uri}");
        assert_eq!(header(&response, "content-type"), Some(kind), "{uri}");
        assert_eq!(
            header(&response, "content-encoding"),
            None,
            "{uri}: never re-encode gzip files"
        );
        assert_eq!(
            header(&response, "content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    let (names, _) = repo.get("/names", &[]).await;
    assert_eq!(header(&names, "cache-control"), Some("public, max-age=60"));
    let (tarball, _) = repo.get("/tarballs/foo-1.0.0.tar", &[]).await;
    assert_eq!(
        header(&tarball, "cache-control"),
        Some("public, max-age=604800")
    );
}

#[tokio::test]
async fn everything_else_is_a_404_even_when_the_file_exists() {
    let repo = repo(ReadAuth::Public, None);
    for uri in [
        "/private_key.pem",
        "/.env",
        "/.hexrepo/keys.json",
        "/packages/.foo.tmp-1",
        "/packages/..%2Fprivate_key.pem",
        "/packages/%2e%2e",
        "/packages/foo%2F..%2F..%2Fprivate_key.pem",
        "/tarballs/../private_key.pem",
        "/tarballs/..%2Fprivate_key.pem",
        "/tarballs/foo-1.0.0.tar/",
        "/packages/foo/extra",
        "/installs/../private_key.pem",
        "/installs/%2e%2e/private_key.pem",
        "//names",
        "/names/",
        "/%2Fetc%2Fpasswd",
        "/docs/../names",
        "/",
    ] {
        let (response, body) = repo.get(uri, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert!(
            !String::from_utf8_lossy(&body).contains("SECRET")
                && !body.starts_with(b"-----BEGIN PRIVATE"),
            "{uri}"
        );
    }
    let (missing, _) = repo.get("/packages/bar", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn conditional_requests_get_304() {
    let repo = repo(ReadAuth::Public, None);
    let (first, _) = repo.get("/packages/foo", &[]).await;
    let etag = header(&first, "etag").unwrap().to_owned();
    let last_modified = header(&first, "last-modified").unwrap().to_owned();
    for condition in [
        ("if-none-match", etag.clone()),
        ("if-none-match", format!("W/{etag}")),
        ("if-none-match", format!("\"other\", {etag}")),
        ("if-none-match", "*".to_owned()),
        ("if-modified-since", last_modified),
    ] {
        let (response, body) = repo
            .get("/packages/foo", &[(condition.0, &condition.1)])
            .await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{condition:?}");
        assert!(body.is_empty());
        assert_eq!(header(&response, "etag"), Some(etag.as_str()));
    }
    // rebar3 3.19 sends an empty If-None-Match on a first fetch.
    for condition in [
        ("if-none-match", ""),
        ("if-none-match", "\"stale\""),
        ("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT"),
    ] {
        let (response, body) = repo.get("/packages/foo", &[condition]).await;
        assert_eq!(response.status(), StatusCode::OK, "{condition:?}");
        assert_eq!(body, b"package-foo");
    }
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let repo = repo(ReadAuth::Public, None);
    let (response, body) = repo.request("HEAD", "/tarballs/foo-1.0.0.tar", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header(&response, "content-length"), Some("1000"));
    assert!(header(&response, "etag").is_some());
}

#[tokio::test]
async fn single_byte_ranges_are_served() {
    let repo = repo(ReadAuth::Public, None);
    let uri = "/tarballs/foo-1.0.0.tar";
    let (response, body) = repo.get(uri, &[("range", "bytes=10-19")]).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, "content-range"), Some("bytes 10-19/1000"));
    assert_eq!(body.len(), 10);
    let (response, body) = repo.get(uri, &[("range", "bytes=-5")]).await;
    assert_eq!(
        header(&response, "content-range"),
        Some("bytes 995-999/1000")
    );
    assert_eq!(body.len(), 5);
    let (response, body) = repo.get(uri, &[("range", "bytes=990-")]).await;
    assert_eq!(
        (response.status(), body.len()),
        (StatusCode::PARTIAL_CONTENT, 10)
    );
    let (response, _) = repo.get(uri, &[("range", "bytes=5000-")]).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&response, "content-range"), Some("bytes */1000"));
    let (response, body) = repo.get(uri, &[("range", "bytes=0-1,5-6")]).await;
    assert_eq!(
        (response.status(), body.len()),
        (StatusCode::OK, 1000),
        "multiple ranges: whole file"
    );
    let (response, body) = repo
        .get(uri, &[("range", "bytes=0-9"), ("if-range", "\"stale\"")])
        .await;
    assert_eq!(
        (response.status(), body.len()),
        (StatusCode::OK, 1000),
        "stale If-Range: whole file"
    );
}

#[tokio::test]
async fn a_file_replaced_by_rename_is_served_at_once() {
    let repo = repo(ReadAuth::Public, None);
    let (before, body) = repo.get("/names", &[]).await;
    assert_eq!(body, b"names-bytes");
    let tmp = repo.root().join(".names.tmp");
    fs::write(&tmp, b"new-names").unwrap();
    fs::rename(&tmp, repo.root().join("names")).unwrap();
    let (after, body) = repo.get("/names", &[]).await;
    assert_eq!(body, b"new-names");
    assert_ne!(header(&before, "etag"), header(&after, "etag"));
    fs::remove_file(repo.root().join("names")).unwrap();
    let (gone, _) = repo.get("/names", &[]).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tarballs_beyond_the_memory_budget_are_still_served() {
    let repo = repo(ReadAuth::Public, None);
    let big = vec![3u8; 2 * 1024 * 1024];
    fs::write(repo.root().join("tarballs/big-1.0.0.tar"), &big).unwrap();
    for _ in 0..2 {
        let (response, body) = repo.get("/tarballs/big-1.0.0.tar", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, big);
    }
}
