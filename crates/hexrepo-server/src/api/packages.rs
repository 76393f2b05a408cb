//! Reads through the API: `GET /packages/NAME`, `GET /packages/NAME/releases/VERSION` and
//! `GET /packages?search=`, with the fields `mix hex.info` and tools read (HEX-PROTOCOL.md
//! §6.4): meta, releases, retirements, latest versions, checksum, has_docs.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use hexfmt::metadata::Metadata;
use hexfmt::proto::package::{Package, Release, RetirementReason};
use hexfmt::tarball::read_tarball;
use hexfmt::version::Version;
use hexrepo_registry::RegistryError;
use hexrepo_registry::keys::Permission;
use hexrepo_registry::owners::OwnerStore;
use hexrepo_registry::signed_files::SignedFiles;
use hexrepo_registry::snippets::Snippets;
use hexrepo_store::StorageKey;
use serde_json::{Map, Value, json};

use super::releases::registry_error;
use super::{ApiConfig, ApiError, Format, Reply, authorize, blocking, config, params, respond};
use crate::router::AppState;

const PAGE_SIZE: usize = 100;

/// `GET /packages/NAME`.
pub async fn show(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = read_access(&state, p, &request);
    let result = match result {
        Ok(p) => {
            blocking(move || {
                let api = config(&state)?;
                let name = p.get("name").cloned().unwrap_or_default();
                package_json(api, &name).map(Reply::ok)
            })
            .await
        }
        Err(e) => Err(e),
    };
    respond(format, result)
}

/// `GET /packages/NAME/releases/VERSION`.
pub async fn release(
    State(state): State<AppState>,
    format: Format,
    Path(p): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = match read_access(&state, p, &request) {
        Ok(p) => {
            blocking(move || {
                let api = config(&state)?;
                let (name, version) = (
                    p.get("name").cloned().unwrap_or_default(),
                    p.get("version").cloned().unwrap_or_default(),
                );
                release_json(api, &name, &version, None)
                    .map(Reply::ok)
                    .map_err(registry_error)
            })
            .await
        }
        Err(e) => Err(e),
    };
    respond(format, result)
}

/// `GET /packages?search=TEXT&page=N`: packages whose name contains TEXT, 100 a page.
pub async fn search(
    State(state): State<AppState>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let result = match read_access(&state, HashMap::new(), &request) {
        Ok(_) => {
            blocking(move || {
                let api = config(&state)?;
                let needle = query.get("search").cloned().unwrap_or_default();
                let page: usize = query
                    .get("page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1)
                    .max(1);
                let names = SignedFiles {
                    store: &api.store,
                    repository: &api.repository,
                    key: &api.key,
                }
                .names()
                .map_err(registry_error)?
                .value;
                let items = names
                    .packages
                    .iter()
                    .filter(|p| p.name.contains(&needle))
                    .skip((page - 1) * PAGE_SIZE)
                    .take(PAGE_SIZE)
                    .map(|p| package_json(api, &p.name))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Reply::ok(Value::Array(items)))
            })
            .await
        }
        Err(e) => Err(e),
    };
    respond(format, result)
}

/// API reads follow the repository's read rule: open to anyone where reads are open (as
/// hex.pm's API is for public packages, so `mix hex.info` works without a key), otherwise they
/// need `api:read` or `repository`: a fetch-only key may look packages up.
pub(super) fn read_access(
    state: &AppState,
    p: HashMap<String, String>,
    request: &Request,
) -> Result<HashMap<String, String>, ApiError> {
    let p = params(state, p)?;
    if !state.auth().read_requires_credentials() {
        return Ok(p);
    }
    authorize(state, request, Permission::ApiRead)
        .or_else(|_| authorize(state, request, Permission::Repository))?;
    Ok(p)
}

pub(super) fn load_package(api: &ApiConfig, name: &str) -> Result<Package, RegistryError> {
    SignedFiles {
        store: &api.store,
        repository: &api.repository,
        key: &api.key,
    }
    .package(name)?
    .map(|read| read.value)
    .ok_or_else(|| RegistryError::NoSuchPackage(name.to_owned()))
}

/// The metadata of a release, read from its tarball; `None` when it cannot be read.
fn release_metadata(api: &ApiConfig, name: &str, version: &str) -> Option<Metadata> {
    let object = api.store.get(&StorageKey::tarball(name, version)).ok()??;
    read_tarball(&object.bytes).ok().map(|t| t.metadata)
}

/// Whether the release has docs; a store outage reads as "no".
fn has_docs(api: &ApiConfig, name: &str, version: &str) -> bool {
    matches!(
        api.store.head(&StorageKey::docs(name, version)),
        Ok(Some(_))
    )
}

fn package_json(api: &ApiConfig, name: &str) -> Result<Value, ApiError> {
    let package = load_package(api, name).map_err(registry_error)?;
    let versions: Vec<Version> = package
        .releases
        .iter()
        .filter_map(|r| Version::parse(&r.version).ok())
        .collect();
    let latest = versions.iter().max();
    let latest_stable = versions.iter().filter(|v| !v.is_pre()).max();
    // hex.pm describes a package by its latest stable release, else its latest.
    let shown = latest_stable.or(latest);
    let meta = shown.and_then(|v| release_metadata(api, name, &v.to_string()));
    let mut retirements = Map::new();
    for release in &package.releases {
        if let Some(r) = retirement_json(release) {
            retirements.insert(release.version.clone(), r);
        }
    }
    let published: Vec<i64> = package
        .releases
        .iter()
        .filter_map(|r| r.published_at.map(|t| t.seconds))
        .collect();
    let configs = shown.map_or(Value::Null, |v| {
        configs_json(api, name, meta.as_ref().and_then(|m| m.app.as_deref()), v)
    });
    let url = format!("{}/packages/{name}", api.api_url());
    Ok(json!({
        "name": name,
        "repository": api.repository,
        "url": url,
        "html_url": null,
        "docs_html_url": null,
        "inserted_at": published.iter().min().map(|&t| iso8601(t)),
        "updated_at": published.iter().max().map(|&t| iso8601(t)),
        "meta": {
            "description": meta.as_ref().and_then(|m| m.description.clone()),
            "licenses": meta.as_ref().map(|m| m.licenses.clone()).unwrap_or_default(),
            "links": meta.as_ref().map(|m| m.links.iter().cloned().collect::<HashMap<_, _>>()).unwrap_or_default(),
            "maintainers": meta.as_ref().map(|m| m.maintainers.clone()).unwrap_or_default(),
        },
        "releases": package.releases.iter().rev().map(|r| json!({
            "version": r.version,
            "url": format!("{url}/releases/{}", r.version),
            "has_docs": has_docs(api, name, &r.version),
            "inserted_at": r.published_at.map(|t| iso8601(t.seconds)),
        })).collect::<Vec<_>>(),
        "retirements": retirements,
        "latest_version": latest.map(ToString::to_string),
        "latest_stable_version": latest_stable.map(ToString::to_string),
        "configs": configs,
        "owners": owners_json(api, name)?,
        // This server counts no downloads; hex.pm's shape, with nothing in it.
        "downloads": {},
    }))
}

/// `configs`: the lines that depend on a release, from mix, rebar3 and erlang.mk.
fn configs_json(api: &ApiConfig, name: &str, app: Option<&str>, version: &Version) -> Value {
    let lines = Snippets::new(&api.repository, name, app, version);
    json!({"mix.exs": lines.mix, "rebar.config": lines.rebar, "erlang.mk": lines.erlang_mk})
}

/// The package's owners, as hex.pm's minimal user objects.
fn owners_json(api: &ApiConfig, name: &str) -> Result<Value, ApiError> {
    // Reading needs no operator name: that only matters when naming a new owner.
    let owners = OwnerStore::new(&api.store, None)
        .owners_of(name)
        .map_err(super::owners::owners_error)?;
    Ok(Value::Array(
        owners
            .iter()
            .map(|o| super::owners::user_json(api, &o.name))
            .collect(),
    ))
}

/// The Release object of the Hex API. `known` (a publish's metadata and the package it wrote)
/// saves reading both back.
pub fn release_json(
    api: &ApiConfig,
    name: &str,
    version: &str,
    known: Option<(&Metadata, &Package)>,
) -> Result<Value, RegistryError> {
    let (metadata, package) = match known {
        Some((metadata, package)) => (Some(metadata), std::borrow::Cow::Borrowed(package)),
        None => (None, std::borrow::Cow::Owned(load_package(api, name)?)),
    };
    let release = package
        .releases
        .iter()
        .find(|r| r.version == version)
        .ok_or_else(|| RegistryError::NoSuchRelease {
            package: name.to_owned(),
            version: version.to_owned(),
        })?;
    let meta = metadata
        .cloned()
        .or_else(|| release_metadata(api, name, version));
    let requirements: Map<String, Value> = release
        .dependencies
        .iter()
        .map(|d| {
            let value = json!({
                "app": d.app.clone().unwrap_or_else(|| d.package.clone()),
                "requirement": d.requirement,
                "optional": d.optional.unwrap_or(false),
                "repository": d.repository.clone().unwrap_or_else(|| api.repository.clone()),
            });
            (d.package.clone(), value)
        })
        .collect();
    let checksum = release.outer_checksum.as_deref().map(hex::encode);
    let inserted_at = release.published_at.map(|t| iso8601(t.seconds));
    let configs = Version::parse(version).map_or(Value::Null, |v| {
        configs_json(api, name, meta.as_ref().and_then(|m| m.app.as_deref()), &v)
    });
    let package_url = format!("{}/packages/{name}", api.api_url());
    Ok(json!({
        "version": version,
        "checksum": checksum,
        "has_docs": has_docs(api, name, version),
        "url": format!("{package_url}/releases/{version}"),
        "html_url": null,
        "docs_html_url": null,
        "package_url": package_url,
        "meta": {
            "app": meta.as_ref().and_then(|m| m.app.clone()),
            "build_tools": meta.as_ref().map(|m| m.build_tools.clone()).unwrap_or_default(),
            "elixir": meta.as_ref().and_then(|m| m.elixir.clone()),
        },
        "requirements": requirements,
        "retirement": retirement_json(release),
        "publisher": null,
        // This server counts no downloads (hex.pm sends null when it has none either).
        "downloads": null,
        "configs": configs,
        "inserted_at": inserted_at,
        "updated_at": inserted_at,
    }))
}

fn retirement_json(release: &Release) -> Option<Value> {
    release.retired.as_ref().map(|r| {
        let reason = match RetirementReason::try_from(r.reason) {
            Ok(RetirementReason::RetiredInvalid) => "invalid",
            Ok(RetirementReason::RetiredSecurity) => "security",
            Ok(RetirementReason::RetiredDeprecated) => "deprecated",
            Ok(RetirementReason::RetiredRenamed) => "renamed",
            Ok(RetirementReason::RetiredOther) | Err(_) => "other",
        };
        json!({"reason": reason, "message": r.message})
    })
}

pub(super) fn iso8601(seconds: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}
