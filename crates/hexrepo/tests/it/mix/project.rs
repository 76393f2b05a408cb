//! Mix projects made by mix itself (`mix new`), with a `mix.exs` the test writes: packages
//! whose code calls their dependencies' (`chain/0`), so compiling and running a project
//! proves every package in the chain was fetched and built.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::client::Mix;

/// A dependency line of `mix.exs`.
#[derive(Debug, Clone)]
pub struct Dep {
    name: String,
    requirement: String,
    repo: Option<String>,
    optional: bool,
}

impl Dep {
    /// `{:NAME, "REQUIREMENT", repo: "REPO"}`.
    pub fn new(name: &str, requirement: &str, repo: &str) -> Dep {
        Dep {
            name: name.to_owned(),
            requirement: requirement.to_owned(),
            repo: Some(repo.to_owned()),
            optional: false,
        }
    }

    /// `{:NAME, "REQUIREMENT"}`: from `hexpm` (or whatever `HEX_MIRROR` points at).
    pub fn hexpm(name: &str, requirement: &str) -> Dep {
        Dep {
            name: name.to_owned(),
            requirement: requirement.to_owned(),
            repo: None,
            optional: false,
        }
    }

    /// The same dependency, `optional: true`.
    pub fn optional(mut self) -> Dep {
        self.optional = true;
        self
    }

    fn line(&self) -> String {
        let mut line = format!("{{:{}, {:?}", self.name, self.requirement);
        if let Some(repo) = &self.repo {
            let _ = write!(line, ", repo: {repo:?}");
        }
        if self.optional {
            line.push_str(", optional: true");
        }
        line.push('}');
        line
    }
}

/// A mix project in its own folder.
pub struct Project {
    dir: PathBuf,
    name: String,
    version: String,
    has_deps: bool,
}

impl Project {
    /// `mix new NAME` under `parent`, then a `mix.exs` for version `version` with `deps` and
    /// the package metadata `mix hex.build` needs; `lib/NAME.ex` defines `chain/0`, which lists
    /// this package and then the `chain/0` of each required (non-optional) dependency.
    pub fn new(mix: &Mix, parent: &Path, name: &str, version: &str, deps: &[Dep]) -> Project {
        let dir = parent.join(name);
        fs::create_dir_all(parent).expect("create the project's parent folder");
        mix.ok(parent, &["new", name]);
        let module = module_name(name);
        let lines: Vec<String> = deps.iter().map(Dep::line).collect();
        let mix_exs = format!(
            r#"defmodule {module}.MixProject do
  use Mix.Project

  def project do
    [
      app: :{name},
      version: "{version}",
      elixir: "~> 1.14",
      deps: deps(),
      description: "The {name} package, made by mix for hexrepo's tests",
      package: [
        licenses: ["Apache-2.0"],
        links: %{{"Source" => "https://example.invalid/{name}"}}
      ]
    ]
  end

  def application, do: [extra_applications: [:logger]]

  defp deps do
    [
      {deps}
    ]
  end
end
"#,
            deps = lines.join(",\n      ")
        );
        fs::write(dir.join("mix.exs"), mix_exs).expect("write mix.exs");
        let calls: Vec<String> = deps
            .iter()
            .filter(|d| !d.optional)
            .map(|d| format!("{}.chain()", module_name(&d.name)))
            .collect();
        let chain = if calls.is_empty() {
            format!("[:{name}]")
        } else {
            format!("[:{name} | Enum.concat([{}])]", calls.join(", "))
        };
        fs::write(
            dir.join("lib").join(format!("{name}.ex")),
            format!(
                "defmodule {module} do\n  @moduledoc \"{name} for hexrepo's tests\"\n\n  \
                 @doc \"This package, then its dependencies.\"\n  def chain, do: {chain}\nend\n"
            ),
        )
        .expect("write lib");
        Project {
            dir,
            name: name.to_owned(),
            version: version.to_owned(),
            has_deps: !deps.is_empty(),
        }
    }

    /// Whether `mix.exs` lists dependencies (`mix hex.publish` wants them fetched first).
    pub fn has_deps(&self) -> bool {
        self.has_deps
    }

    /// The project's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the version in `mix.exs` (for publishing the next release of the same package).
    pub fn set_version(&mut self, version: &str) {
        let path = self.dir.join("mix.exs");
        let text = fs::read_to_string(&path).expect("read mix.exs");
        let text = text.replace(
            &format!("version: \"{}\"", self.version),
            &format!("version: \"{version}\""),
        );
        fs::write(&path, text).expect("write mix.exs");
        version.clone_into(&mut self.version);
    }

    /// `mix hex.build`: the tarball mix made, `DIR/NAME-VERSION.tar`.
    pub fn build(&self, mix: &Mix) -> PathBuf {
        let output = mix.ok(&self.dir, &["hex.build"]);
        let tarball = self.dir.join(format!("{}-{}.tar", self.name, self.version));
        assert!(
            tarball.is_file(),
            "mix hex.build made no {}:\n{output}",
            tarball.display()
        );
        tarball
    }
}

/// `foo_bar` → `FooBar`.
fn module_name(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}
