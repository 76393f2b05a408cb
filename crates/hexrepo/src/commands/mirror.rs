//! `hexrepo mirror sync` fetches an upstream repository (hex.pm by default), or an allow-list
//! of its packages closed over their dependencies, into the mirror's store, verifying every
//! file; `hexrepo serve --mirror` then serves it under `/mirrors/hexpm`. `hexrepo mirror check`
//! reports private packages whose names also exist upstream (dependency confusion).
//! `hexrepo mirror export FILE` and `import FILE` carry a mirror across an air gap as one
//! archive; the import verifies it with the configured upstream key. [`MirrorSync`] is also what
//! `serve`'s scheduled syncs run.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use hexrepo_registry::mirror::archive::{self, ExportReport};
use hexrepo_registry::mirror::sync::{
    DEFAULT_JOBS, Progress, SyncOptions, SyncReport, summary, sync,
};
use hexrepo_registry::mirror::verify::Origin;
use hexrepo_registry::mirror::{hexpm_public_key, shadowed};
use hexrepo_store::{StorageKey, Store};

use super::progress::SyncDisplay;
use crate::settings::{Flags, Settings};
use hexrepo_registry::upstream::HttpSource;

/// Arguments of `hexrepo mirror`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: MirrorCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MirrorCommand {
    /// Fetch and verify the upstream's registry and tarballs into the mirror storage.
    Sync(SyncArgs),
    /// Report private packages whose names also exist in the mirrored upstream.
    Check(CheckArgs),
    /// Write the mirror's files to one archive FILE, to carry across an air gap.
    Export(ArchiveArgs),
    /// Verify an archive from `mirror export` with the upstream's key and store it in the mirror.
    Import(ArchiveArgs),
}

#[derive(Debug, clap::Args)]
struct ArchiveArgs {
    /// The archive (a plain tar).
    file: PathBuf,
    #[command(flatten)]
    flags: Flags,
}

#[derive(Debug, clap::Args)]
struct SyncArgs {
    #[command(flatten)]
    flags: Flags,
    /// Mirror only this package and its dependencies on the upstream (repeat for more)
    /// [default: the mirror_packages setting, else every package].
    #[arg(long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Parallel upstream fetches.
    #[arg(long, default_value_t = DEFAULT_JOBS)]
    jobs: usize,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    flags: Flags,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        MirrorCommand::Sync(args) => run_sync(args),
        MirrorCommand::Check(args) => run_check(args),
        MirrorCommand::Export(args) => run_export(args),
        MirrorCommand::Import(args) => run_import(args),
    }
}

/// The upstream's identity from the settings: its name, and its key (hex.pm's by default).
pub(super) fn origin(settings: &Settings) -> anyhow::Result<Origin> {
    let key = match &settings.upstream_public_key.value {
        Some(path) => super::read_public_key(path)?,
        None => hexpm_public_key(),
    };
    Ok(Origin {
        repository: settings.upstream_name.value.clone(),
        key,
    })
}

/// A mirror ready to sync: the upstream, what its files must say, and the mirror's store, all
/// resolved from the settings once (for `hexrepo mirror sync`, and for `serve`'s schedule).
pub(super) struct MirrorSync {
    origin: Origin,
    store: Store,
    upstream: HttpSource,
    upstream_url: String,
}

impl MirrorSync {
    /// Reads the upstream's key and opens the mirror's store (creating its folder).
    pub(super) fn open(settings: &Settings) -> anyhow::Result<MirrorSync> {
        let origin = origin(settings)?;
        let store = settings.open_mirror_store()?;
        if let Some(root) = store.local_root() {
            std::fs::create_dir_all(root)
                .with_context(|| format!("creating {}", root.display()))?;
        }
        Ok(MirrorSync {
            origin,
            upstream: HttpSource::new(&settings.upstream_url.value, None)?,
            upstream_url: settings.upstream_url.value.clone(),
            store,
        })
    }

    /// `mirroring "hexpm" from URL (key SHA256:...) into STORE`.
    pub(super) fn describe(&self) -> String {
        format!(
            "mirroring {:?} from {} (key {}) into {}",
            self.origin.repository,
            self.upstream_url,
            self.origin.key.fingerprint(),
            self.store.describe()
        )
    }

    /// One sync of `packages` and their dependencies (of everything when empty).
    pub(super) fn sync(
        &self,
        packages: &[String],
        jobs: usize,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> SyncReport {
        sync(&SyncOptions {
            upstream: &self.upstream,
            origin: &self.origin,
            store: &self.store,
            packages: (!packages.is_empty()).then(|| packages.to_vec()),
            jobs,
            progress,
        })
    }
}

fn run_sync(args: &SyncArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.flags)?;
    let mirror = MirrorSync::open(&settings)?;
    println!("{}", mirror.describe());
    let packages = if args.packages.is_empty() {
        &settings.mirror_packages.value
    } else {
        &args.packages
    };
    let display = SyncDisplay::new();
    let report = mirror.sync(packages, args.jobs, &|event| display.show(event));
    display.finish();
    for line in summary(&report) {
        println!("{line}");
    }
    report_shadowed(&settings, &mirror.origin, &report.upstream_names);
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_export(args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.flags)?;
    let store = settings.open_mirror_store()?;
    let file = &args.file;
    let report = write_atomically(file, |writer| Ok(archive::export(&store, writer)?))
        .with_context(|| format!("exporting {} to {}", store.describe(), file.display()))?;
    let size = fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let ExportReport {
        registry_files,
        packages,
        tarballs,
        ..
    } = report;
    println!(
        "exported {registry_files} registry files ({packages} packages) and {tarballs} tarballs \
         from {} to {}: {size} bytes",
        store.describe(),
        file.display()
    );
    if report.unreleased_tarballs > 0 {
        println!(
            "left out {} tarballs that no package in the mirror names",
            report.unreleased_tarballs
        );
    }
    if let Some(key) = report.key_fingerprint {
        println!("import it with the upstream key {key}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_import(args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.flags)?;
    let origin = origin(&settings)?;
    let store = settings.open_mirror_store()?;
    let file = &args.file;
    let reader = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    if let Some(root) = store.local_root() {
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    }
    println!(
        "importing {} into {}, verifying with {:?}'s key {}",
        file.display(),
        store.describe(),
        origin.repository,
        origin.key.fingerprint()
    );
    let report = archive::import(&store, &origin, BufReader::new(reader));
    for line in archive::summary(&report) {
        println!("{line}");
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes `path` through `write` so that it appears whole or not at all: a temporary file in
/// the same folder, flushed to disk, then renamed over `path`.
fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = File::create_new(&temp)
        .with_context(|| format!("creating {}", temp.display()))
        .and_then(|file| {
            let mut writer = BufWriter::new(file);
            let value = write(&mut writer)?;
            let file = writer
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            file.sync_all()?;
            fs::rename(&temp, path)?;
            Ok(value)
        });
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    } else {
        // The rename itself is durable only once the folder is.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    written
}

/// Compares the private repository's names with the mirror's stored (and verified) `names`.
fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.flags)?;
    let origin = origin(&settings)?;
    let store = settings.open_mirror_store()?;
    let Some(names) = store.get(&StorageKey::Names)? else {
        anyhow::bail!(
            "{}: no names file; run `hexrepo mirror sync` first",
            store.describe()
        );
    };
    let upstream: BTreeSet<String> = origin
        .names(&names.bytes)?
        .packages
        .into_iter()
        .map(|p| p.name)
        .collect();
    Ok(if report_shadowed(&settings, &origin, &upstream) {
        ExitCode::FAILURE
    } else {
        println!("no private package name exists upstream");
        ExitCode::SUCCESS
    })
}

/// Prints a warning for each private package whose name the upstream also has; true if any.
fn report_shadowed(settings: &Settings, origin: &Origin, upstream: &BTreeSet<String>) -> bool {
    let private = match private_names(settings) {
        Ok(names) => names,
        Err(e) => {
            println!("warning: cannot read the private repository's names: {e:#}");
            return false;
        }
    };
    let found = shadowed(private.iter().map(String::as_str), upstream);
    for name in &found {
        println!("warning: {}", shadowed_warning(name, &origin.repository));
    }
    !found.is_empty()
}

/// What is wrong with a private package named like one upstream.
pub(super) fn shadowed_warning(name: &str, upstream: &str) -> String {
    format!(
        "private package {name:?} also exists in {upstream:?}: a client with both repositories \
         may resolve the public one (dependency confusion); rename it or pin its repository"
    )
}

/// The package names of the private repository (our own file: signature not checked).
pub(super) fn private_names(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let store = settings.open_store()?;
    let Some(object) = store.get(&StorageKey::Names)? else {
        return Ok(Vec::new());
    };
    let signed = hexfmt::registry::decode_envelope(&object.bytes)?;
    let names: hexfmt::proto::names::Names =
        hexfmt::registry::decode_payload(&signed.payload, "Names")?;
    Ok(names.packages.into_iter().map(|p| p.name).collect())
}
