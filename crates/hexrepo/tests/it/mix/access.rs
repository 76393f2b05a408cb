//! Who may read, as mix meets it: basic auth in the repository URL, repository keys
//! (`--auth-key`, `mix hex.repo set`), what mix says on 401 and on 403, and Hex 2.5.1 sending a
//! user's hex.pm OAuth token to an open repository.

use std::fs;

use super::client::HEX_2_5_1;
use super::{Mix, Project, banner_fingerprint, create_key, publish_package, use_api};
use crate::serve_support::HexrepoServer;
use crate::support::temp_dir;

const REPO: &str = "acme";

#[test]
fn basic_auth_and_repository_keys_let_mix_in_and_bad_ones_get_a_clear_message() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(
        work.path(),
        &[
            "--name",
            REPO,
            "--auth-username",
            "team",
            "--auth-password",
            "s3cret",
        ],
        &[],
    );
    let fingerprint = banner_fingerprint(&server);
    let public_key = work.path().join("hexrepo-data/public/public_key");
    let public_key = public_key.to_str().expect("UTF-8 path");
    let publisher_key = create_key(work.path(), "ci", &[]);
    let reader_key = create_key(work.path(), "reader", &["--read-only"]);

    let mut publisher = Mix::new();
    use_api(&mut publisher, &server, &publisher_key);
    let lib = Project::new(&publisher, publisher.home(), "lib1", "1.0.0", &[]);
    publish_package(&publisher, &lib, &["--organization", REPO]);

    let app_deps = [super::Dep::new("lib1", "~> 1.0", REPO)];
    // Basic auth in the URL, with the key file.
    let basic = Mix::new();
    let url = server.url_with_userinfo("team", "s3cret");
    basic.repo_add(REPO, &url, &["--public-key", public_key]);
    let app = Project::new(&basic, basic.home(), "app", "0.1.0", &app_deps);
    let got = basic.ok(app.dir(), &["deps.get"]);
    assert!(got.contains("lib1 1.0.0"), "{got}");

    // A read-only repository key, the public key fetched and checked against the banner's
    // fingerprint with that key.
    let keyed = Mix::new();
    keyed.repo_add(
        REPO,
        &server.url(),
        &[
            "--auth-key",
            &reader_key,
            "--fetch-public-key",
            &fingerprint,
        ],
    );
    let app = Project::new(&keyed, keyed.home(), "app", "0.1.0", &app_deps);
    let got = keyed.ok(app.dir(), &["deps.get"]);
    assert!(got.contains("lib1 1.0.0"), "{got}");

    // A wrong key (403): mix says it may lack permissions, and asks nothing.
    keyed.ok(
        keyed.home(),
        &["hex.repo", "set", REPO, "--auth-key", "0123456789abcdef"],
    );
    // Nothing cached to fall back on: a project of its own, and no registry cache.
    fs::remove_file(keyed.hex_home().join("cache.ets")).expect("remove the registry cache");
    let app = Project::new(
        &keyed,
        &keyed.home().join("denied"),
        "app",
        "0.1.0",
        &app_deps,
    );
    let refused = keyed.fails(app.dir(), &["deps.get"]);
    assert!(
        refused.contains("you don't have permissions to it")
            && !refused.contains("Do you want to authenticate now?"),
        "{refused}"
    );
    // No credentials (401): mix offers an interactive hex.pm login, declined on a closed stdin.
    let anonymous = Mix::new();
    anonymous.repo_add(REPO, &server.url(), &["--public-key", public_key]);
    let app = Project::new(&anonymous, anonymous.home(), "app", "0.1.0", &app_deps);
    let refused = anonymous.fails(app.dir(), &["deps.get"]);
    assert!(
        refused.contains("No authenticated user found. Do you want to authenticate now?"),
        "{refused}"
    );
    // Back to the right key: the same project resolves again.
    keyed.ok(
        keyed.home(),
        &["hex.repo", "set", REPO, "--auth-key", &reader_key],
    );
    let app = Project::new(
        &keyed,
        &keyed.home().join("again"),
        "app",
        "0.1.0",
        &app_deps,
    );
    keyed.ok(app.dir(), &["deps.get"]);
}

#[test]
fn hex_2_5_1_sending_a_hex_pm_token_is_served_by_an_open_repository() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &["--name", REPO], &[]);
    let fingerprint = banner_fingerprint(&server);
    let key = create_key(work.path(), "ci", &["--publish-only"]);
    let mut mix = Mix::with_archive(HEX_2_5_1);
    // A user logged in to hex.pm: Hex 2.5.1 sends this token as `Bearer` to every repository
    // added with `mix hex.repo add` (2.5.2 sends it only to hex.pm).
    fs::create_dir_all(mix.hex_home()).expect("mkdir HEX_HOME");
    fs::write(
        mix.hex_home().join("hex.config"),
        "{'$oauth_token', #{access_token => <<\"hexpm-oauth-access-token\">>, \
         refresh_token => <<\"hexpm-oauth-refresh-token\">>, expires_at => 4102444800}}.\n",
    )
    .expect("write hex.config");
    mix.repo_add(REPO, &server.url(), &["--fetch-public-key", &fingerprint]);
    use_api(&mut mix, &server, &key);
    let lib = Project::new(&mix, mix.home(), "lib1", "1.0.0", &[]);
    publish_package(&mix, &lib, &[]);
    mix.unset("HEX_API_KEY");
    let app = Project::new(
        &mix,
        mix.home(),
        "app",
        "0.1.0",
        &[super::Dep::new("lib1", "~> 1.0", REPO)],
    );
    let got = mix.ok(app.dir(), &["deps.get"]);
    assert!(got.contains("lib1 1.0.0"), "{got}");
    mix.ok(app.dir(), &["compile"]);
    // The API reads of an open repository are open too, token or not.
    let info = mix.ok(mix.home(), &["hex.info", "lib1"]);
    assert!(
        info.contains(r#"Config: {:lib1, "~> 1.0", repo: "acme"}"#),
        "{info}"
    );
}
