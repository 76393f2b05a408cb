//! `hexrepo serve`: serves a repository folder over HTTP. On a fresh machine, with no
//! arguments, it creates a working repository first (a key, an empty signed registry) and
//! prints exactly what mix and rebar3 users paste to use it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hexfmt::keys::{KeyBits, PrivateKey, PublicKey};
use hexrepo_registry::RegistryError;
use hexrepo_registry::build::{BuildOptions, build};
use hexrepo_registry::keys::KeyStore;
use hexrepo_registry::mirror::shadowed;
use hexrepo_server::api::ApiConfig;
use hexrepo_server::auth::{Authenticator, BasicCredentials, ReadAuth as ServerReadAuth};
use hexrepo_server::edge;
use hexrepo_server::pull_through::{PullThrough, PullThroughConfig};
use hexrepo_server::{AppState, MIRROR_PREFIX, Mirror, MirrorHost, ServerConfig, router};
use hexrepo_store::{StorageKey, Store};

use crate::settings::{Flags, LogFormat, MirrorMode, ReadAuth, Settings};
use hexrepo_registry::upstream::HttpSource;

/// How long a file read from an object store is served before asking whether it changed
/// (local disk is checked on every request).
const REVALIDATE_AFTER: Duration = Duration::from_secs(1);

/// Arguments of `hexrepo serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: Flags,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.flags)?;
    let _log_guard = init_logging(settings.log_format.value);
    let store = settings.open_store()?;
    remove_orphaned_temporaries(&store);
    if store.head(&StorageKey::Names)?.is_none() {
        create_repository(&settings, &store)?;
    }
    let repository = repository_name(&store).unwrap_or_else(|| settings.name.value.clone());
    let public_key = store
        .get(&StorageKey::PublicKey)?
        .and_then(|object| PublicKey::from_pem(&object.bytes).ok());
    let auth = authenticator(&settings, &store);
    let url = settings.public_url.value.clone();
    let api_key = read_private_key(&settings)?;
    check_keys_match(api_key.as_ref(), public_key.as_ref(), &settings, &store)?;
    let mirror = mirror(&settings)?;
    let private_names = if mirror.is_some() {
        super::mirror::private_names(&settings)?
    } else {
        Vec::new()
    };
    let mirror_banner = mirror.as_ref().map(|m| mirror_banner(m, &settings));
    let _scheduled_sync = super::mirror_schedule::start(&settings)?;
    let make_state = |base_url: String| {
        let api = api_key.map(|key| ApiConfig {
            store: store.clone(),
            repository: repository.clone(),
            key,
            reserved: settings.reserved_names.value.clone(),
            base_url,
        });
        AppState::new(ServerConfig {
            store: store.clone(),
            revalidate_after: REVALIDATE_AFTER,
            auth,
            cache_bytes: settings.cache_mib.value * 1024 * 1024,
            api,
            mirror,
            mirror_host: settings.mirror_host.value.clone(),
        })
    };

    let limits = edge::Limits {
        max_connections: edge::fit_connection_cap(settings.max_connections.value),
        header_timeout: settings.header_timeout.value,
        idle_timeout: settings.idle_timeout.value,
        stall_timeout: settings.stall_timeout.value,
        body_timeout: settings.body_timeout.value,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let address = SocketAddr::new(settings.bind.value, settings.port.value);
        let listener = edge::listen(address).with_context(|| format!("listening on {address}"))?;
        let local = listener
            .local_addr()
            .context("reading the listening address")?;
        let url = url.unwrap_or_else(|| {
            let host = if local.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                local.ip().to_string()
            };
            format!("http://{host}:{}", local.port())
        });
        let shutdown = shutdown_signal()?;
        let state = make_state(url.clone());
        if state.pull_through().is_some() {
            tokio::spawn(warn_shadowed(
                state.clone(),
                private_names,
                settings.upstream_name.value.clone(),
            ));
        }
        print_banner(
            &repository,
            &url,
            &store,
            public_key.as_ref(),
            &state,
            &settings,
        );
        if let Some(banner) = &mirror_banner {
            print_mirror_banner(&url, banner, settings.mirror_host.value.as_ref());
        }
        tracing::info!(%local, "listening");
        edge::serve(listener, router(state), limits, shutdown).await;
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Removes what a writer killed mid-commit left in `store` (hidden files, never served), and
/// says so.
fn remove_orphaned_temporaries(store: &Store) {
    match store.remove_orphaned_temporaries() {
        Ok(0) => {}
        Ok(removed) => tracing::info!(
            "removed {removed} temporary files an interrupted writer left in {}",
            store.describe()
        ),
        Err(e) => tracing::warn!("looking for temporaries left by an interrupted writer: {e}"),
    }
}

/// The signing key, when its file exists: the API is on with it.
fn read_private_key(settings: &Settings) -> anyhow::Result<Option<PrivateKey>> {
    std::fs::read(&settings.private_key.value)
        .ok()
        .map(|pem| PrivateKey::from_pem(&pem))
        .transpose()
        .with_context(|| {
            format!(
                "reading private key {}",
                settings.private_key.value.display()
            )
        })
}

/// The API must sign with the key whose public half clients trust.
fn check_keys_match(
    private: Option<&PrivateKey>,
    public: Option<&PublicKey>,
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<()> {
    if let (Some(key), Some(public)) = (private, public) {
        anyhow::ensure!(
            key.public_key().fingerprint() == public.fingerprint(),
            "the private key {} does not match the repository's public_key in {}: the API would \
             sign files clients reject (every replica needs the same key)",
            settings.private_key.value.display(),
            store.describe()
        );
    }
    Ok(())
}

/// A key (generated when missing) and an empty signed registry.
fn create_repository(settings: &Settings, store: &Store) -> anyhow::Result<()> {
    let key_path = &settings.private_key.value;
    let key = if key_path.exists() {
        crate::commands::read_private_key(key_path)?
    } else {
        let key = PrivateKey::generate(KeyBits::Rsa2048)?;
        crate::commands::write_private_key(key_path, &key)?;
        eprintln!(
            "* creating {} (keep it secret: it signs your registry)",
            key_path.display()
        );
        key
    };
    if let Some(root) = store.local_root() {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    }
    let report = match build(&BuildOptions {
        store,
        repository: &settings.name.value,
        key: &key,
        skip_invalid: false,
        mix_compatible: false,
    }) {
        Ok(report) => report,
        // Replicas starting together on an empty bucket: another one created it first.
        Err(RegistryError::ChangedDuringBuild { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for change in &report.changes {
        eprintln!("{change}");
    }
    Ok(())
}

/// The repository name recorded in `names` (no signature check: it is only displayed).
fn repository_name(store: &Store) -> Option<String> {
    use prost::Message as _;
    let object = store.get(&StorageKey::Names).ok()??;
    let signed = hexfmt::registry::decode_envelope(&object.bytes).ok()?;
    hexfmt::proto::names::Names::decode(signed.payload.as_slice())
        .ok()
        .map(|n| n.repository)
}

fn print_banner(
    repository: &str,
    url: &str,
    store: &Store,
    public_key: Option<&PublicKey>,
    state: &AppState,
    settings: &Settings,
) {
    let protected = state.auth().read_requires_credentials();
    println!(
        "hexrepo serving repository {repository:?} from {} at {url}",
        store.describe()
    );
    println!(
        "reads: {}",
        match (protected, settings.auth_username.value.is_some()) {
            (false, _) =>
                "open to anyone (set AUTH_USERNAME/AUTH_PASSWORD or create a key with `hexrepo key create`)",
            (true, true) => "basic auth or a repository key",
            (true, false) => "a repository key (`hexrepo key create --read-only`)",
        }
    );
    if state.api().is_some() {
        println!(
            "api: {url}/api (publish with HEX_API_URL={url}/api HEX_API_KEY=KEY; create KEY with `hexrepo key create`)"
        );
    } else {
        println!(
            "api: off (no private key at {}; the repository is read-only)",
            settings.private_key.value.display()
        );
    }
    let Some(key) = public_key else {
        println!(
            "warning: public_key is missing in {}; clients cannot verify this repository",
            store.describe()
        );
        return;
    };
    // With basic auth the credentials go in the URL; with keys, in --auth-key / repo_key.
    let basic = settings.auth_username.value.is_some();
    let client_url = if basic {
        url.replacen("://", "://USER:PASSWORD@", 1)
    } else {
        url.to_owned()
    };
    let url = client_url.as_str();
    let auth_flag = if protected && !basic {
        " --auth-key KEY"
    } else {
        ""
    };
    println!("\nmix:");
    println!(
        "  mix hex.repo add {repository} {url} --fetch-public-key {}{auth_flag}",
        key.fingerprint()
    );
    println!("\nrebar3 (rebar.config):");
    let repo_key = if protected && !basic {
        ",\n                  repo_key => <<\"KEY\">>"
    } else {
        ""
    };
    println!(
        "  {{hex, [{{repos, [#{{name => <<\"{repository}\">>,\n                  repo_url => <<\"{url}\">>,\n                  repo_public_key => <<\"{}\">>{repo_key}}}]}}]}}.\n",
        key.to_pkcs1_pem().trim_end()
    );
}

/// Who may read and publish: basic auth from the settings, keys from the store.
fn authenticator(settings: &Settings, store: &Store) -> Authenticator {
    Authenticator::new(
        match settings.read_auth.value {
            ReadAuth::Auto => ServerReadAuth::Auto,
            ReadAuth::Required => ServerReadAuth::Required,
            ReadAuth::Public => ServerReadAuth::Public,
        },
        settings
            .auth_username
            .value
            .as_deref()
            .zip(settings.auth_password.value.as_deref())
            .map(|(u, p)| BasicCredentials::new(u, p)),
        Some(KeyStore::new(store)),
    )
}

/// The mirror, when `serve` serves one.
fn mirror(settings: &Settings) -> anyhow::Result<Option<Mirror>> {
    if !settings.mirror.value {
        return Ok(None);
    }
    let store = settings.open_mirror_store()?;
    if let Some(root) = store.local_root() {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    }
    remove_orphaned_temporaries(&store);
    Ok(Some(match settings.mirror_mode.value {
        MirrorMode::Offline => Mirror::Offline(store),
        MirrorMode::Lazy => {
            let described = store.describe().to_string();
            let config = PullThroughConfig {
                upstream: Arc::new(HttpSource::new(&settings.upstream_url.value, None)?),
                origin: super::mirror::origin(settings)?,
                ttl: settings.mirror_ttl.value,
                negative_ttl: settings.mirror_negative_ttl.value,
            };
            Mirror::Lazy(Box::new(
                PullThrough::new(store, config)
                    .with_context(|| format!("preparing the mirror in {described}"))?,
            ))
        }
    }))
}

/// Logs a warning for each private package whose name the lazy mirror's upstream also has.
async fn warn_shadowed(state: AppState, private: Vec<String>, upstream: String) {
    let Some(pull) = state.pull_through() else {
        return;
    };
    match pull.upstream_names().await {
        Ok(names) => {
            for name in shadowed(private.iter().map(String::as_str), &names) {
                tracing::warn!("{}", super::mirror::shadowed_warning(&name, &upstream));
            }
        }
        Err(why) => tracing::warn!(
            "cannot compare the private package names with {upstream:?}'s: its names file is {why:?}"
        ),
    }
}

/// The mirror's banner line, less its URL.
fn mirror_banner(mirror: &Mirror, settings: &Settings) -> String {
    let (store, how) = match mirror {
        Mirror::Offline(store) => (store, "offline (serves only what is stored)".to_owned()),
        Mirror::Lazy(pull) => (
            pull.store(),
            format!(
                "lazy (fetches what is asked for, verified; registry files revalidated after {})",
                humantime::format_duration(settings.mirror_ttl.value)
            ),
        ),
    };
    format!(
        "mirror of {:?} ({}) in {}, {how}, same read access as the repository",
        settings.upstream_name.value,
        settings.upstream_url.value,
        store.describe()
    )
}

fn print_mirror_banner(url: &str, banner: &str, host: Option<&MirrorHost>) {
    let mirror_url = format!("{url}{MIRROR_PREFIX}");
    println!("\n{banner}: {mirror_url}");
    println!("  mix:    HEX_MIRROR={mirror_url}");
    println!("  rebar3: HEX_CDN={mirror_url}");
    if let Some(host) = host {
        let host_url = with_host(url, host);
        println!("  also at {host_url} (requests for host {host} get the mirror and nothing else)");
    }
}

/// `url` with its host replaced by `host` (scheme and port kept).
fn with_host(url: &str, host: &MirrorHost) -> String {
    let Ok(uri) = url.parse::<axum::http::Uri>() else {
        return format!("http://{host}");
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Logs go to stderr through a buffered background writer, so a request never waits on a
/// `write` syscall for its access-log line, and lines that arrive together are written
/// together. Lines are never dropped (the writer blocks when its buffer is full); the returned
/// guard flushes what is left when `serve` returns.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // The writer thread drains every line queued, then flushes: one `write` per batch, not per
    // line, when requests come faster than it writes.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// Resolves on SIGTERM or SIGINT; in-flight responses then finish before `serve` returns.
/// The handlers are installed now, before the banner tells anyone the server is up: a signal
/// sent right after it is a graceful stop, not a kill.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
