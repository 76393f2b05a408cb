//! A team's everyday round trip with mix against the embedded default (`hexrepo serve` with no
//! arguments): `hex.repo add --fetch-public-key`, publishing a dependency chain with a
//! pre-release and an optional dependency, `deps.get`, `compile`, `run`, retiring and the
//! warnings it brings, `hex.audit`, `hex.outdated`, `deps.update`, `hex.info`,
//! `hex.package fetch|search` and `hex.user whoami`.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Dep, Mix, Project, banner_fingerprint, create_key, publish_package, use_api};
use crate::serve_support::HexrepoServer;
use crate::support::temp_dir;

const REPO: &str = "hexrepo";

#[test]
fn a_dependency_chain_published_fetched_retired_and_updated_with_mix() {
    let (_work, _server, mix, alpha, app) = publish_and_fetch_a_chain();
    let tarball = retire_then_update(&mix, alpha, &app);
    read_through_the_api(&mix, &tarball);
}

/// Publishes alpha <- bravo (optional: opt) <- charlie and a pre-release beta with mix, then
/// fetches, compiles and runs an app that needs charlie and beta: the server's folder, the
/// server, mix, alpha's project and the app.
fn publish_and_fetch_a_chain() -> (tempfile::TempDir, HexrepoServer, Mix, Project, Project) {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &[], &[]);
    let fingerprint = banner_fingerprint(&server);
    // A key that may publish but not read keeps the embedded default open to anonymous reads.
    let key = create_key(work.path(), "ci", &["--publish-only"]);
    let mut mix = Mix::new();
    use_api(&mut mix, &server, &key);
    let home = mix.home().to_path_buf();
    mix.repo_add(REPO, &server.url(), &["--fetch-public-key", &fingerprint]);

    let alpha = Project::new(&mix, &home, "alpha", "1.0.0", &[]);
    let beta = Project::new(&mix, &home, "beta", "0.2.0-beta.1", &[]);
    let opt = Project::new(&mix, &home, "opt", "0.1.0", &[]);
    let bravo = Project::new(
        &mix,
        &home,
        "bravo",
        "1.0.0",
        &[
            Dep::new("alpha", "~> 1.0", REPO),
            Dep::new("opt", "~> 0.1", REPO).optional(),
        ],
    );
    let charlie = Project::new(
        &mix,
        &home,
        "charlie",
        "1.0.0",
        &[Dep::new("bravo", "~> 1.0", REPO)],
    );
    for project in [&alpha, &beta, &opt, &bravo] {
        publish_package(&mix, project, &[]);
    }
    let published = publish_package(&mix, &charlie, &["--organization", REPO]);
    assert!(
        published.contains(&format!("private repository {REPO}"))
            && published.contains(&format!(
                "{}/api/repos/{REPO}/packages/charlie/releases/1.0.0",
                server.url()
            )),
        "{published}"
    );

    let app = Project::new(
        &mix,
        &home,
        "app",
        "0.1.0",
        &[
            Dep::new("charlie", "~> 1.0", REPO),
            Dep::new("beta", "~> 0.2.0-beta.1", REPO),
        ],
    );
    let got = mix.ok(app.dir(), &["deps.get"]);
    for fetched in [
        "alpha 1.0.0",
        "bravo 1.0.0",
        "charlie 1.0.0",
        "beta 0.2.0-beta.1",
    ] {
        assert!(got.contains(fetched), "{fetched} not fetched:\n{got}");
    }
    assert!(
        !app.dir().join("deps/opt").exists(),
        "an optional dependency nobody requires is not fetched:\n{got}"
    );
    mix.ok(app.dir(), &["compile"]);
    let ran = mix.ok(
        app.dir(),
        &["run", "-e", "IO.inspect(Charlie.chain() ++ Beta.chain())"],
    );
    assert!(ran.contains("[:charlie, :bravo, :alpha, :beta]"), "{ran}");
    (work, server, mix, alpha, app)
}

/// Retires the locked alpha 1.0.0 (deps.get warns, hex.audit fails, hex.info marks it), then
/// publishes alpha 1.0.1 (hex.outdated sees it, deps.update takes it, hex.audit is clean) and
/// unretires 1.0.0: the tarball mix built for 1.0.1.
fn retire_then_update(mix: &Mix, alpha: Project, app: &Project) -> PathBuf {
    let home = mix.home().to_path_buf();
    let retired = mix.ok(
        &home,
        &[
            "hex.retire",
            "alpha",
            "1.0.0",
            "security",
            "--message",
            "CVE-2026-0001 in alpha",
        ],
    );
    assert!(
        retired.contains("alpha 1.0.0 has been retired"),
        "{retired}"
    );
    let warned = mix.ok(app.dir(), &["deps.get"]);
    assert!(
        warned.contains("CVE-2026-0001 in alpha") && warned.contains("retired"),
        "deps.get must show the retirement:\n{warned}"
    );
    let audit = mix.fails(app.dir(), &["hex.audit"]);
    assert!(
        audit.contains("Found retired packages") && audit.contains("CVE-2026-0001"),
        "{audit}"
    );
    let info = mix.ok(&home, &["hex.info", "alpha", "1.0.0"]);
    assert!(info.contains("This version has been retired"), "{info}");
    assert!(info.contains("(security) CVE-2026-0001 in alpha"), "{info}");

    // A fix is published: hex.outdated sees it, deps.update takes it, hex.audit is clean.
    let mut alpha = alpha;
    alpha.set_version("1.0.1");
    let tarball = alpha.build(mix);
    publish_package(mix, &alpha, &[]);
    let (_, outdated) = mix.output(app.dir(), &["hex.outdated", "--all"]);
    let outdated = String::from_utf8_lossy(&outdated.stdout).into_owned();
    assert!(
        outdated
            .lines()
            .any(|l| l.starts_with("alpha ") && l.contains("1.0.0") && l.contains("1.0.1")),
        "{outdated}"
    );
    let updated = mix.ok(app.dir(), &["deps.update", "alpha"]);
    assert!(updated.contains("1.0.1"), "{updated}");
    let clean = mix.ok(app.dir(), &["hex.audit"]);
    assert!(
        clean.contains("No retired or security advisory packages found"),
        "{clean}"
    );
    let unretired = mix.ok(&home, &["hex.retire", "alpha", "1.0.0", "--unretire"]);
    assert!(
        unretired.contains("alpha 1.0.0 has been unretired"),
        "{unretired}"
    );
    let info = mix.ok(&home, &["hex.info", "alpha", "1.0.0"]);
    assert!(!info.contains("retired"), "{info}");
    tarball
}

/// hex.info, hex.package fetch and search, and hex.user whoami.
fn read_through_the_api(mix: &Mix, tarball: &Path) {
    let home = mix.home().to_path_buf();
    // hex.info reads the API: the config line names the repository.
    let info = mix.ok(&home, &["hex.info", "charlie"]);
    assert!(
        info.contains(r#"Config: {:charlie, "~> 1.0", repo: "hexrepo"}"#),
        "{info}"
    );
    assert!(info.contains("The charlie package, made by mix"), "{info}");
    let info = mix.ok(&home, &["hex.info", "bravo", "1.0.0"]);
    assert!(info.contains("Released: 20"), "{info}");
    assert!(
        info.contains("alpha ~> 1.0") && info.contains("opt ~> 0.1 (optional)"),
        "{info}"
    );

    // hex.package fetch gets mix's own bytes back; without a version it asks the API first.
    let fetched = mix.ok(
        &home,
        &["hex.package", "fetch", "alpha", "1.0.1", "--repo", REPO],
    );
    assert!(fetched.contains("alpha-1.0.1.tar"), "{fetched}");
    assert_eq!(
        fs::read(home.join("alpha-1.0.1.tar")).expect("fetched tarball"),
        fs::read(tarball).expect("built tarball")
    );
    let latest = temp_dir();
    let fetched = mix.ok(
        latest.path(),
        &["hex.package", "fetch", "alpha", "--repo", REPO],
    );
    assert!(latest.path().join("alpha-1.0.1.tar").is_file(), "{fetched}");
    let search = mix.ok(&home, &["hex.package", "search", "bravo"]);
    assert!(
        search
            .lines()
            .any(|l| l.contains("bravo") && l.contains("The bravo package")),
        "{search}"
    );
    let whoami = mix.ok(&home, &["hex.user", "whoami"]);
    assert_eq!(whoami.trim().lines().last(), Some("ci"), "{whoami}");
}
