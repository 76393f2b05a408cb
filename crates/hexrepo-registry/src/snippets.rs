//! The dependency lines a user pastes to depend on a release (`configs` in the Hex API's
//! package and release bodies, HEX-PROTOCOL.md §6.4), written as hex.pm writes them
//! (hexpm's `PackageView.dep_snippet`), except that a package of any repository other than
//! `hexpm` names its repository with `repo:`, the option mix understands for a repository added
//! with `mix hex.repo add` (hex.pm's `organization:` only reaches `hexpm:NAME` repositories).

use hexfmt::version::Version;

/// The `mix.exs`, `rebar.config` and `erlang.mk` lines for `version` of package `name`, whose
/// OTP application is `app`, in `repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippets {
    /// `{:foo, "~> 1.0", repo: "acme"}`.
    pub mix: String,
    /// `{foo, "1.0.0"}`.
    pub rebar: String,
    /// `dep_foo = hex 1.0.0`.
    pub erlang_mk: String,
}

impl Snippets {
    /// The lines for one release.
    pub fn new(repository: &str, name: &str, app: Option<&str>, version: &Version) -> Snippets {
        let app = app.unwrap_or(name);
        let exact = exact(version);
        let mix_requirement = if !version.pre().is_empty() {
            format!("~> {exact}")
        } else if version.major() == 0 {
            format!("~> 0.{}.{}", version.minor(), version.patch())
        } else {
            format!("~> {}.{}", version.major(), version.minor())
        };
        let repo = if repository == "hexpm" {
            String::new()
        } else {
            format!(", repo: {}", elixir_string(repository))
        };
        let mix = if app == name {
            format!("{{:{name}, \"{mix_requirement}\"{repo}}}")
        } else {
            format!(
                "{{{}, \"{mix_requirement}\", hex: :{name}{repo}}}",
                elixir_atom(app)
            )
        };
        let rebar = if app == name {
            format!("{{{name}, \"{exact}\"}}")
        } else {
            format!("{{{}, \"{exact}\", {{pkg, {name}}}}}", erlang_atom(app))
        };
        Snippets {
            mix,
            rebar,
            erlang_mk: format!("dep_{name} = hex {exact}"),
        }
    }
}

/// The version without build metadata (which published versions never carry).
fn exact(version: &Version) -> String {
    let text = version.to_string();
    match text.split_once('+') {
        Some((exact, _)) => exact.to_owned(),
        None => text,
    }
}

fn elixir_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `:app`, or `:"app-name"` when the name is not a bare Elixir atom.
fn elixir_atom(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        format!(":{name}")
    } else {
        format!(":{}", elixir_string(name))
    }
}

/// `app`, or `'app-name'` when the name is not a bare Erlang atom.
fn erlang_atom(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        name.to_owned()
    } else {
        format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippets(repository: &str, name: &str, app: Option<&str>, version: &str) -> Snippets {
        Snippets::new(repository, name, app, &Version::parse(version).unwrap())
    }

    #[test]
    fn lines_follow_hex_pm_and_name_a_private_repository() {
        let s = snippets("acme", "foo", None, "1.2.3");
        assert_eq!(s.mix, r#"{:foo, "~> 1.2", repo: "acme"}"#);
        assert_eq!(s.rebar, r#"{foo, "1.2.3"}"#);
        assert_eq!(s.erlang_mk, "dep_foo = hex 1.2.3");
        assert_eq!(
            snippets("hexpm", "foo", None, "0.4.1").mix,
            r#"{:foo, "~> 0.4.1"}"#
        );
        let pre = snippets("acme", "foo", None, "2.0.0-rc.1");
        assert_eq!(pre.mix, r#"{:foo, "~> 2.0.0-rc.1", repo: "acme"}"#);
        assert_eq!(pre.rebar, r#"{foo, "2.0.0-rc.1"}"#);
        let renamed = snippets("acme", "foo_ex", Some("Foo"), "1.0.0");
        assert_eq!(
            renamed.mix,
            r#"{:Foo, "~> 1.0", hex: :foo_ex, repo: "acme"}"#
        );
        assert_eq!(renamed.rebar, r#"{'Foo', "1.0.0", {pkg, foo_ex}}"#);
    }
}
