//! The same router over every store: memory, local disk and a real S3-compatible server.
//! Changes made behind the server's back are served at once on disk and within
//! `revalidate_after` on object stores; an S3 outage serves what is cached, flagged stale.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Response, StatusCode};
use hexrepo_server::auth::{Authenticator, BasicCredentials, ReadAuth};
use hexrepo_server::{AppState, Mirror, MirrorHost, ServerConfig, router};
use hexrepo_store::testing::S3Server;
use hexrepo_store::{Bytes, Precondition, StorageKey, Store};

use crate::support::{header, send};

fn app(store: Store, revalidate_after: Duration) -> Router {
    router(AppState::new(ServerConfig {
        revalidate_after,
        ..ServerConfig::new(store, Authenticator::new(ReadAuth::Public, None, None))
    }))
}

async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> (Response<Body>, Vec<u8>) {
    send(app, "GET", uri, headers, Vec::new()).await
}

/// Store calls block (the S3 backend runs its own runtime), so tests make them off the async
/// thread, as the registry code does.
async fn put(store: &Store, key: StorageKey, bytes: &'static [u8]) {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        store
            .put(&key, Bytes::from_static(bytes), Precondition::Overwrite)
            .unwrap()
    })
    .await
    .unwrap();
}

async fn delete(store: &Store, key: StorageKey) {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.delete(&key).unwrap())
        .await
        .unwrap();
}

/// Writes and deletes behind the server's back: seen at once (`at_once`, local disk) or once
/// `window` has passed since the server last asked, never before (object stores).
async fn changes_are_served(store: Store, window: Duration, at_once: bool) {
    let package = StorageKey::package("foo");
    let tarball = StorageKey::tarball("foo", "1.0.0");
    put(&store, package.clone(), b"one").await;
    put(&store, tarball.clone(), b"tarball").await;
    let app = app(store.clone(), window);

    let (first, body) = get(&app, "/packages/foo", &[]).await;
    let (kept, _) = get(&app, "/tarballs/foo-1.0.0.tar", &[]).await;
    let asked = Instant::now();
    assert_eq!(
        (first.status(), body.as_slice()),
        (StatusCode::OK, &b"one"[..])
    );
    assert_eq!(kept.status(), StatusCode::OK);
    let old_etag = header(&first, "etag").unwrap().to_owned();
    let (unchanged, body) = get(&app, "/packages/foo", &[("if-none-match", &old_etag)]).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    put(&store, package.clone(), b"two").await;
    delete(&store, tarball).await;
    let (response, body) = get(&app, "/packages/foo", &[]).await;
    let (tarball, _) = get(&app, "/tarballs/foo-1.0.0.tar", &[]).await;
    if at_once {
        assert_eq!(body, b"two");
        assert_eq!(tarball.status(), StatusCode::NOT_FOUND);
    } else {
        assert!(
            asked.elapsed() < window,
            "the store took longer than the window ({window:?}) to write: the test proves nothing"
        );
        assert_eq!(body, b"one", "served from memory within the window");
        assert_eq!(header(&response, "etag"), Some(old_etag.as_str()));
        assert_eq!(tarball.status(), StatusCode::OK);
        tokio::time::sleep(window).await;
    }

    let (response, body) = get(&app, "/packages/foo", &[]).await;
    assert_eq!(
        (response.status(), body.as_slice()),
        (StatusCode::OK, &b"two"[..])
    );
    let new_etag = header(&response, "etag").unwrap().to_owned();
    assert_ne!(new_etag, old_etag);
    assert_eq!(header(&response, "x-hexrepo-stale"), None);
    let (stale, body) = get(&app, "/packages/foo", &[("if-none-match", &old_etag)]).await;
    assert_eq!(
        (stale.status(), body.as_slice()),
        (StatusCode::OK, &b"two"[..])
    );
    let (fresh, _) = get(&app, "/packages/foo", &[("if-none-match", &new_etag)]).await;
    assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
    let (gone, _) = get(&app, "/tarballs/foo-1.0.0.tar", &[]).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // Misses are not kept: a new package is served as soon as it is written.
    let (missing, _) = get(&app, "/packages/bar", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    put(&store, StorageKey::package("bar"), b"bar").await;
    let (found, body) = get(&app, "/packages/bar", &[]).await;
    assert_eq!(
        (found.status(), body.as_slice()),
        (StatusCode::OK, &b"bar"[..])
    );
}

#[tokio::test]
async fn memory_store_changes_are_served_within_revalidate_after() {
    changes_are_served(Store::memory(), Duration::from_millis(200), false).await;
}

#[tokio::test]
async fn local_disk_changes_are_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // A long window: local disk must not depend on it.
    changes_are_served(Store::local(dir.path()), Duration::from_hours(1), true).await;
}

#[tokio::test]
async fn s3_changes_are_served_within_revalidate_after() {
    let server = S3Server::start();
    changes_are_served(server.store("changes"), Duration::from_millis(500), false).await;
}

#[tokio::test]
async fn etags_come_from_the_content_so_every_store_gives_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut etags = Vec::new();
    for store in [Store::memory(), Store::local(dir.path())] {
        put(&store, StorageKey::Names, b"names-bytes").await;
        let (response, _) = get(&app(store, Duration::from_secs(1)), "/names", &[]).await;
        etags.push(header(&response, "etag").unwrap().to_owned());
    }
    assert_eq!(etags[0], etags[1]);
}

#[tokio::test]
async fn s3_outage_serves_cached_files_stale_and_answers_503_for_the_rest() {
    let server = S3Server::start();
    let store = server.store("outage");
    put(&store, StorageKey::Names, b"names-bytes").await;
    put(&store, StorageKey::package("foo"), b"package-foo").await;
    let window = Duration::from_millis(200);
    let app = app(store, window);
    let (before, _) = get(&app, "/names", &[]).await;
    assert_eq!(before.status(), StatusCode::OK);
    assert_eq!(header(&before, "x-hexrepo-stale"), None);
    let etag = header(&before, "etag").unwrap().to_owned();

    drop(server);
    tokio::time::sleep(window).await;
    let start = Instant::now();
    let (stale, body) = get(&app, "/names", &[]).await;
    assert_eq!(
        (stale.status(), body.as_slice()),
        (StatusCode::OK, &b"names-bytes"[..])
    );
    assert_eq!(header(&stale, "x-hexrepo-stale"), Some("1"));
    assert_eq!(header(&stale, "etag"), Some(etag.as_str()));
    let (again, _) = get(&app, "/names", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, "x-hexrepo-stale"), Some("1"));

    let (uncached, body) = get(&app, "/packages/foo", &[]).await;
    assert_eq!(uncached.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&uncached, "retry-after"), Some("5"));
    assert_eq!(body, b"storage unavailable, retry later\n");
    // object_store retries a refused connection a few times (about a second of backoff)
    // for each of the two requests that reached the store.
    let elapsed = start.elapsed();
    eprintln!("outage answers took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// The mirror is a second store under `/mirrors/hexpm`, apart from the repository's, behind
/// the same read access; without a mirror configured the prefix is a 404.
#[tokio::test]
async fn the_mirror_is_served_from_its_own_store_under_its_prefix() {
    let (repository, mirror) = (Store::memory(), Store::memory());
    put(&repository, StorageKey::package("acme"), b"private").await;
    put(&mirror, StorageKey::package("jason"), b"mirrored").await;
    put(&mirror, StorageKey::tarball("jason", "1.4.0"), b"tarball").await;
    let app = router(AppState::new(ServerConfig {
        mirror: Some(Mirror::Offline(mirror)),
        ..ServerConfig::new(
            repository.clone(),
            Authenticator::new(ReadAuth::Required, None, None),
        )
    }));
    let (denied, _) = get(&app, "/mirrors/hexpm/packages/jason", &[]).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

    let app = router(AppState::new(ServerConfig {
        mirror: Some(Mirror::Offline(Store::memory())),
        ..ServerConfig::new(
            repository.clone(),
            Authenticator::new(ReadAuth::Public, None, None),
        )
    }));
    let (missing, _) = get(&app, "/mirrors/hexpm/packages/acme", &[]).await;
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "no mixing of stores"
    );

    let mirror = Store::memory();
    put(&mirror, StorageKey::package("jason"), b"mirrored").await;
    put(&mirror, StorageKey::tarball("jason", "1.4.0"), b"tarball").await;
    let app = router(AppState::new(ServerConfig {
        mirror: Some(Mirror::Offline(mirror)),
        ..ServerConfig::new(
            repository.clone(),
            Authenticator::new(ReadAuth::Public, None, None),
        )
    }));
    let (package, body) = get(&app, "/mirrors/hexpm/packages/jason", &[]).await;
    assert_eq!(
        (package.status(), body.as_slice()),
        (StatusCode::OK, &b"mirrored"[..])
    );
    let (tarball, body) = get(&app, "/mirrors/hexpm/tarballs/jason-1.4.0.tar", &[]).await;
    assert_eq!(
        (tarball.status(), body.as_slice()),
        (StatusCode::OK, &b"tarball"[..])
    );
    assert!(header(&tarball, "etag").is_some(), "rebar3 needs an ETag");
    let (escape, _) = get(&app, "/mirrors/hexpm/.hexrepo/keys.json", &[]).await;
    assert_eq!(escape.status(), StatusCode::NOT_FOUND);
    let (private, body) = get(&app, "/packages/acme", &[]).await;
    assert_eq!(
        (private.status(), body.as_slice()),
        (StatusCode::OK, &b"private"[..])
    );

    let (off, _) = get(
        &self::app(repository, Duration::from_secs(1)),
        "/mirrors/hexpm/packages/jason",
        &[],
    )
    .await;
    assert_eq!(off.status(), StatusCode::NOT_FOUND);
}

/// With a mirror host name, requests for that host get the mirror at their root and nothing
/// else (no private packages, no metrics), behind the same read access; other hosts are
/// served as before, the mirror still under its prefix.
#[tokio::test]
async fn the_mirror_host_serves_the_mirror_at_its_root_and_nothing_else() {
    let (repository, mirror) = (Store::memory(), Store::memory());
    put(&repository, StorageKey::package("acme"), b"private").await;
    put(&mirror, StorageKey::package("jason"), b"mirrored").await;
    let credentials = BasicCredentials::new("reader", "secret");
    let app = router(AppState::new(ServerConfig {
        mirror: Some(Mirror::Offline(mirror)),
        mirror_host: Some(MirrorHost::parse("hexpm.example.com").unwrap()),
        ..ServerConfig::new(
            repository,
            Authenticator::new(ReadAuth::Required, Some(credentials), None),
        )
    }));
    let basic = ("authorization", "Basic cmVhZGVyOnNlY3JldA==");
    let on_mirror = ("host", "HexPM.example.com:4000");

    let (package, body) = get(&app, "/packages/jason", &[on_mirror, basic]).await;
    assert_eq!(
        (package.status(), body.as_slice()),
        (StatusCode::OK, &b"mirrored"[..])
    );
    let (denied, _) = get(&app, "/packages/jason", &[on_mirror]).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    for path in [
        "/packages/acme",
        "/metrics",
        "/mirrors/hexpm/packages/jason",
        "/api/packages/acme",
    ] {
        let (hidden, _) = get(&app, path, &[on_mirror, basic]).await;
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (health, _) = get(&app, "/healthz", &[on_mirror]).await;
    assert_eq!(health.status(), StatusCode::OK);

    let elsewhere = ("host", "repo.example.com");
    let (private, body) = get(&app, "/packages/acme", &[elsewhere, basic]).await;
    assert_eq!(
        (private.status(), body.as_slice()),
        (StatusCode::OK, &b"private"[..])
    );
    let (prefixed, body) = get(&app, "/mirrors/hexpm/packages/jason", &[elsewhere, basic]).await;
    assert_eq!(
        (prefixed.status(), body.as_slice()),
        (StatusCode::OK, &b"mirrored"[..])
    );
    let (not_mirrored, _) = get(&app, "/packages/jason", &[elsewhere, basic]).await;
    assert_eq!(not_mirrored.status(), StatusCode::NOT_FOUND);
}
