//! `mix hex.owner list|add|remove|transfer|packages`, `mix hex.user whoami` and
//! `mix hex.organization key NAME generate|list|revoke`: owners are this server's identities
//! (its keys, and the basic-auth operator), and an organization's keys are the repository's.

use super::{Dep, Mix, Project, banner_fingerprint, create_key, publish_package, use_api};
use crate::serve_support::HexrepoServer;
use crate::support::temp_dir;

const REPO: &str = "acme";

/// mix using the API as `key`.
fn mix_as(server: &HexrepoServer, key: &str) -> Mix {
    let mut mix = Mix::new();
    use_api(&mut mix, server, key);
    mix
}

#[test]
fn owners_are_listed_added_transferred_and_guarded_with_mix() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &["--name", REPO], &[]);
    let alice = mix_as(&server, &create_key(work.path(), "alice", &[]));
    let bob = mix_as(&server, &create_key(work.path(), "bob", &[]));
    let owned = Project::new(&alice, alice.home(), "owned", "1.0.0", &[]);
    publish_package(&alice, &owned, &[]);
    let home = alice.home();

    let whoami = alice.ok(home, &["hex.user", "whoami"]);
    assert_eq!(whoami.trim().lines().last(), Some("alice"), "{whoami}");
    let list = alice.ok(home, &["hex.owner", "list", "owned"]);
    assert!(
        list.lines()
            .any(|l| l.contains("alice") && l.contains("full")),
        "{list}"
    );

    let added = alice.ok(
        home,
        &["hex.owner", "add", "owned", "bob", "--level", "maintainer"],
    );
    assert!(!added.contains("failed"), "{added}");
    let list = bob.ok(bob.home(), &["hex.owner", "list", "owned"]);
    assert!(
        list.lines()
            .any(|l| l.contains("bob") && l.contains("maintainer")),
        "{list}"
    );
    // A maintainer may not change ownership.
    let refused = bob.ok(bob.home(), &["hex.owner", "remove", "owned", "alice"]);
    assert!(refused.contains("Removing owner failed"), "{refused}");
    // Nobody by that name on this server.
    let unknown = alice.ok(home, &["hex.owner", "add", "owned", "nobody"]);
    assert!(
        unknown.contains("Adding owner failed") && unknown.contains("nobody"),
        "{unknown}"
    );

    let transferred = alice.ok(home, &["hex.owner", "transfer", "owned", "bob"]);
    assert!(!transferred.contains("failed"), "{transferred}");
    let list = alice.ok(home, &["hex.owner", "list", "owned"]);
    assert!(
        list.lines()
            .any(|l| l.contains("bob") && l.contains("full"))
            && !list.contains("alice"),
        "{list}"
    );
    let packages = bob.ok(bob.home(), &["hex.owner", "packages"]);
    assert!(packages.contains("owned"), "{packages}");
    // The last full owner stays.
    let refused = bob.ok(bob.home(), &["hex.owner", "remove", "owned", "bob"]);
    assert!(refused.contains("Removing owner failed"), "{refused}");
}

#[test]
fn organization_keys_are_the_repository_keys_with_mix() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &["--name", REPO], &[]);
    let fingerprint = banner_fingerprint(&server);
    let admin = mix_as(&server, &create_key(work.path(), "admin", &[]));
    let lib = Project::new(&admin, admin.home(), "org_lib", "1.0.0", &[]);
    publish_package(&admin, &lib, &[]);
    let home = admin.home();

    let generated = admin.ok(
        home,
        &[
            "hex.organization",
            "key",
            REPO,
            "generate",
            "--key-name",
            "ci-read",
        ],
    );
    let secret = generated
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 32 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no secret printed:\n{generated}"))
        .to_owned();
    let list = admin.ok(home, &["hex.organization", "key", REPO, "list"]);
    assert!(list.contains("ci-read") && list.contains("admin"), "{list}");

    // The new key reads the repository.
    let reader = Mix::new();
    reader.repo_add(
        REPO,
        &server.url(),
        &["--auth-key", &secret, "--fetch-public-key", &fingerprint],
    );
    let app = Project::new(
        &reader,
        reader.home(),
        "app",
        "0.1.0",
        &[Dep::new("org_lib", "~> 1.0", REPO)],
    );
    let got = reader.ok(app.dir(), &["deps.get"]);
    assert!(got.contains("org_lib 1.0.0"), "{got}");

    let revoked = admin.ok(
        home,
        &["hex.organization", "key", REPO, "revoke", "ci-read"],
    );
    assert!(!revoked.contains("failed"), "{revoked}");
    let list = admin.ok(home, &["hex.organization", "key", REPO, "list"]);
    assert!(!list.contains("ci-read"), "{list}");
    let again = Project::new(
        &reader,
        &reader.home().join("again"),
        "app",
        "0.1.0",
        &[Dep::new("org_lib", "~> 1.0", REPO)],
    );
    std::fs::remove_file(reader.hex_home().join("cache.ets")).expect("remove the registry cache");
    let refused = reader.fails(again.dir(), &["deps.get"]);
    assert!(
        refused.contains("you don't have permissions to it"),
        "{refused}"
    );

    // Another organization's keys: the message names this server's.
    let wrong = admin.ok(home, &["hex.organization", "key", "other", "list"]);
    assert!(
        wrong.contains("Key fetching failed") && wrong.contains("use --organization acme"),
        "{wrong}"
    );
}
