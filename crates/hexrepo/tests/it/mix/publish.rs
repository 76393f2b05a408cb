//! `mix hex.publish` in every form a user types: package and docs, both, `--replace`,
//! `--revert`, `--organization` (right and wrong), several at once, Hex 2.2.2's old route, and
//! a server on S3 (moto).

use std::fs;
use std::thread;

use hexrepo_store::testing::S3Server;

use super::client::HEX_2_2_2;
use super::{Dep, Mix, Project, banner_fingerprint, create_key, publish_package, use_api};
use crate::serve_support::{HexrepoServer, http_get};
use crate::support::{run, temp_dir};

const REPO: &str = "acme";

/// A `docs` task in `mix.exs` (mix cannot fetch ex_doc here): `mix hex.publish` runs it and
/// uploads `doc/`. It writes `index.html` with the text of `title.txt`, which this sets to
/// `title`, and a page of its own.
fn add_docs_task(project: &Project, title: &str) {
    fs::write(project.dir().join("title.txt"), title).expect("write title.txt");
    let path = project.dir().join("mix.exs");
    let mix_exs = fs::read_to_string(&path).expect("read mix.exs");
    if mix_exs.contains("Mix.Tasks.Docs") {
        return;
    }
    let task = "defmodule Mix.Tasks.Docs do\n  use Mix.Task\n  def run(_) do\n    \
                File.mkdir_p!(\"doc\")\n    \
                File.write!(\"doc/index.html\", \"<h1>\" <> File.read!(\"title.txt\") <> \"</h1>\")\n    \
                File.write!(\"doc/api.html\", \"<p>api</p>\")\n  end\nend\n\n";
    fs::write(&path, task.to_owned() + &mix_exs).expect("write mix.exs");
}

/// The file names in a served docs tarball (read with `key`), and its `index.html`.
fn served_docs(
    server: &HexrepoServer,
    key: &str,
    name: &str,
    version: &str,
) -> (Vec<String>, String) {
    let response = http_get(
        server.port(),
        &format!("/docs/{name}-{version}.tar.gz"),
        &[("authorization", key)],
    )
    .expect("GET docs");
    assert_eq!(response.status, 200, "docs of {name} {version}");
    let dir = temp_dir();
    let file = dir.path().join("docs.tar.gz");
    fs::write(&file, &response.body).expect("write docs");
    run(std::process::Command::new("tar")
        .arg("xzf")
        .arg(&file)
        .current_dir(dir.path()));
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .expect("read docs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "docs.tar.gz")
        .collect();
    names.sort();
    let index = fs::read_to_string(dir.path().join("index.html")).unwrap_or_default();
    (names, index)
}

#[test]
fn package_docs_replace_revert_and_organizations_with_mix() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &["--name", REPO], &[]);
    let key = create_key(work.path(), "ci", &[]);
    let mut mix = Mix::new();
    use_api(&mut mix, &server, &key);
    let home = mix.home().to_path_buf();

    // Package and docs in one go.
    let mut pkg = Project::new(&mix, &home, "documented", "1.0.0", &[]);
    add_docs_task(&pkg, "first docs");
    let both = mix.ok(pkg.dir(), &["hex.publish", "--yes", "--organization", REPO]);
    let docs_url = format!("{}/docs/documented-1.0.0.tar.gz", server.url());
    assert!(both.contains("Package published to"), "{both}");
    assert!(
        both.contains(&format!("Docs will soon be available at {docs_url}")),
        "{both}"
    );
    let (files, index) = served_docs(&server, &key, "documented", "1.0.0");
    assert_eq!(files, ["api.html", "index.html"]);
    assert_eq!(index, "<h1>first docs</h1>");

    // Docs alone replace the release's docs.
    add_docs_task(&pkg, "second docs");
    let docs = mix.ok(
        pkg.dir(),
        &["hex.publish", "docs", "--yes", "--organization", REPO],
    );
    assert!(docs.contains("Docs will soon be available"), "{docs}");
    assert_eq!(
        served_docs(&server, &key, "documented", "1.0.0").1,
        "<h1>second docs</h1>"
    );

    // The same version again: refused without --replace, taken with it.
    let changed = fs::read_to_string(pkg.dir().join("mix.exs"))
        .expect("read mix.exs")
        .replace("made by mix", "made again by mix");
    fs::write(pkg.dir().join("mix.exs"), changed).expect("write mix.exs");
    let (_, refused) = mix.output(pkg.dir(), &["hex.publish", "package", "--yes"]);
    let refused = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        refused.contains("Publishing failed")
            && refused.contains("must include the --replace flag to update an existing release"),
        "{refused}"
    );
    publish_package(&mix, &pkg, &["--replace"]);
    let info = mix.ok(&home, &["hex.info", "documented"]);
    assert!(info.contains("made again by mix"), "{info}");

    // A second release, then --revert takes it and its docs away again.
    pkg.set_version("1.1.0");
    mix.ok(pkg.dir(), &["hex.publish", "--yes"]);
    assert_eq!(
        served_docs(&server, &key, "documented", "1.1.0").1,
        "<h1>second docs</h1>"
    );
    let reverted = mix.ok(pkg.dir(), &["hex.publish", "--revert", "1.1.0"]);
    assert!(reverted.contains("Reverted documented 1.1.0"), "{reverted}");
    let missing = http_get(
        server.port(),
        "/docs/documented-1.1.0.tar.gz",
        &[("authorization", &key)],
    )
    .expect("GET");
    assert_eq!(missing.status, 404);
    let info = mix.ok(&home, &["hex.info", "documented"]);
    assert!(info.contains("1.0.0") && !info.contains("1.1.0"), "{info}");
    let gone = mix.fails(&home, &["hex.info", "documented", "1.1.0"]);
    assert!(
        gone.contains("No release with name documented 1.1.0"),
        "{gone}"
    );

    // An organization this server does not host: mix shows the server's advice.
    let (_, wrong) = mix.output(
        pkg.dir(),
        &["hex.publish", "package", "--yes", "--organization", "nope"],
    );
    let wrong = format!(
        "{}{}",
        String::from_utf8_lossy(&wrong.stdout),
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(
        wrong.contains("Publishing failed")
            && wrong.contains(r#"no repository (organization) named "nope""#)
            && wrong.contains("use --organization acme"),
        "{wrong}"
    );
}

#[test]
fn several_mix_publishes_at_once_all_land() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &["--name", REPO], &[]);
    let fingerprint = banner_fingerprint(&server);
    let key = create_key(work.path(), "ci", &[]);
    let mut mix = Mix::new();
    use_api(&mut mix, &server, &key);
    let home = mix.home().to_path_buf();
    let names = [
        "concurrent_one",
        "concurrent_two",
        "concurrent_three",
        "concurrent_four",
    ];
    let projects: Vec<Project> = names
        .iter()
        .map(|name| Project::new(&mix, &home, name, "1.0.0", &[]))
        .collect();
    thread::scope(|scope| {
        for project in &projects {
            let mix = &mix;
            scope.spawn(move || publish_package(mix, project, &[]));
        }
    });
    mix.repo_add(
        REPO,
        &server.url(),
        &["--auth-key", &key, "--fetch-public-key", &fingerprint],
    );
    let deps: Vec<Dep> = names.iter().map(|n| Dep::new(n, "1.0.0", REPO)).collect();
    let app = Project::new(&mix, &home, "app", "0.1.0", &deps);
    let got = mix.ok(app.dir(), &["deps.get"]);
    for name in names {
        assert!(got.contains(&format!("{name} 1.0.0")), "{name}:\n{got}");
    }
}

#[test]
fn hex_2_2_2_publishes_through_the_old_route_and_fetches() {
    let work = temp_dir();
    let server = HexrepoServer::start_in(work.path(), &["--name", REPO], &[]);
    let key = create_key(work.path(), "ci", &[]);
    let mut mix = Mix::with_archive(HEX_2_2_2);
    use_api(&mut mix, &server, &key);
    let home = mix.home().to_path_buf();
    let old = Project::new(&mix, &home, "old_client", "1.0.0", &[]);
    publish_package(&mix, &old, &[]);
    assert!(
        server
            .log()
            .contains("method=POST path=/api/publish status=201"),
        "Hex 2.2.2 publishes with POST /api/publish:\n{}",
        server.log()
    );
    let public_key = work.path().join("hexrepo-data/public/public_key");
    mix.repo_add(
        REPO,
        &server.url(),
        &[
            "--auth-key",
            &key,
            "--public-key",
            public_key.to_str().expect("UTF-8 path"),
        ],
    );
    let app = Project::new(
        &mix,
        &home,
        "app",
        "0.1.0",
        &[Dep::new("old_client", "~> 1.0", REPO)],
    );
    let got = mix.ok(app.dir(), &["deps.get"]);
    assert!(got.contains("old_client 1.0.0"), "{got}");
}

#[test]
fn mix_publishes_to_and_fetches_from_a_server_on_s3() {
    let s3 = S3Server::start();
    let work = temp_dir();
    let storage = s3.url("mix-suite");
    // The key first: a server on object storage sees later keys only within a second.
    let mut key_cmd = crate::serve_support::hexrepo_in(
        work.path(),
        &["key", "create", "ci", "--storage", &storage],
    );
    key_cmd.envs(s3.env().iter().map(|(k, v)| (*k, v.as_str())));
    let key = crate::support::stdout_text(&run(&mut key_cmd))
        .trim()
        .to_owned();
    let server = HexrepoServer::start_in(
        work.path(),
        &["--name", REPO, "--storage", &storage],
        &s3.env(),
    );
    let fingerprint = banner_fingerprint(&server);
    let mut mix = Mix::new();
    use_api(&mut mix, &server, &key);
    let home = mix.home().to_path_buf();
    let lib = Project::new(&mix, &home, "on_s3", "1.0.0", &[]);
    publish_package(&mix, &lib, &[]);
    mix.repo_add(
        REPO,
        &server.url(),
        &["--auth-key", &key, "--fetch-public-key", &fingerprint],
    );
    let app = Project::new(
        &mix,
        &home,
        "app",
        "0.1.0",
        &[Dep::new("on_s3", "~> 1.0", REPO)],
    );
    let got = mix.ok(app.dir(), &["deps.get"]);
    assert!(got.contains("on_s3 1.0.0"), "{got}");
    mix.ok(app.dir(), &["compile"]);
    let info = mix.ok(&home, &["hex.info", "on_s3", "1.0.0"]);
    assert!(
        info.contains(r#"Config: {:on_s3, "~> 1.0", repo: "acme"}"#),
        "{info}"
    );
}
