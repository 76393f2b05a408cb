//! Settings for `serve` and the commands that act on a running repository's folder, resolved
//! once at startup from four layers: defaults < config file (TOML) < environment < flags. Each
//! value remembers where it came from, for `hexrepo config show`. The environment names are the
//! Hex self-hosting guide's (`PORT`, `PUBLIC_DIR`, `AUTH_USERNAME`, `AUTH_PASSWORD`) plus our
//! own `HEXREPO_*`, all listed in [`mod@env`].

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hexrepo_registry::mirror::{HEXPM_NAME, HEXPM_URL};
use hexrepo_registry::publish::DEFAULT_RESERVED_NAMES;
use hexrepo_server::MirrorHost;
use hexrepo_store::{S3Option, Store, StoreOptions};
use serde::Deserialize;

/// Every environment variable hexrepo reads, in one place.
pub mod env {
    /// Port to listen on (the guide's name).
    pub const PORT: &str = "PORT";
    /// Repository folder (the guide's name).
    pub const PUBLIC_DIR: &str = "PUBLIC_DIR";
    /// Basic-auth user name (the guide's name).
    pub const AUTH_USERNAME: &str = "AUTH_USERNAME";
    /// Basic-auth password (the guide's name).
    pub const AUTH_PASSWORD: &str = "AUTH_PASSWORD";
    /// Config file path.
    pub const CONFIG: &str = "HEXREPO_CONFIG";
    /// Address to bind.
    pub const BIND: &str = "HEXREPO_BIND";
    /// Repository name for a new registry.
    pub const NAME: &str = "HEXREPO_NAME";
    /// Private key used to create a registry.
    pub const PRIVATE_KEY: &str = "HEXREPO_PRIVATE_KEY";
    /// `auto`, `required` or `public`.
    pub const READ_AUTH: &str = "HEXREPO_READ_AUTH";
    /// `text` or `json`.
    pub const LOG_FORMAT: &str = "HEXREPO_LOG_FORMAT";
    /// MiB of tarballs kept in memory.
    pub const CACHE_MIB: &str = "HEXREPO_CACHE_MIB";
    /// The URL clients use, when it differs from the listening address (behind a proxy).
    pub const PUBLIC_URL: &str = "HEXREPO_PUBLIC_URL";
    /// Package names nobody may publish, comma-separated.
    pub const RESERVED_NAMES: &str = "HEXREPO_RESERVED_NAMES";
    /// Where the repository is stored: a folder, `file:///path` or `s3://bucket/prefix`.
    /// S3 endpoint, region and credentials come from the usual `AWS_*` variables (see
    /// `hexrepo_store::S3Option::env_var`), or from the config file's `[s3]` table.
    pub const STORAGE: &str = "HEXREPO_STORAGE";
    /// `true` to serve the mirror under `/mirrors/hexpm`.
    pub const MIRROR: &str = "HEXREPO_MIRROR";
    /// Where the mirror is stored: a folder, `file:///path` or `s3://bucket/prefix`.
    pub const MIRROR_STORAGE: &str = "HEXREPO_MIRROR_STORAGE";
    /// The mirrored repository's URL.
    pub const UPSTREAM_URL: &str = "HEXREPO_UPSTREAM_URL";
    /// The mirrored repository's name, as its files say.
    pub const UPSTREAM_NAME: &str = "HEXREPO_UPSTREAM_NAME";
    /// PEM file with the mirrored repository's public key.
    pub const UPSTREAM_PUBLIC_KEY: &str = "HEXREPO_UPSTREAM_PUBLIC_KEY";
    /// A host name that serves the mirror at its root (and nothing else).
    pub const MIRROR_HOST: &str = "HEXREPO_MIRROR_HOST";
    /// `lazy` (a pull-through cache of the upstream) or `offline` (only what is stored).
    pub const MIRROR_MODE: &str = "HEXREPO_MIRROR_MODE";
    /// How long the lazy mirror serves a registry file before revalidating it upstream.
    pub const MIRROR_TTL: &str = "HEXREPO_MIRROR_TTL";
    /// How long the lazy mirror remembers an upstream 404.
    pub const MIRROR_NEGATIVE_TTL: &str = "HEXREPO_MIRROR_NEGATIVE_TTL";
    /// Connections `serve` keeps open at once.
    pub const MAX_CONNECTIONS: &str = "HEXREPO_MAX_CONNECTIONS";
    /// How long a connection has to send a request head once it began.
    pub const HEADER_TIMEOUT: &str = "HEXREPO_HEADER_TIMEOUT";
    /// How long a keep-alive connection may sit idle between requests.
    pub const IDLE_TIMEOUT: &str = "HEXREPO_IDLE_TIMEOUT";
    /// How long a request in flight may go without a byte moving.
    pub const STALL_TIMEOUT: &str = "HEXREPO_STALL_TIMEOUT";
    /// How long a request body may take to arrive.
    pub const BODY_TIMEOUT: &str = "HEXREPO_BODY_TIMEOUT";
    /// How long `serve --mirror` waits after a mirror sync ends before the next (`1h`, `30m`).
    pub const MIRROR_SYNC_EVERY: &str = "HEXREPO_MIRROR_SYNC_EVERY";
    /// The packages mirrored (with their dependencies), comma-separated.
    pub const MIRROR_PACKAGES: &str = "HEXREPO_MIRROR_PACKAGES";
}

/// The config file looked for in the working directory when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "hexrepo.toml";

/// The raw flags shared by `serve`, `config show` and `key` (all optional: unset means "ask
/// the lower layers").
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Flags {
    /// TOML config file [default: ./hexrepo.toml if present].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port to listen on [env: PORT; default 8000].
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on [env: HEXREPO_BIND; default 0.0.0.0].
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// The repository folder [env: PUBLIC_DIR; default hexrepo-data/public].
    #[arg(long)]
    pub public_dir: Option<PathBuf>,
    /// Private key for creating the registry [env: HEXREPO_PRIVATE_KEY; default hexrepo-data/private_key.pem].
    #[arg(long)]
    pub private_key: Option<PathBuf>,
    /// Repository name for a new registry [env: HEXREPO_NAME; default hexrepo].
    #[arg(long)]
    pub name: Option<String>,
    /// Basic-auth user name [env: AUTH_USERNAME].
    #[arg(long)]
    pub auth_username: Option<String>,
    /// Basic-auth password [env: AUTH_PASSWORD].
    #[arg(long)]
    pub auth_password: Option<String>,
    /// When reads need credentials: auto, required or public [env: HEXREPO_READ_AUTH; default auto].
    #[arg(long)]
    pub read_auth: Option<String>,
    /// Log format: text or json [env: HEXREPO_LOG_FORMAT; default text].
    #[arg(long)]
    pub log_format: Option<String>,
    /// MiB of tarballs and docs kept in memory [env: HEXREPO_CACHE_MIB; default 16].
    #[arg(long)]
    pub cache_mib: Option<u64>,
    /// URL clients use, if not the listening address [env: HEXREPO_PUBLIC_URL].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Connections open at once; at the cap new ones wait [env: HEXREPO_MAX_CONNECTIONS; default 4096].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Time to send a request head once its first byte arrived [env: HEXREPO_HEADER_TIMEOUT; default 10s].
    #[arg(long)]
    pub header_timeout: Option<String>,
    /// Time a keep-alive connection may sit idle between requests [env: HEXREPO_IDLE_TIMEOUT; default 60s].
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// Time a request in flight may go without a byte sent or received [env: HEXREPO_STALL_TIMEOUT; default 60s].
    #[arg(long)]
    pub stall_timeout: Option<String>,
    /// Time a request body (an upload) may take to arrive whole [env: HEXREPO_BODY_TIMEOUT; default 5m].
    #[arg(long)]
    pub body_timeout: Option<String>,
    /// Package names nobody may publish, comma-separated [env: HEXREPO_RESERVED_NAMES; default: hex.pm's list].
    #[arg(long, value_delimiter = ',')]
    pub reserved_names: Option<Vec<String>>,
    /// Where the repository is stored: a folder, file:///path or s3://bucket/prefix [env: HEXREPO_STORAGE; default: the public dir].
    #[arg(long)]
    pub storage: Option<String>,
    /// Serve the mirror under /mirrors/hexpm [env: HEXREPO_MIRROR; default false].
    #[arg(long)]
    pub mirror: bool,
    /// Where the mirror is stored: a folder, file:///path or s3://bucket/prefix [env: HEXREPO_MIRROR_STORAGE; default hexrepo-data/mirror].
    #[arg(long)]
    pub mirror_storage: Option<String>,
    /// The mirrored repository's URL [env: HEXREPO_UPSTREAM_URL; default `https://repo.hex.pm`].
    #[arg(long)]
    pub upstream_url: Option<String>,
    /// The mirrored repository's name [env: HEXREPO_UPSTREAM_NAME; default hexpm].
    #[arg(long)]
    pub upstream_name: Option<String>,
    /// PEM file with the mirrored repository's public key [env: HEXREPO_UPSTREAM_PUBLIC_KEY; default: hex.pm's, built in].
    #[arg(long)]
    pub upstream_public_key: Option<PathBuf>,
    /// Also serve the mirror at the root of this host name (requests whose Host is it get the mirror and nothing else), e.g. hexpm-mirror.example.com [env: HEXREPO_MIRROR_HOST; default none].
    #[arg(long, value_name = "HOST")]
    pub mirror_host: Option<String>,
    /// lazy: fetch what is asked for from the upstream (verified, stored); offline: serve only what is stored [env: HEXREPO_MIRROR_MODE; default lazy].
    #[arg(long)]
    pub mirror_mode: Option<String>,
    /// How long the lazy mirror serves a registry file before revalidating it upstream, e.g. 60s, 5m [env: HEXREPO_MIRROR_TTL; default 60s].
    #[arg(long)]
    pub mirror_ttl: Option<String>,
    /// How long the lazy mirror remembers that upstream has no such file [env: HEXREPO_MIRROR_NEGATIVE_TTL; default 30s].
    #[arg(long)]
    pub mirror_negative_ttl: Option<String>,
    /// With --mirror, serve syncs the mirror at startup and then this long after each sync ends, e.g. 30m or 1h [env: HEXREPO_MIRROR_SYNC_EVERY; default off].
    #[arg(long, value_name = "DURATION")]
    pub mirror_sync_every: Option<String>,
    /// Mirror only this package and its dependencies (repeat for more) [env: HEXREPO_MIRROR_PACKAGES, comma-separated; default: every package].
    #[arg(long = "mirror-package", value_name = "NAME")]
    pub mirror_packages: Vec<String>,
}

/// The config file's keys, the same names as the flags with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    bind: Option<IpAddr>,
    public_dir: Option<PathBuf>,
    private_key: Option<PathBuf>,
    name: Option<String>,
    auth_username: Option<String>,
    auth_password: Option<String>,
    read_auth: Option<String>,
    log_format: Option<String>,
    cache_mib: Option<u64>,
    public_url: Option<String>,
    max_connections: Option<usize>,
    header_timeout: Option<String>,
    idle_timeout: Option<String>,
    stall_timeout: Option<String>,
    body_timeout: Option<String>,
    reserved_names: Option<Vec<String>>,
    storage: Option<String>,
    mirror: Option<bool>,
    mirror_storage: Option<String>,
    upstream_url: Option<String>,
    upstream_name: Option<String>,
    upstream_public_key: Option<PathBuf>,
    mirror_host: Option<String>,
    mirror_mode: Option<String>,
    mirror_ttl: Option<String>,
    mirror_negative_ttl: Option<String>,
    mirror_sync_every: Option<String>,
    mirror_packages: Option<Vec<String>>,
    #[serde(default)]
    s3: S3File,
}

/// The config file's `[s3]` table: used where the matching `AWS_*` variable is not set.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3File {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
    virtual_hosted_style: Option<bool>,
}

impl S3File {
    fn options(&self) -> Vec<(S3Option, String)> {
        [
            (S3Option::Endpoint, self.endpoint.clone()),
            (S3Option::Region, self.region.clone()),
            (S3Option::AccessKeyId, self.access_key_id.clone()),
            (S3Option::SecretAccessKey, self.secret_access_key.clone()),
            (S3Option::AllowHttp, self.allow_http.map(|b| b.to_string())),
            (
                S3Option::VirtualHostedStyle,
                self.virtual_hosted_style.map(|b| b.to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(option, value)| Some((option, value?)))
        // The environment wins over the file, as for every other setting.
        .filter(|(option, _)| env_var(option.env_var()).is_none())
        .collect()
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built in.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(name) => write!(f, "environment {name}"),
            Origin::Flag => f.write_str("command line"),
        }
    }
}

/// A resolved value and its origin.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

/// When reads need credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAuth {
    /// Once credentials exist (basic auth configured, or a repository key created).
    Auto,
    /// Always.
    Required,
    /// Never.
    Public,
}

/// Access-log and diagnostics format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How `serve` serves the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorMode {
    /// A pull-through cache: what is asked for is fetched from upstream, verified, stored.
    Lazy,
    /// Only what is stored (`hexrepo mirror sync`, `mirror import`): for air gaps.
    Offline,
}

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// Config file in use, if any.
    pub config_file: Option<PathBuf>,
    /// Listening port.
    pub port: Setting<u16>,
    /// Listening address.
    pub bind: Setting<IpAddr>,
    /// Repository folder.
    pub public_dir: Setting<PathBuf>,
    /// Private key for a new registry.
    pub private_key: Setting<PathBuf>,
    /// Repository name for a new registry.
    pub name: Setting<String>,
    /// Basic-auth user, when set.
    pub auth_username: Setting<Option<String>>,
    /// Basic-auth password, when set. Never printed.
    pub auth_password: Setting<Option<String>>,
    /// When reads need credentials.
    pub read_auth: Setting<ReadAuth>,
    /// Log format.
    pub log_format: Setting<LogFormat>,
    /// In-memory tarball budget, MiB.
    pub cache_mib: Setting<u64>,
    /// URL clients use.
    pub public_url: Setting<Option<String>>,
    /// Connections `serve` keeps open at once.
    pub max_connections: Setting<usize>,
    /// Time to send a request head once it began.
    pub header_timeout: Setting<Duration>,
    /// Time a keep-alive connection may sit idle.
    pub idle_timeout: Setting<Duration>,
    /// Time a request in flight may go without a byte moving.
    pub stall_timeout: Setting<Duration>,
    /// Time a request body may take to arrive.
    pub body_timeout: Setting<Duration>,
    /// Package names nobody may publish.
    pub reserved_names: Setting<Vec<String>>,
    /// Where the repository is stored (the public dir unless set).
    pub storage: Setting<String>,
    /// Whether `serve` serves the mirror.
    pub mirror: Setting<bool>,
    /// Where the mirror is stored.
    pub mirror_storage: Setting<String>,
    /// The mirrored repository's URL, without a trailing slash.
    pub upstream_url: Setting<String>,
    /// The mirrored repository's name.
    pub upstream_name: Setting<String>,
    /// The mirrored repository's public key file; `None` for hex.pm's built-in key.
    pub upstream_public_key: Setting<Option<PathBuf>>,
    /// A host name that serves the mirror at its root.
    pub mirror_host: Setting<Option<MirrorHost>>,
    /// How `serve` serves the mirror.
    pub mirror_mode: Setting<MirrorMode>,
    /// How long the lazy mirror trusts a registry file upstream confirmed.
    pub mirror_ttl: Setting<Duration>,
    /// How long the lazy mirror remembers an upstream 404.
    pub mirror_negative_ttl: Setting<Duration>,
    /// How long `serve` waits after a mirror sync ends before the next; `None`: no syncs.
    pub mirror_sync_every: Setting<Option<Duration>>,
    /// Packages mirrored with their dependencies; empty for every package.
    pub mirror_packages: Setting<Vec<String>>,
    /// S3 settings from the config file not overridden by the environment.
    s3: Vec<(S3Option, String)>,
}

/// Reads an environment variable, treating an empty value as unset.
fn env_var(name: &'static str) -> Option<String> {
    #[allow(clippy::disallowed_methods)] // this module is the one place env is read
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One value's layers: the flag, the environment variable and the config file's entry.
fn pick<T>(
    flag: Option<T>,
    env_name: &'static str,
    parse: impl Fn(&str) -> anyhow::Result<T>,
    file: (Option<T>, &Option<PathBuf>),
    default: T,
) -> anyhow::Result<Setting<T>> {
    if let Some(value) = flag {
        return Ok(Setting {
            value,
            origin: Origin::Flag,
        });
    }
    if let Some(raw) = env_var(env_name) {
        let value = parse(&raw)
            .with_context(|| format!("invalid value {raw:?} in environment {env_name}"))?;
        return Ok(Setting {
            value,
            origin: Origin::Env(env_name),
        });
    }
    if let (Some(value), Some(path)) = file {
        return Ok(Setting {
            value,
            origin: Origin::File(path.clone()),
        });
    }
    Ok(Setting {
        value: default,
        origin: Origin::Default,
    })
}

fn parsed<T: std::str::FromStr>(raw: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(raw.parse::<T>()?)
}

#[allow(clippy::unnecessary_wraps)] // same shape as `parsed`, to be passed to `pick`
fn text(raw: &str) -> anyhow::Result<String> {
    Ok(raw.to_owned())
}

impl Settings {
    /// Resolves the four layers. Fails on an unreadable config file or an invalid value, naming
    /// the layer it came from.
    #[allow(clippy::too_many_lines)] // one `pick` per setting, in one place on purpose
    pub fn resolve(flags: &Flags) -> anyhow::Result<Settings> {
        let (config_file, file) = load_file(flags)?;
        let f = &config_file;
        let flags = flags.clone();
        let settings = Settings {
            port: pick(flags.port, env::PORT, parsed, (file.port, f), 8000)?,
            bind: pick(
                flags.bind,
                env::BIND,
                parsed,
                (file.bind, f),
                IpAddr::from([0, 0, 0, 0]),
            )?,
            public_dir: pick(
                flags.public_dir,
                env::PUBLIC_DIR,
                parsed,
                (file.public_dir, f),
                "hexrepo-data/public".into(),
            )?,
            private_key: pick(
                flags.private_key,
                env::PRIVATE_KEY,
                parsed,
                (file.private_key, f),
                "hexrepo-data/private_key.pem".into(),
            )?,
            name: pick(
                flags.name,
                env::NAME,
                text,
                (file.name, f),
                "hexrepo".into(),
            )?,
            auth_username: optional(pick(
                flags.auth_username,
                env::AUTH_USERNAME,
                text,
                (file.auth_username, f),
                String::new(),
            )?),
            auth_password: optional(pick(
                flags.auth_password,
                env::AUTH_PASSWORD,
                text,
                (file.auth_password, f),
                String::new(),
            )?),
            read_auth: choice(
                pick(
                    flags.read_auth,
                    env::READ_AUTH,
                    text,
                    (file.read_auth, f),
                    "auto".into(),
                )?,
                &[
                    ("auto", ReadAuth::Auto),
                    ("required", ReadAuth::Required),
                    ("public", ReadAuth::Public),
                ],
            )?,
            log_format: choice(
                pick(
                    flags.log_format,
                    env::LOG_FORMAT,
                    text,
                    (file.log_format, f),
                    "text".into(),
                )?,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )?,
            cache_mib: pick(
                flags.cache_mib,
                env::CACHE_MIB,
                parsed,
                (file.cache_mib, f),
                16,
            )?,
            max_connections: pick(
                flags.max_connections,
                env::MAX_CONNECTIONS,
                parsed,
                (file.max_connections, f),
                hexrepo_server::edge::Limits::default().max_connections,
            )?,
            header_timeout: timeout(pick(
                flags.header_timeout,
                env::HEADER_TIMEOUT,
                text,
                (file.header_timeout, f),
                "10s".into(),
            )?)?,
            idle_timeout: timeout(pick(
                flags.idle_timeout,
                env::IDLE_TIMEOUT,
                text,
                (file.idle_timeout, f),
                "60s".into(),
            )?)?,
            stall_timeout: timeout(pick(
                flags.stall_timeout,
                env::STALL_TIMEOUT,
                text,
                (file.stall_timeout, f),
                "60s".into(),
            )?)?,
            body_timeout: timeout(pick(
                flags.body_timeout,
                env::BODY_TIMEOUT,
                text,
                (file.body_timeout, f),
                "5m".into(),
            )?)?,
            public_url: optional(pick(
                flags.public_url,
                env::PUBLIC_URL,
                text,
                (file.public_url, f),
                String::new(),
            )?),
            reserved_names: pick(
                flags.reserved_names,
                env::RESERVED_NAMES,
                comma_list,
                (file.reserved_names, f),
                default_reserved_names(),
            )?,
            storage: pick(
                flags.storage,
                env::STORAGE,
                text,
                (file.storage, f),
                String::new(),
            )?,
            mirror: pick(
                flags.mirror.then_some(true),
                env::MIRROR,
                parsed,
                (file.mirror, f),
                false,
            )?,
            mirror_storage: pick(
                flags.mirror_storage,
                env::MIRROR_STORAGE,
                text,
                (file.mirror_storage, f),
                "hexrepo-data/mirror".into(),
            )?,
            upstream_url: pick(
                flags.upstream_url,
                env::UPSTREAM_URL,
                text,
                (file.upstream_url, f),
                HEXPM_URL.into(),
            )?,
            upstream_name: pick(
                flags.upstream_name,
                env::UPSTREAM_NAME,
                text,
                (file.upstream_name, f),
                HEXPM_NAME.into(),
            )?,
            upstream_public_key: pick(
                flags.upstream_public_key.map(Some),
                env::UPSTREAM_PUBLIC_KEY,
                |raw| Ok(Some(PathBuf::from(raw))),
                (file.upstream_public_key.map(Some), f),
                None,
            )?,
            mirror_host: mirror_host(optional(pick(
                flags.mirror_host,
                env::MIRROR_HOST,
                text,
                (file.mirror_host, f),
                String::new(),
            )?))?,
            mirror_mode: choice(
                pick(
                    flags.mirror_mode,
                    env::MIRROR_MODE,
                    text,
                    (file.mirror_mode, f),
                    "lazy".into(),
                )?,
                &[("lazy", MirrorMode::Lazy), ("offline", MirrorMode::Offline)],
            )?,
            mirror_ttl: duration(pick(
                flags.mirror_ttl,
                env::MIRROR_TTL,
                text,
                (file.mirror_ttl, f),
                "60s".into(),
            )?)?,
            mirror_negative_ttl: duration(pick(
                flags.mirror_negative_ttl,
                env::MIRROR_NEGATIVE_TTL,
                text,
                (file.mirror_negative_ttl, f),
                "30s".into(),
            )?)?,
            mirror_sync_every: interval(pick(
                flags.mirror_sync_every,
                env::MIRROR_SYNC_EVERY,
                text,
                (file.mirror_sync_every, f),
                "off".into(),
            )?)?,
            mirror_packages: pick(
                (!flags.mirror_packages.is_empty()).then_some(flags.mirror_packages),
                env::MIRROR_PACKAGES,
                comma_list,
                (file.mirror_packages, f),
                Vec::new(),
            )?,
            s3: file.s3.options(),
            config_file,
        }
        .with_default_storage();
        settings.validate()?;
        Ok(settings)
    }

    /// Storage left unset is the public dir, from wherever that came.
    fn with_default_storage(mut self) -> Settings {
        if self.storage.value.is_empty() {
            self.storage = Setting {
                value: self.public_dir.value.display().to_string(),
                origin: self.public_dir.origin.clone(),
            };
        }
        self
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_connections.value == 0 {
            bail!(
                "max_connections 0 (from {}) would accept no connection",
                self.max_connections.origin
            );
        }
        if self.auth_username.value.is_some() != self.auth_password.value.is_some() {
            bail!(
                "basic auth needs both AUTH_USERNAME and AUTH_PASSWORD (or --auth-username and --auth-password)"
            );
        }
        if self.read_auth.value == ReadAuth::Public && self.auth_username.value.is_some() {
            bail!(
                "read_auth is public but basic-auth credentials are configured: remove one of them"
            );
        }
        if self.mirror_host.value.is_some() && !self.mirror.value {
            bail!(
                "mirror_host is set (from {}) but mirror is off: set mirror too (--mirror, {}=true \
                 or mirror = true)",
                self.mirror_host.origin,
                env::MIRROR
            );
        }
        let public_uri = self
            .public_url
            .value
            .as_deref()
            .and_then(|url| url.parse::<axum::http::Uri>().ok());
        if let (Some(mirror_host), Some(public_host)) = (
            &self.mirror_host.value,
            public_uri.as_ref().and_then(axum::http::Uri::host),
        ) && mirror_host.is(public_host)
        {
            bail!(
                "mirror_host {:?} (from {}) is the host of public_url (from {}): that host would \
                 serve only the mirror and clients could not reach the repository; give the \
                 mirror a name of its own",
                mirror_host.as_str(),
                self.mirror_host.origin,
                self.public_url.origin
            );
        }
        if self.mirror_sync_every.value.is_some() && !self.mirror.value {
            bail!(
                "mirror_sync_every is set (from {}) but mirror is off: scheduled syncs are for the \
                 mirror `serve` serves; set mirror too (--mirror, {}=true or mirror = true)",
                self.mirror_sync_every.origin,
                env::MIRROR
            );
        }
        Ok(())
    }

    /// Opens the repository's store.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let options = StoreOptions {
            s3: self.s3.clone(),
            ignore_env: false,
        };
        Store::open(&self.storage.value, &options)
            .with_context(|| format!("opening storage (from {})", self.storage.origin))
    }

    /// Opens the mirror's store.
    pub fn open_mirror_store(&self) -> anyhow::Result<Store> {
        let options = StoreOptions {
            s3: self.s3.clone(),
            ignore_env: false,
        };
        Store::open(&self.mirror_storage.value, &options).with_context(|| {
            format!(
                "opening mirror storage {} (from {})",
                self.mirror_storage.value, self.mirror_storage.origin
            )
        })
    }

    /// `key = value  # origin` lines with secrets redacted, for `hexrepo config show`.
    pub fn describe(&self) -> Vec<String> {
        fn line<T: fmt::Debug>(key: &str, s: &Setting<T>) -> String {
            format!("{key} = {:?}  # {}", s.value, s.origin)
        }
        let redacted = |s: &Setting<Option<String>>| Setting {
            value: s.value.as_ref().map(|_| "<redacted>"),
            origin: s.origin.clone(),
        };
        vec![
            format!(
                "# config file: {}",
                self.config_file
                    .as_ref()
                    .map_or("none".into(), |p| p.display().to_string())
            ),
            line("port", &self.port),
            line("bind", &self.bind),
            line("public_dir", &self.public_dir),
            line("private_key", &self.private_key),
            line("name", &self.name),
            line("auth_username", &self.auth_username),
            line("auth_password", &redacted(&self.auth_password)),
            line("read_auth", &self.read_auth),
            line("log_format", &self.log_format),
            line("cache_mib", &self.cache_mib),
            line("public_url", &self.public_url),
            line("max_connections", &self.max_connections),
            line("header_timeout", &self.header_timeout),
            line("idle_timeout", &self.idle_timeout),
            line("stall_timeout", &self.stall_timeout),
            line("body_timeout", &self.body_timeout),
            line("reserved_names", &self.reserved_names),
            line("storage", &self.storage),
            line("mirror", &self.mirror),
            line("mirror_storage", &self.mirror_storage),
            line("upstream_url", &self.upstream_url),
            line("upstream_name", &self.upstream_name),
            line("upstream_public_key", &self.upstream_public_key),
            line(
                "mirror_host",
                &Setting {
                    value: self.mirror_host.value.as_ref().map(MirrorHost::as_str),
                    origin: self.mirror_host.origin.clone(),
                },
            ),
            line("mirror_mode", &self.mirror_mode),
            line("mirror_ttl", &self.mirror_ttl),
            line("mirror_negative_ttl", &self.mirror_negative_ttl),
            line(
                "mirror_sync_every",
                &Setting {
                    value: self
                        .mirror_sync_every
                        .value
                        .map_or("off".into(), |d| humantime::format_duration(d).to_string()),
                    origin: self.mirror_sync_every.origin.clone(),
                },
            ),
            line("mirror_packages", &self.mirror_packages),
        ]
        .into_iter()
        .chain(self.s3.iter().map(|(option, value)| {
            let shown = if *option == S3Option::SecretAccessKey {
                "<redacted>"
            } else {
                value.as_str()
            };
            format!("s3.{option:?} = {shown:?}  # config file")
        }))
        .collect()
    }
}

/// A host name that serves the mirror, checked now so a typo stops `serve` at once.
fn mirror_host(setting: Setting<Option<String>>) -> anyhow::Result<Setting<Option<MirrorHost>>> {
    let value = setting
        .value
        .as_deref()
        .map(MirrorHost::parse)
        .transpose()
        .map_err(|why| anyhow::anyhow!("{why} (from {})", setting.origin))?;
    Ok(Setting {
        value,
        origin: setting.origin,
    })
}

/// A duration as people write it: `90s`, `5m`, `1h 30m`.
/// A [`duration`] that must not be zero: a zero timeout would close every connection.
fn timeout(setting: Setting<String>) -> anyhow::Result<Setting<Duration>> {
    let parsed = duration(setting)?;
    anyhow::ensure!(
        !parsed.value.is_zero(),
        "a timeout of 0 (from {}) would close every connection: use e.g. 10s",
        parsed.origin
    );
    Ok(parsed)
}

fn duration(setting: Setting<String>) -> anyhow::Result<Setting<Duration>> {
    let value = humantime::parse_duration(&setting.value).with_context(|| {
        format!(
            "invalid duration {:?} (from {}): use e.g. 30s, 5m, 1h",
            setting.value, setting.origin
        )
    })?;
    Ok(Setting {
        value,
        origin: setting.origin,
    })
}

/// A comma-separated list, blanks dropped.
#[allow(clippy::unnecessary_wraps)] // same shape as `parsed`, to be passed to `pick`
fn comma_list(raw: &str) -> anyhow::Result<Vec<String>> {
    Ok(raw
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect())
}

fn default_reserved_names() -> Vec<String> {
    DEFAULT_RESERVED_NAMES
        .iter()
        .map(|n| (*n).to_owned())
        .collect()
}

/// Maps a word setting onto its value, naming the allowed words and the layer on error.
fn choice<T: Copy>(setting: Setting<String>, words: &[(&str, T)]) -> anyhow::Result<Setting<T>> {
    if let Some((_, value)) = words.iter().find(|(word, _)| *word == setting.value) {
        return Ok(Setting {
            value: *value,
            origin: setting.origin,
        });
    }
    let allowed: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    bail!(
        "invalid value {:?} (from {}): use one of {}",
        setting.value,
        setting.origin,
        allowed.join(", ")
    )
}

/// A [`duration`] above zero, or `off`.
fn interval(setting: Setting<String>) -> anyhow::Result<Setting<Option<Duration>>> {
    if setting.value.trim() == "off" {
        return Ok(Setting {
            value: None,
            origin: setting.origin,
        });
    }
    let raw = setting.value.clone();
    let setting = duration(setting)?;
    if setting.value.is_zero() {
        bail!(
            "invalid duration {raw:?} (from {}): use one above zero, or off",
            setting.origin
        );
    }
    Ok(Setting {
        value: Some(setting.value),
        origin: setting.origin,
    })
}

/// An empty-string default becomes `None`.
fn optional(setting: Setting<String>) -> Setting<Option<String>> {
    Setting {
        value: Some(setting.value).filter(|v| !v.is_empty()),
        origin: setting.origin,
    }
}

fn load_file(flags: &Flags) -> anyhow::Result<(Option<PathBuf>, FileConfig)> {
    let named = flags
        .config
        .clone()
        .or_else(|| env_var(env::CONFIG).map(PathBuf::from));
    let path = match named {
        Some(path) => path,
        None if Path::new(DEFAULT_CONFIG_FILE).is_file() => PathBuf::from(DEFAULT_CONFIG_FILE),
        None => return Ok((None, FileConfig::default())),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let file = toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
    Ok((Some(path), file))
}
