//! Several `hexrepo serve` replicas on one bucket of a real S3-compatible server (moto, through
//! `tools/s3-server`): publishes spread over the replicas lose nothing while rebar3 fetches
//! through another replica, and an outage of the store mid-publish gives clean 503s, no damage,
//! and retries that land.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hexfmt::metadata::Metadata;
use hexfmt::registry::read_versions;
use hexfmt::tarball::TarballBuilder;
use hexrepo_store::StorageKey;
use hexrepo_store::testing::{S3Server, Switch};

use crate::clients::{Rebar3Project, create_package};
use crate::serve_support::{HexrepoServer, hexrepo_in, http_get};
use crate::support::{all_output, output_of, require_rebar3_and_nginx, run, stdout_text, temp_dir};

/// The repository name (the rebar3 helper's).
const REPO: &str = "acme";

/// Replicas of one repository, all pointed at the store through `endpoint`.
struct Cluster {
    dir: tempfile::TempDir,
    prefix: String,
    env: Vec<(&'static str, String)>,
    replicas: Vec<HexrepoServer>,
    api_key: String,
}

impl Cluster {
    fn start(s3: &S3Server, endpoint: &str, prefix: &str, replicas: usize) -> Cluster {
        let dir = temp_dir();
        let env = s3.env_via(endpoint);
        let mut cluster = Cluster {
            dir,
            prefix: prefix.to_owned(),
            env,
            replicas: Vec::new(),
            api_key: String::new(),
        };
        // A key made before the replicas start; one made later works within a second (the
        // replicas' key refresh), which the publishes below do not wait for.
        let mut create = cluster.hexrepo(&["key", "create", "publisher"]);
        stdout_text(&run(&mut create))
            .trim()
            .clone_into(&mut cluster.api_key);
        for _ in 0..replicas {
            // The first creates the key (shared by all, as in production) and the registry.
            let server = HexrepoServer::start_with_env(
                cluster.dir.path(),
                &cluster.dir.path().join("unused-public"),
                &cluster.key(),
                &["--storage", &cluster.url(), "--name", REPO],
                &cluster.env,
            );
            cluster.replicas.push(server);
        }
        cluster
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("private_key.pem")
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", hexrepo_store::testing::BUCKET, self.prefix)
    }

    /// `hexrepo ARGS --storage URL` (or with the URL placed by the caller) with the S3 env.
    fn hexrepo(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = hexrepo_in(self.dir.path(), args);
        if args[0] == "key" {
            cmd.args(["--storage", &self.url()]);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// `hexrepo verify` of the bucket: its output, and whether it passed.
    fn verify(&self) -> (String, bool) {
        let public = self.dir.path().join("public_key.pem");
        let key = hexfmt::keys::PrivateKey::from_pem(&std::fs::read(self.key()).unwrap()).unwrap();
        std::fs::write(&public, key.public_key().to_pkcs1_pem()).unwrap();
        let url = self.url();
        let mut cmd = self.hexrepo(&["verify", &url, "--name", REPO, "--public-key"]);
        cmd.arg(&public);
        let output = output_of(&mut cmd);
        (all_output(&output), output.status.success())
    }

    fn publish(&self, replica: usize, tarball: &[u8]) -> Result<u16, String> {
        publish(self.replicas[replica].port(), &self.api_key, tarball)
    }
}

fn publish(port: u16, key: &str, tarball: &[u8]) -> Result<u16, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_mins(2))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/publish?replace=false"))
        .header("authorization", key)
        .header("content-type", "application/octet-stream")
        .header("accept", "application/json")
        .body(tarball.to_vec())
        .send()
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

/// A small rebar3 application `NAME-VERSION` built with our tarball builder.
fn tarball(name: &str, version: &str) -> Vec<u8> {
    let metadata = Metadata {
        name: name.into(),
        version: version.into(),
        app: Some(name.into()),
        description: Some("replica test".into()),
        licenses: vec!["Apache-2.0".into()],
        build_tools: vec!["rebar3".into()],
        ..Metadata::default()
    };
    TarballBuilder::new(&metadata)
        .file(
            &format!("src/{name}.app.src"),
            format!(
                "{{application, {name}, [{{vsn, \"{version}\"}}, {{applications, [kernel, stdlib]}}]}}.\n"
            ),
        )
        .file(&format!("src/{name}.erl"), format!("-module({name}).\n"))
        .build()
}

/// Every version in the bucket's `versions`, as `NAME VERSION`.
fn versions_in(s3: &S3Server, cluster: &Cluster) -> Vec<String> {
    let key = hexfmt::keys::PrivateKey::from_pem(&std::fs::read(cluster.key()).unwrap()).unwrap();
    let object = s3
        .store(&cluster.prefix)
        .get(&StorageKey::Versions)
        .unwrap()
        .expect("versions exists");
    let versions = read_versions(&object.bytes, &key.public_key(), REPO).unwrap();
    versions
        .packages
        .iter()
        .flat_map(|p| p.versions.iter().map(move |v| format!("{} {v}", p.name)))
        .collect()
}

#[test]
fn replicas_on_one_bucket_lose_no_publish_while_rebar3_fetches() {
    require_rebar3_and_nginx();
    let s3 = S3Server::start();
    let cluster = Cluster::start(&s3, &s3.endpoint, "replicas", 4);
    let packages = 8;
    // Something for rebar3 to fetch from the start: a hex_core package, and one release of
    // each package the load then grows.
    let base = create_package(cluster.dir.path(), "e2e_base", "1.0.0", &[]);
    assert_eq!(cluster.publish(0, &std::fs::read(base).unwrap()), Ok(201));
    for p in 0..packages {
        assert_eq!(
            cluster.publish(p % 3, &tarball(&format!("load_{p}"), "0.0.1")),
            Ok(201)
        );
    }

    let fetching = AtomicBool::new(true);
    let public_pem = {
        let key =
            hexfmt::keys::PrivateKey::from_pem(&std::fs::read(cluster.key()).unwrap()).unwrap();
        key.public_key().to_pkcs1_pem()
    };
    let (publishers, each) = (8, 25);
    let fetches = thread::scope(|scope| {
        let fetcher = scope.spawn(|| {
            let mut runs = 0;
            // rebar3 through the fourth replica, which never publishes, until the load ends.
            while fetching.load(Ordering::SeqCst) || runs == 0 {
                let project = Rebar3Project::with_repo_key(
                    &cluster.replicas[3].url(),
                    &public_pem,
                    &[
                        ("e2e_base", "1.0.0"),
                        ("load_0", ">= 0.0.1"),
                        ("load_1", ">= 0.0.1"),
                    ],
                    Some(&cluster.api_key),
                );
                let output = output_of(&mut project.rebar3(&["get-deps"]));
                assert!(
                    output.status.success(),
                    "rebar3 get-deps through replica 4 failed during the load:\n{}",
                    all_output(&output)
                );
                runs += 1;
            }
            runs
        });
        let workers: Vec<_> = (0..publishers)
            .map(|t| {
                let cluster = &cluster;
                scope.spawn(move || {
                    for i in 0..each {
                        let name = format!("load_{}", (t + i) % packages);
                        let version = format!("{}.{i}.0", t + 1);
                        let status = cluster.publish(t % 3, &tarball(&name, &version));
                        assert_eq!(
                            status,
                            Ok(201),
                            "{name} {version} through replica {}",
                            t % 3
                        );
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        fetching.store(false, Ordering::SeqCst);
        fetcher.join().unwrap()
    });
    assert!(fetches >= 1);

    let versions = versions_in(&s3, &cluster);
    assert_eq!(
        versions.len(),
        1 + packages + publishers * each,
        "{versions:?}"
    );
    for t in 0..publishers {
        for i in 0..each {
            let entry = format!("load_{} {}.{i}.0", (t + i) % packages, t + 1);
            assert!(versions.contains(&entry), "{entry} is missing");
        }
    }
    let (report, ok) = cluster.verify();
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{} releases", versions.len())),
        "{report}"
    );

    // Every replica serves the new state within the revalidation bound (1 s).
    thread::sleep(Duration::from_millis(1500));
    // The last release of the last publisher: load_((7 + 24) % 8) = load_7, 8.24.0.
    let last = (publishers - 1 + each - 1) % packages;
    let newest = format!("/tarballs/load_{last}-{publishers}.{}.0.tar", each - 1);
    for replica in &cluster.replicas {
        let auth = [("authorization", cluster.api_key.as_str())];
        let package = format!("/packages/load_{last}");
        let response = http_get(replica.port(), &package, &auth).unwrap();
        assert_eq!(response.status, 200);
        let tarball = http_get(replica.port(), &newest, &auth).unwrap();
        assert_eq!(tarball.status, 200, "{newest} on port {}", replica.port());
    }
}

#[test]
fn an_outage_of_the_store_mid_publish_gives_503s_and_retries_land() {
    let s3 = S3Server::start();
    let switch = Switch::start(s3.port());
    let cluster = Cluster::start(&s3, &switch.endpoint(), "outage", 2);
    assert_eq!(cluster.publish(0, &tarball("steady", "1.0.0")), Ok(201));
    // Cached on replica 1: served through the outage.
    let auth = [("authorization", cluster.api_key.as_str())];
    assert_eq!(
        http_get(cluster.replicas[1].port(), "/names", &auth)
            .unwrap()
            .status,
        200
    );

    let stop = AtomicBool::new(false);
    let outcomes = thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (cluster, stop) = (&cluster, &stop);
                scope.spawn(move || {
                    let mut outcomes = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let version = format!("{t}.{i}.0");
                        let status = cluster.publish(t % 2, &tarball("churn", &version)).unwrap();
                        outcomes.push((version, status));
                        i += 1;
                    }
                    outcomes
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(1500));
        switch.off();
        let off_at = Instant::now();
        // Reads during the outage: cached files stale, the rest 503.
        let names = http_get(cluster.replicas[1].port(), "/names", &auth).unwrap();
        assert_eq!(names.status, 200);
        assert_eq!(names.header("x-hexrepo-stale"), Some("1"), "{names:?}");
        let missing =
            http_get(cluster.replicas[1].port(), "/packages/never_cached", &auth).unwrap();
        assert_eq!(missing.status, 503, "{missing:?}");
        assert_eq!(missing.header("retry-after"), Some("5"));
        thread::sleep(Duration::from_secs(3).saturating_sub(off_at.elapsed()));
        switch.on();
        thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::SeqCst);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    let failed: Vec<&(String, u16)> = outcomes.iter().filter(|(_, s)| *s != 201).collect();
    assert!(
        failed.iter().all(|(_, status)| *status == 503),
        "only 201 or 503, never a 500: {failed:?}"
    );
    assert!(!failed.is_empty(), "the outage was felt: {outcomes:?}");
    // A retry of each failed publish lands: 201, 200 completing an interrupted one, or 422
    // when the attempt had in fact landed before its answer was lost; then the stored tarball
    // is exactly ours.
    let store = s3.store(&cluster.prefix);
    for (version, _) in &failed {
        let ours = tarball("churn", version);
        let status = cluster.publish(0, &ours).unwrap();
        let stored = store
            .get(&StorageKey::tarball("churn", version))
            .unwrap()
            .map(|o| o.bytes.to_vec());
        assert!(
            status == 201 || status == 200 || status == 422 && stored.as_deref() == Some(&ours[..]),
            "retry of churn {version}: {status}"
        );
    }
    let versions = versions_in(&s3, &cluster);
    for (version, _) in &outcomes {
        assert!(
            versions.contains(&format!("churn {version}")),
            "churn {version} lost"
        );
    }
    let (report, ok) = cluster.verify();
    assert!(ok, "{report}");
}

/// The config file's `storage` and `[s3]` table reach the store: a key created through them
/// lands in the bucket.
#[test]
fn the_config_file_configures_s3_storage() {
    let s3 = S3Server::start();
    let dir = temp_dir();
    fs::write(
        dir.path().join("hexrepo.toml"),
        format!(
            "storage = \"{}\"\n[s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\nallow_http = true\n\
             virtual_hosted_style = false\n",
            s3.url("configured"),
            s3.endpoint
        ),
    )
    .unwrap();
    let mut create = hexrepo_in(dir.path(), &["key", "create", "from-config"]);
    for name in [
        "AWS_ENDPOINT",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        create.env_remove(name);
    }
    run(&mut create);
    let keys = s3
        .store("configured")
        .get(&StorageKey::Keys)
        .unwrap()
        .expect("keys.json in the bucket");
    assert!(String::from_utf8_lossy(&keys.bytes).contains("from-config"));
}

/// A key created after the replicas started is accepted within the key refresh (1 s).
#[test]
fn a_key_created_elsewhere_works_on_a_running_replica_within_a_second() {
    let s3 = S3Server::start();
    let cluster = Cluster::start(&s3, &s3.endpoint, "late-key", 1);
    let mut create = cluster.hexrepo(&["key", "create", "late"]);
    let late = stdout_text(&run(&mut create)).trim().to_owned();
    let created = Instant::now();
    let port = cluster.replicas[0].port();
    let mut status = publish(port, &late, &tarball("late", "1.0.0")).unwrap();
    while status != 201 && created.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(100));
        status = publish(port, &late, &tarball("late", "1.0.0")).unwrap();
    }
    assert_eq!(status, 201);
    assert!(
        created.elapsed() < Duration::from_millis(2500),
        "accepted after {:?}",
        created.elapsed()
    );
}
