//! A repository folder in a temp dir and a router over it, called with `oneshot`.

use std::fs;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, Response};
use hexrepo_registry::Layout;
use hexrepo_registry::keys::KeyStore;
use hexrepo_server::auth::{Authenticator, BasicCredentials, ReadAuth};
use hexrepo_server::{AppState, ServerConfig, router};
use hexrepo_store::Store;
use tower::ServiceExt as _;

pub struct Repo {
    pub dir: tempfile::TempDir,
    pub app: axum::Router,
}

impl Repo {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn keys(&self) -> KeyStore {
        KeyStore::new(&Layout::new(self.root()).store())
    }

    pub async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> (Response<Body>, Vec<u8>) {
        self.request("GET", uri, headers).await
    }

    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (Response<Body>, Vec<u8>) {
        self.send(method, uri, headers, Vec::new()).await
    }

    pub async fn post(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (Response<Body>, Vec<u8>) {
        self.send("POST", uri, headers, body).await
    }

    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (Response<Body>, Vec<u8>) {
        send(&self.app, method, uri, headers, body).await
    }
}

/// One request through `app`; the response's body comes back apart.
pub async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (Response<Body>, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (Response::from_parts(parts, Body::empty()), bytes)
}

/// A folder with registry-shaped files, secrets and dot-files that must never be served.
pub fn repo(mode: ReadAuth, basic: Option<(&str, &str)>) -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (path, contents) in [
        ("names", &b"names-bytes"[..]),
        ("versions", b"versions-bytes"),
        ("public_key", b"-----BEGIN RSA PUBLIC KEY-----\n"),
        ("packages/foo", b"package-foo"),
        ("tarballs/foo-1.0.0.tar", &[7u8; 1000][..]),
        ("docs/foo-1.0.0.tar.gz", b"docs"),
        ("installs/hex-1.x.csv", b"1.0.0,abc,1.14.0\n"),
        ("private_key.pem", b"-----BEGIN PRIVATE KEY-----\nsecret"),
        (".env", b"SECRET=1"),
        ("packages/.foo.tmp-1", b"partial"),
        (".hexrepo/keys.json", br#"{"keys": []}"#),
    ] {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    let keys = KeyStore::new(&Layout::new(root).store());
    let auth = Authenticator::new(
        mode,
        basic.map(|(u, p)| BasicCredentials::new(u, p)),
        Some(keys),
    );
    let app = router(AppState::new(ServerConfig::new(Store::local(root), auth)));
    Repo { dir, app }
}

pub fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}
