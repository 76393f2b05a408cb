//! The `metadata.config` member of a Hex package tarball: reading it into a typed
//! [`Metadata`] and writing one back the way `hex_core` does, on top of [`crate::term`].
//!
//! Implements HEX-PROTOCOL.md §3.5 and §8 items 18–19: every form a `{Key, Value}` pair with
//! a text key, the last of duplicate keys winning, both shapes of `requirements` (the
//! map/kvlist form and the list-of-proplists form that `mix hex.build` writes), kvlist or map
//! `links`, and text written as binaries or (by old packages) strings, char lists or Latin-1.
//! It checks shape only: whether a name, version or requirement is *valid* is for callers.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::term::{Term, TermError, parse_terms, write_term};

/// The keys with a typed field in [`Metadata`]; any other key lands in [`Metadata::extra`].
const KNOWN_KEYS: &[&str] = &[
    "app",
    "build_tools",
    "description",
    "elixir",
    "files",
    "licenses",
    "links",
    "maintainers",
    "name",
    "requirements",
    "version",
];

/// What a package's `metadata.config` says about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Package name (`name`, required).
    pub name: String,
    /// Version string (`version`, required); not checked to be semantic-version here.
    pub version: String,
    /// OTP application name (`app`); hex.pm requires it and mix always writes it.
    pub app: Option<String>,
    /// One-line description (`description`).
    pub description: Option<String>,
    /// Paths shipped in `contents.tar.gz` (`files`); mix lists directories too.
    pub files: Vec<String>,
    /// License identifiers (`licenses`).
    pub licenses: Vec<String>,
    /// Named links such as `("GitHub", "https://…")` (`links`), in file order.
    pub links: Vec<(String, String)>,
    /// Dependencies (`requirements`), in file order; empty when the key is absent.
    pub requirements: Vec<MetadataRequirement>,
    /// Build tools such as `mix` or `rebar3` (`build_tools`). Empty when absent, in which
    /// case readers guess from the package files (§3.5); [`Metadata::to_config`] then leaves
    /// the key out so they still do.
    pub build_tools: Vec<String>,
    /// Elixir version requirement (`elixir`).
    pub elixir: Option<String>,
    /// Deprecated maintainer names (`maintainers`).
    pub maintainers: Vec<String>,
    /// Every other key with its value, as terms, in file order (`extra`, `secret_scan`, …).
    pub extra: Vec<(Term, Term)>,
}

/// One entry of `requirements`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequirement {
    /// Package name of the dependency.
    pub name: String,
    /// OTP application name, when given (callers usually default it to `name`).
    pub app: Option<String>,
    /// Version requirement such as `~> 1.0`; `None` when written as the atom `nil`.
    pub requirement: Option<String>,
    /// Whether the dependency is optional: true only for the atom `true`.
    pub optional: bool,
    /// Repository the dependency comes from (`hexpm`, an organization, …), when given.
    pub repository: Option<String>,
}

/// Why a `metadata.config` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The file is not a valid term file.
    #[error("metadata.config is not a valid term file")]
    Terms(#[from] TermError),
    /// A form is not a `{Key, Value}` pair with a binary or string key (`hex_core`:
    /// `not_key_value`).
    #[error("metadata.config term {index} is not a {{Key, Value}} pair with a text key")]
    NotKeyValue {
        /// Position of the form, counted from 1.
        index: usize,
    },
    /// A required field is absent.
    #[error("metadata field \"{field}\" is missing")]
    Missing {
        /// The key.
        field: &'static str,
    },
    /// A field's value has the wrong shape.
    #[error("metadata field \"{field}\": {problem}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// What is wrong, naming the entry (counted from 1) when the field is a collection.
        problem: String,
    },
}

impl Metadata {
    /// Reads a `metadata.config`.
    pub fn parse(config: &[u8]) -> Result<Metadata, MetadataError> {
        let forms = parse_terms(config)?;
        // Last wins for duplicate keys, as with `hex_core`'s `maps:from_list/1`; the surviving
        // entry keeps the position of its last occurrence.
        let mut entries: Vec<Option<(String, Term, Term)>> = Vec::with_capacity(forms.len());
        let mut positions: HashMap<String, usize> = HashMap::new();
        for (i, form) in forms.into_iter().enumerate() {
            let not_key_value = MetadataError::NotKeyValue { index: i + 1 };
            let Term::Tuple(pair) = form else {
                return Err(not_key_value);
            };
            let Ok([key, value]) = <[Term; 2]>::try_from(pair) else {
                return Err(not_key_value);
            };
            let Some(name) = key_text(&key) else {
                return Err(not_key_value);
            };
            if let Some(old) = positions.insert(name.clone(), entries.len()) {
                entries[old] = None;
            }
            entries.push(Some((name, key, value)));
        }

        let mut meta = Metadata::default();
        let (mut name, mut version) = (None, None);
        for (key, key_term, value) in entries.into_iter().flatten() {
            let value = &value;
            match key.as_str() {
                "name" => name = Some(text(value, "name")?),
                "version" => version = Some(text(value, "version")?),
                "app" => meta.app = optional_text(value, "app")?,
                "description" => meta.description = optional_text(value, "description")?,
                "elixir" => meta.elixir = optional_text(value, "elixir")?,
                "files" => meta.files = text_list(value, "files")?,
                "licenses" => meta.licenses = text_list(value, "licenses")?,
                "build_tools" => meta.build_tools = text_list(value, "build_tools")?,
                "maintainers" => meta.maintainers = text_list(value, "maintainers")?,
                "links" => meta.links = links(value)?,
                "requirements" => meta.requirements = requirements(value)?,
                _ => meta.extra.push((key_term, value.clone())),
            }
        }
        meta.name = name.ok_or(MetadataError::Missing { field: "name" })?;
        meta.version = version.ok_or(MetadataError::Missing { field: "version" })?;
        Ok(meta)
    }

    /// Writes the `metadata.config` `hex_core` would write: one `{<<"key">>,Value}.` line per
    /// key, keys sorted, text as binaries, `requirements` in the map/kvlist form and `links`
    /// as a kvlist. `app`, `description` and `elixir` are left out when `None`, `build_tools`
    /// and `maintainers` when empty, and `extra` entries whose key names a typed field are
    /// skipped (the typed field wins). A requirement of `None` is written as the atom `nil`.
    pub fn to_config(&self) -> Vec<u8> {
        let text_list =
            |items: &[String]| Term::List(items.iter().map(|s| Term::binary(s)).collect());
        let mut entries: Vec<(String, Term, Term)> = Vec::new();
        let mut add = |key: &str, value: Term| {
            entries.push((key.to_owned(), Term::binary(key), value));
        };
        add("name", Term::binary(&self.name));
        add("version", Term::binary(&self.version));
        add("files", text_list(&self.files));
        add("licenses", text_list(&self.licenses));
        add(
            "requirements",
            Term::List(self.requirements.iter().map(requirement_term).collect()),
        );
        let links = self.links.iter();
        add(
            "links",
            Term::List(
                links
                    .map(|(k, v)| pair(Term::binary(k), Term::binary(v)))
                    .collect(),
            ),
        );
        for (key, value) in [
            ("app", &self.app),
            ("description", &self.description),
            ("elixir", &self.elixir),
        ] {
            if let Some(value) = value {
                add(key, Term::binary(value));
            }
        }
        for (key, value) in [
            ("build_tools", &self.build_tools),
            ("maintainers", &self.maintainers),
        ] {
            if !value.is_empty() {
                add(key, text_list(value));
            }
        }
        for (key, value) in &self.extra {
            let sort_key = key_text(key).unwrap_or_else(|| key.to_string());
            if !KNOWN_KEYS.contains(&sort_key.as_str()) {
                entries.push((sort_key, key.clone(), value.clone()));
            }
        }
        // Stable, so extra entries with equal keys keep their order (the last still wins).
        entries.sort_by(|a, b| a.0.cmp(&b.0));

        let mut out = String::new();
        for (_, key, value) in entries {
            write_term(&pair(key, value), &mut out);
            out.push_str(".\n");
        }
        out.into_bytes()
    }
}

fn pair(key: Term, value: Term) -> Term {
    Term::Tuple(vec![key, value])
}

fn requirement_term(req: &MetadataRequirement) -> Term {
    let mut fields = Vec::new();
    if let Some(app) = &req.app {
        fields.push(pair(Term::binary("app"), Term::binary(app)));
    }
    let optional = Term::atom(if req.optional { "true" } else { "false" });
    fields.push(pair(Term::binary("optional"), optional));
    if let Some(repository) = &req.repository {
        fields.push(pair(Term::binary("repository"), Term::binary(repository)));
    }
    let requirement = req
        .requirement
        .as_deref()
        .map_or_else(|| Term::atom("nil"), Term::binary);
    fields.push(pair(Term::binary("requirement"), requirement));
    pair(Term::binary(&req.name), Term::List(fields))
}

/// A key as `hex_core` compares it: a binary or a string (char lists included).
fn key_text(key: &Term) -> Option<String> {
    match key {
        Term::Binary(_) | Term::String(_) | Term::List(_) => key.to_text().map(Cow::into_owned),
        _ => None,
    }
}

/// `MetadataError::Invalid` for `field`, with a `format!`ted problem.
macro_rules! invalid {
    ($field:expr, $($problem:tt)+) => {
        MetadataError::Invalid { field: $field, problem: format!($($problem)+) }
    };
}

fn text(value: &Term, field: &'static str) -> Result<String, MetadataError> {
    match value.to_text() {
        Some(text) => Ok(text.into_owned()),
        None => Err(invalid!(field, "expected text, found {}", value.kind())),
    }
}

/// Text, or `None` for the atom `nil` (how Elixir's `nil` reaches a term file).
fn optional_text(value: &Term, field: &'static str) -> Result<Option<String>, MetadataError> {
    match value.as_atom() {
        Some("nil") => Ok(None),
        _ => text(value, field).map(Some),
    }
}

fn text_list(value: &Term, field: &'static str) -> Result<Vec<String>, MetadataError> {
    let items = value
        .as_list()
        .ok_or_else(|| invalid!(field, "expected a list, found {}", value.kind()))?;
    let entry = |(i, item): (usize, &Term)| {
        item.to_text()
            .map(Cow::into_owned)
            .ok_or_else(|| invalid!(field, "entry {} is {}, not text", i + 1, item.kind()))
    };
    items.iter().enumerate().map(entry).collect()
}

fn key_values<'a>(
    value: &'a Term,
    field: &'static str,
) -> Result<Vec<(&'a Term, &'a Term)>, MetadataError> {
    value.as_key_values().ok_or_else(|| {
        invalid!(
            field,
            "expected a map or key/value list, found {}",
            value.kind()
        )
    })
}

fn links(value: &Term) -> Result<Vec<(String, String)>, MetadataError> {
    let pairs = key_values(value, "links")?;
    let entry = |(i, (k, v)): (usize, (&Term, &Term))| match (k.to_text(), v.to_text()) {
        (Some(k), Some(v)) => Ok((k.into_owned(), v.into_owned())),
        _ => Err(invalid!("links", "entry {} is not a pair of text", i + 1)),
    };
    pairs.into_iter().enumerate().map(entry).collect()
}

/// Reads both shapes (§3.5): `[{Name, Fields}]`/`#{Name => Fields}`, or `[Fields]` where each
/// `Fields` holds a `name` (what mix writes). `hex_core` tells them apart by whether the first
/// element is a list; a map there is accepted too.
fn requirements(value: &Term) -> Result<Vec<MetadataRequirement>, MetadataError> {
    const FIELD: &str = "requirements";
    let proplists = match value {
        Term::List(items) => matches!(items.first(), Some(Term::List(_) | Term::Map(_))),
        _ => false,
    };
    let mut result = Vec::new();
    if proplists {
        for (i, entry) in value.as_list().unwrap_or_default().iter().enumerate() {
            let n = i + 1;
            let fields = entry.as_key_values().ok_or_else(|| {
                invalid!(
                    FIELD,
                    "entry {n} is {}, not a map or key/value list",
                    entry.kind()
                )
            })?;
            let name = lookup(&fields, "name")
                .ok_or_else(|| invalid!(FIELD, "entry {n} has no \"name\""))?;
            let name = name
                .to_text()
                .ok_or_else(|| invalid!(FIELD, "entry {n}: \"name\" is not text"))?;
            result.push(requirement(n, name.into_owned(), &fields)?);
        }
    } else {
        for (i, (name, fields)) in key_values(value, FIELD)?.into_iter().enumerate() {
            let n = i + 1;
            let name = name.to_text().ok_or_else(|| {
                invalid!(FIELD, "entry {n}: the name is {}, not text", name.kind())
            })?;
            let fields = fields.as_key_values().ok_or_else(|| {
                invalid!(
                    FIELD,
                    "entry {n} (\"{name}\") is not a map or key/value list"
                )
            })?;
            result.push(requirement(n, name.into_owned(), &fields)?);
        }
    }
    Ok(result)
}

/// The value of the last field named `key`, as `maps:from_list/1` would keep.
fn lookup<'a>(fields: &[(&'a Term, &'a Term)], key: &str) -> Option<&'a Term> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k.to_text().as_deref() == Some(key))
        .map(|(_, v)| *v)
}

fn requirement(
    n: usize,
    name: String,
    fields: &[(&Term, &Term)],
) -> Result<MetadataRequirement, MetadataError> {
    let optional_field = |key: &str| match lookup(fields, key) {
        None => Ok(None),
        Some(value) if value.as_atom() == Some("nil") => Ok(None),
        Some(value) => match value.to_text() {
            Some(text) => Ok(Some(text.into_owned())),
            None => Err(invalid!(
                "requirements",
                "entry {n}: \"{key}\" is {}, not text",
                value.kind()
            )),
        },
    };
    if lookup(fields, "requirement").is_none() {
        return Err(invalid!("requirements", "entry {n} has no \"requirement\""));
    }
    Ok(MetadataRequirement {
        app: optional_field("app")?,
        requirement: optional_field("requirement")?,
        optional: lookup(fields, "optional").and_then(Term::as_bool) == Some(true),
        repository: optional_field("repository")?,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    const ACME_WEB: &[u8] = include_bytes!("../tests/data/metadata/acme_web-0.1.0.config");
    const ACME_CORE_RC: &[u8] =
        include_bytes!("../tests/data/metadata/acme_core-1.1.0-rc.1.config");
    const PKG_00002: &[u8] = include_bytes!("../tests/data/metadata/pkg_00002-0.2.0.config");
    const KV_PKG: &[u8] = include_bytes!("../tests/data/metadata/kv_pkg-1.2.3.config");
    const FIXTURES: &[&[u8]] = &[ACME_WEB, ACME_CORE_RC, PKG_00002, KV_PKG];

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn req(
        name: &str,
        app: Option<&str>,
        requirement: &str,
        optional: bool,
        repository: Option<&str>,
    ) -> MetadataRequirement {
        MetadataRequirement {
            name: name.to_owned(),
            app: app.map(str::to_owned),
            requirement: Some(requirement.to_owned()),
            optional,
            repository: repository.map(str::to_owned),
        }
    }

    fn parse_err(config: &str) -> String {
        match Metadata::parse(config.as_bytes()) {
            Ok(meta) => panic!("{config} parsed as {meta:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn reads_mix_metadata_with_proplist_requirements() {
        let meta = Metadata::parse(ACME_WEB).unwrap();
        let expected = Metadata {
            name: "acme_web".into(),
            version: "0.1.0".into(),
            app: Some("acme_web".into()),
            description: Some("Sample web package depending on acme_core".into()),
            files: strings(&["lib", "lib/acme_web.ex", "mix.exs"]),
            licenses: strings(&["MIT"]),
            links: vec![("Docs".into(), "https://example.com/acme_web".into())],
            requirements: vec![
                req(
                    "acme_core",
                    Some("acme_core"),
                    "~> 1.0",
                    false,
                    Some("acme"),
                ),
                req("decimal", Some("decimal"), "~> 2.0", true, Some("hexpm")),
            ],
            build_tools: strings(&["mix"]),
            elixir: Some("~> 1.11".into()),
            maintainers: vec![],
            extra: vec![],
        };
        assert_eq!(meta, expected);

        let rc = Metadata::parse(ACME_CORE_RC).unwrap();
        assert_eq!(
            (rc.name.as_str(), rc.version.as_str()),
            ("acme_core", "1.1.0-rc.1")
        );
        assert!(rc.requirements.is_empty());
        assert_eq!(rc.licenses, strings(&["Apache-2.0"]));
    }

    #[test]
    fn reads_hex_core_metadata_in_both_requirement_shapes() {
        let meta = Metadata::parse(PKG_00002).unwrap();
        assert_eq!(
            meta.requirements,
            vec![req("pkg_00001", Some("pkg_00001"), ">= 0.0.0", false, None)]
        );
        assert_eq!(meta.elixir, None);

        let kv = Metadata::parse(KV_PKG).unwrap();
        assert_eq!(kv.name, "kv_pkg");
        assert_eq!(
            kv.description.as_deref(),
            Some("Ünïcødé description — with “quotes” and \"escapes\"\n"),
        );
        assert_eq!(kv.maintainers, strings(&["José Valim"]));
        assert_eq!(kv.build_tools, strings(&["rebar3"]));
        assert_eq!(kv.licenses, strings(&["MIT", "Apache-2.0"]));
        assert_eq!(
            kv.links,
            vec![
                ("Docs".into(), "https://example.com/docs".into()),
                ("GitHub".into(), "https://example.com/kv".into()),
            ],
        );
        assert_eq!(
            kv.requirements,
            vec![
                req("cf", Some("cf"), "~> 0.3", false, Some("hexpm")),
                req("opt_dep", Some("opt_app"), ">= 1.0.0", true, None),
            ],
        );
        let extra =
            crate::term::parse_terms(br#"[{<<"flag">>,true},{<<"nested">>,[{<<"k">>,[1,2,3]}]}]."#)
                .unwrap();
        assert_eq!(kv.extra, vec![(Term::binary("extra"), extra[0].clone())]);
    }

    #[test]
    fn writes_what_mix_writes_for_packages_without_requirements() {
        // mix writes every key on one line when it fits, as `to_config` always does.
        let meta = Metadata::parse(ACME_CORE_RC).unwrap();
        assert_eq!(
            String::from_utf8(meta.to_config()).unwrap(),
            String::from_utf8(ACME_CORE_RC.to_vec()).unwrap()
        );
    }

    #[test]
    fn writes_requirements_in_the_kvlist_form() {
        let meta = Metadata::parse(ACME_WEB).unwrap();
        let config = String::from_utf8(meta.to_config()).unwrap();
        let line = config
            .lines()
            .find(|l| l.starts_with("{<<\"requirements\">>"))
            .unwrap();
        assert_eq!(
            line,
            concat!(
                r#"{<<"requirements">>,[{<<"acme_core">>,[{<<"app">>,<<"acme_core">>},{<<"optional">>,false},"#,
                r#"{<<"repository">>,<<"acme">>},{<<"requirement">>,<<"~> 1.0">>}]},"#,
                r#"{<<"decimal">>,[{<<"app">>,<<"decimal">>},{<<"optional">>,true},"#,
                r#"{<<"repository">>,<<"hexpm">>},{<<"requirement">>,<<"~> 2.0">>}]}]}."#,
            ),
        );
        let keys: Vec<&str> = config
            .lines()
            .map(|l| l.split('"').nth(1).unwrap_or(""))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn every_fixture_round_trips() {
        for fixture in FIXTURES {
            let meta = Metadata::parse(fixture).unwrap();
            assert_eq!(Metadata::parse(&meta.to_config()).unwrap(), meta);
        }
    }

    #[test]
    fn reads_maps_strings_and_char_lists() {
        let config = r#"
            {"name", "foo"}.
            {<<"version">>, [49,46,48,46,48]}.
            {<<"links">>, #{<<"GitHub">> => "https://x"}}.
            {<<"files">>, []}.
            {<<"app">>, nil}.
            {<<"requirements">>, #{<<"bar">> => #{<<"requirement">> => <<"~> 1.0">>, <<"optional">> => <<"true">>},
                                   "baz" => [{<<"requirement">>, nil}, {<<"optional">>, true}, {<<"app">>, "b"}]}}.
        "#;
        let meta = Metadata::parse(config.as_bytes()).unwrap();
        assert_eq!(
            (meta.name.as_str(), meta.version.as_str(), meta.app),
            ("foo", "1.0.0", None)
        );
        assert_eq!(meta.links, vec![("GitHub".into(), "https://x".into())]);
        let baz = MetadataRequirement {
            requirement: None,
            ..req("baz", Some("b"), "", true, None)
        };
        assert_eq!(
            meta.requirements,
            vec![req("bar", None, "~> 1.0", false, None), baz]
        );

        let maps_in_list = r#"{<<"name">>,<<"a">>}. {<<"version">>,<<"1.0.0">>}.
            {<<"requirements">>, [#{<<"name">> => <<"x">>, <<"requirement">> => <<">= 0.0.0">>}]}."#;
        let meta = Metadata::parse(maps_in_list.as_bytes()).unwrap();
        assert_eq!(
            meta.requirements,
            vec![req("x", None, ">= 0.0.0", false, None)]
        );
    }

    #[test]
    fn last_duplicate_key_wins() {
        let config = r#"{<<"name">>,<<"first">>}. {<<"extra">>,1}. {<<"version">>,<<"1.0.0">>}.
            {<<"name">>,<<"second">>}. {<<"secret_scan">>,[]}. {<<"extra">>,2}."#;
        let meta = Metadata::parse(config.as_bytes()).unwrap();
        assert_eq!(meta.name, "second");
        let expected = vec![
            (Term::binary("secret_scan"), Term::List(vec![])),
            (Term::binary("extra"), Term::Integer(2)),
        ];
        assert_eq!(meta.extra, expected);
        // An invalid value that a later one replaces is never looked at.
        let replaced = r#"{<<"name">>,1}. {<<"name">>,<<"a">>}. {<<"version">>,<<"1.0.0">>}."#;
        assert_eq!(Metadata::parse(replaced.as_bytes()).unwrap().name, "a");
    }

    #[test]
    fn missing_requirements_are_empty() {
        let meta =
            Metadata::parse(br#"{<<"name">>,<<"a">>}. {<<"version">>,<<"1.0.0">>}."#).unwrap();
        assert_eq!(
            meta,
            Metadata {
                name: "a".into(),
                version: "1.0.0".into(),
                ..Metadata::default()
            }
        );
    }

    #[test]
    fn errors_name_the_form_or_field() {
        const BASE: &str = r#"{<<"name">>,<<"a">>}. {<<"version">>,<<"1.0.0">>}. "#;
        let cases = [
            (
                "{<<\"name\">>,<<\"a\">>,x}.",
                "metadata.config term 1 is not a {Key, Value} pair with a text key",
            ),
            (
                "{<<\"name\">>,<<\"a\">>}. foo.",
                "metadata.config term 2 is not a {Key, Value} pair",
            ),
            ("{name, <<\"a\">>}.", "term 1 is not a {Key, Value} pair"),
            (
                "{<<\"version\">>,<<\"1.0.0\">>}.",
                "metadata field \"name\" is missing",
            ),
            (
                "{<<\"name\">>,<<\"a\">>}.",
                "metadata field \"version\" is missing",
            ),
            (
                "{<<\"name\">>,42}.",
                "metadata field \"name\": expected text, found integer",
            ),
            (
                "{<<\"name\">>,1.0}.",
                "metadata.config is not a valid term file",
            ),
        ];
        for (config, message) in cases {
            let error = parse_err(config);
            assert!(
                error.contains(message),
                "{config}: {error:?} lacks {message:?}"
            );
        }
        let field_cases = [
            (
                r#"{<<"requirements">>, [{<<"a">>, [{<<"requirement">>, <<"1">>}]}, {<<"b">>, [{<<"app">>, <<"b">>}]}]}."#,
                r#"metadata field "requirements": entry 2 has no "requirement""#,
            ),
            (
                r#"{<<"requirements">>, [[{<<"requirement">>, <<"1">>}]]}."#,
                r#"metadata field "requirements": entry 1 has no "name""#,
            ),
            (
                r#"{<<"requirements">>, [[{<<"name">>, <<"a">>}, {<<"requirement">>, 1}]]}."#,
                r#"metadata field "requirements": entry 1: "requirement" is integer, not text"#,
            ),
            (
                r#"{<<"requirements">>, [[{<<"name">>, <<"a">>}, {<<"requirement">>, <<"1">>}], x]}."#,
                r#"metadata field "requirements": entry 2 is atom, not a map or key/value list"#,
            ),
            (
                r#"{<<"requirements">>, [{<<"a">>, x}]}."#,
                r#"metadata field "requirements": entry 1 ("a") is not a map or key/value list"#,
            ),
            (
                r#"{<<"requirements">>, <<"x">>}."#,
                r#"metadata field "requirements": expected a map or key/value list, found binary"#,
            ),
            (
                r#"{<<"files">>, [<<"a">>, x]}."#,
                r#"metadata field "files": entry 2 is atom, not text"#,
            ),
            (
                r#"{<<"licenses">>, <<"MIT">>}."#,
                r#"metadata field "licenses": expected a list, found binary"#,
            ),
            (
                r#"{<<"links">>, [{<<"a">>, 1}]}."#,
                r#"metadata field "links": entry 1 is not a pair of text"#,
            ),
        ];
        for (config, message) in field_cases {
            assert_eq!(parse_err(&format!("{BASE}{config}")), message);
        }
        let Err(MetadataError::Terms(source)) = Metadata::parse(b"{<<\"name\">>,\n1.0}.") else {
            panic!()
        };
        assert_eq!(
            source.to_string(),
            "line 2: floats are not allowed in a term file"
        );
    }

    #[test]
    fn reads_latin1_metadata() {
        let config = b"{<<\"name\">>,<<\"a\">>}.\n{<<\"version\">>,<<\"1.0.0\">>}.\n\
            {<<\"description\">>,<<\"Caf\xe9\">>}.\n{<<\"maintainers\">>,[\"Jos\xe9\"]}.\n";
        let meta = Metadata::parse(config).unwrap();
        assert_eq!(meta.description.as_deref(), Some("Café"));
        assert_eq!(meta.maintainers, strings(&["José"]));
    }

    #[test]
    fn to_config_omits_empty_optional_keys_and_shadowed_extras() {
        let meta = Metadata {
            name: "a".into(),
            version: "1.0.0".into(),
            requirements: vec![MetadataRequirement {
                requirement: None,
                ..req("b", None, "", false, None)
            }],
            extra: vec![
                (Term::binary("name"), Term::binary("shadowed")),
                (Term::binary("zz"), Term::atom("ok")),
            ],
            ..Metadata::default()
        };
        let config = String::from_utf8(meta.to_config()).unwrap();
        let expected = concat!(
            "{<<\"files\">>,[]}.\n",
            "{<<\"licenses\">>,[]}.\n",
            "{<<\"links\">>,[]}.\n",
            "{<<\"name\">>,<<\"a\">>}.\n",
            "{<<\"requirements\">>,[{<<\"b\">>,[{<<\"optional\">>,false},{<<\"requirement\">>,nil}]}]}.\n",
            "{<<\"version\">>,<<\"1.0.0\">>}.\n",
            "{<<\"zz\">>,ok}.\n",
        );
        assert_eq!(config, expected);
        let back = Metadata::parse(config.as_bytes()).unwrap();
        assert_eq!(
            back,
            Metadata {
                extra: vec![(Term::binary("zz"), Term::atom("ok"))],
                ..meta
            }
        );
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,10}",
            "[a-z0-9_.~>= -]{1,10}",
            proptest::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter),
        ]
    }

    fn arb_requirement() -> impl Strategy<Value = MetadataRequirement> {
        let text = arb_text;
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of(text()),
        )
            .prop_map(|(name, app, requirement, optional, repository)| {
                MetadataRequirement {
                    name,
                    app,
                    requirement,
                    optional,
                    repository,
                }
            })
    }

    fn arb_metadata() -> impl Strategy<Value = Metadata> {
        let text = arb_text;
        let texts = || proptest::collection::vec(arb_text(), 0..3);
        let extra =
            proptest::collection::btree_map("x[a-z_]{0,6}", crate::term::tests::arb_term(), 0..3);
        (
            (
                text(),
                text(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
            ),
            (
                texts(),
                texts(),
                proptest::collection::vec((text(), text()), 0..3),
                texts(),
                texts(),
            ),
            (proptest::collection::vec(arb_requirement(), 0..3), extra),
        )
            .prop_map(
                |(
                    (name, version, app, description, elixir),
                    (files, licenses, links, build_tools, maintainers),
                    (requirements, extra),
                )| Metadata {
                    name,
                    version,
                    app,
                    description,
                    files,
                    licenses,
                    links,
                    requirements,
                    build_tools,
                    elixir,
                    maintainers,
                    extra: extra
                        .into_iter()
                        .map(|(k, v)| (Term::binary(&k), v))
                        .collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn metadata_round_trips(meta in arb_metadata()) {
            let config = meta.to_config();
            prop_assert_eq!(Metadata::parse(&config).map_err(|e| e.to_string()), Ok(meta));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Metadata::parse(&bytes);
        }
    }

    /// Metadata that stresses the writer: quotes, backslashes, control and non-ASCII
    /// characters, atoms that need quoting, integers at the edges of `i128`.
    fn tricky_metadata() -> Metadata {
        let extra = br#"{[true, false, nil, 'fun', 'Var', 'with space', 'it\'s', '\n', 'maybe'],
            -170141183460469231731687303715884105728, 170141183460469231731687303715884105727,
            <<0,255,128>>, "a string", "", #{<<"k">> => [1,2], {t} => #{}}, {}, []}."#;
        Metadata {
            name: "tricky".into(),
            version: "1.0.0-rc.1+build".into(),
            app: Some(String::new()),
            description: Some(
                "quotes \" ' \\ \\\" % . \n\t\r\x00\x1b\x7f\u{85}\u{a0} é 😀 \u{2028} \\".into(),
            ),
            files: strings(&["lib/a b.ex", "priv/\u{1F600}.txt", "", "C:\\dir\\"]),
            licenses: strings(&["MIT", "LicenseRef-Ünïcødé"]),
            links: vec![("Git\"Hub".into(), "https://example.com/?a=1&b=<<2>>".into())],
            requirements: vec![
                req(
                    "a",
                    Some("a_app"),
                    "~> 1.0 or >= 2.0.0-rc.0",
                    true,
                    Some("hexpm:acme"),
                ),
                MetadataRequirement {
                    requirement: None,
                    ..req("b", None, "", false, None)
                },
            ],
            build_tools: strings(&["mix", "rebar3"]),
            elixir: Some("~> 1.14".into()),
            maintainers: strings(&["José", "Zoë \u{1F600}"]),
            extra: vec![(
                Term::binary("extra"),
                crate::term::parse_terms(extra).unwrap().remove(0),
            )],
        }
    }

    /// Has Erlang `file:consult/1` each config and returns what it read, printed with `~w`.
    /// Each config also goes through `hex_core`'s own lexer when rebar3 (which bundles it) is
    /// installed; only `erl` is required.
    fn consult_with_erlang(configs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "hexfmt-metadata-erl-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            std::fs::write(dir.join(format!("{i}.config")), config).unwrap();
            args.extend([
                dir.join(format!("{i}.config")),
                dir.join(format!("{i}.out")),
            ]);
        }
        let script = r#"
            HexCore = case os:find_executable("rebar3") of
                false -> "rebar3 not found";
                Rebar3 -> try
                    {ok, Sections} = escript:extract(Rebar3, []),
                    {archive, Zip} = lists:keyfind(archive, 1, Sections),
                    IsLexer = fun(F) -> lists:suffix("/r3_safe_erl_term.beam", element(2, F)) end,
                    {ok, [{_, Beam}]} = zip:extract(Zip, [memory, {file_filter, IsLexer}]),
                    {module, _} = code:load_binary(r3_safe_erl_term, "r3_safe_erl_term.erl", Beam),
                    true
                catch Class:Reason -> io_lib:format("~p:~p", [Class, Reason])
                end
            end,
            Check = fun([In, Out | Rest], Self) ->
                {ok, Terms} = file:consult(In),
                ok = file:write_file(Out, unicode:characters_to_binary(io_lib:format("~w.~n", [Terms]))),
                HexCore =:= true andalso begin
                    {ok, Bytes} = file:read_file(In),
                    {In, {ok, Tokens, _}} =
                        {In, r3_safe_erl_term:string(unicode:characters_to_list(Bytes))},
                    {In, Terms} = {In, r3_safe_erl_term:terms(Tokens)}
                end,
                Self(Rest, Self);
              ([], _) -> ok
            end,
            Check(init:get_plain_arguments(), Check),
            io:format("hex_core lexer used: ~s~n", [case HexCore of true -> "yes"; Why -> Why end]),
            halt()."#;
        let output = std::process::Command::new("erl")
            .args(["-noshell", "-eval", script, "-extra"])
            .args(&args)
            .current_dir(&dir)
            .env("ERL_CRASH_DUMP_SECONDS", "0")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run erl ({e}); this test needs Erlang: apt-get install -y erlang")
            });
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert!(
            output.status.success(),
            "erl failed on the configs in {}:\n{stdout}{stderr}",
            dir.display()
        );
        eprintln!("{stdout}");
        let printed = (0..configs.len())
            .map(|i| std::fs::read(dir.join(format!("{i}.out"))).unwrap())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        printed
    }

    /// Erlang is the oracle: `file:consult/1` must read what `to_config` writes as the same
    /// terms. Erlang prints them back with `~w`, which this crate's parser then reads.
    #[test]
    fn erlang_reads_what_to_config_writes() {
        let mut configs: Vec<Vec<u8>> = FIXTURES
            .iter()
            .map(|f| Metadata::parse(f).unwrap().to_config())
            .collect();
        configs.push(tricky_metadata().to_config());
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..20 {
            configs.push(
                arb_metadata()
                    .new_tree(&mut runner)
                    .unwrap()
                    .current()
                    .to_config(),
            );
        }
        for (i, (config, printed)) in configs
            .iter()
            .zip(consult_with_erlang(&configs))
            .enumerate()
        {
            let ours = Term::List(crate::term::parse_terms(config).unwrap());
            let erlangs = crate::term::parse_terms(&printed).unwrap().remove(0);
            let config = String::from_utf8_lossy(config);
            assert_eq!(
                normalize(&erlangs),
                normalize(&ours),
                "config {i}:\n{config}"
            );
        }
        // The tricky text also survives the trip back into `Metadata`.
        assert_eq!(
            Metadata::parse(&tricky_metadata().to_config()).unwrap(),
            tricky_metadata()
        );
    }

    /// What Erlang itself can tell apart: strings are lists of codes, and maps have unique
    /// keys (the last wins) in term order; sorted here by their written form instead.
    fn normalize(term: &Term) -> Term {
        match term {
            Term::String(text) => Term::List(
                text.chars()
                    .map(|c| Term::Integer(u32::from(c).into()))
                    .collect(),
            ),
            Term::List(items) => Term::List(items.iter().map(normalize).collect()),
            Term::Tuple(items) => Term::Tuple(items.iter().map(normalize).collect()),
            Term::Map(pairs) => {
                let mut unique = std::collections::BTreeMap::new();
                for (key, value) in pairs {
                    let key = normalize(key);
                    unique.insert(key.to_string(), (key, normalize(value)));
                }
                Term::Map(unique.into_values().collect())
            }
            other => other.clone(),
        }
    }
}
