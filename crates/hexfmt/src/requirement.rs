//! Version requirements: parsing Elixir's requirement syntax (`~> 1.2`,
//! `>= 1.0.0 and < 2.0.0 or == 3.0.0-rc.1`) and matching versions against it the way
//! `Version.match?/3` does, `allow_pre` option included. Implements HEX-PROTOCOL.md §7 on top of
//! the ordering in [`crate::version`], plus hex.pm's one extra rule: `!=` is rejected.
//!
//! A requirement is parsed once into alternatives (`or`) of conjunctions (`and`), so `and`
//! binds tighter than `or`, as in Elixir since 1.13. The original text is kept: it is what
//! registries and lock files carry, and re-printing a parsed form would change it.

use std::fmt;
use std::str::FromStr;

use crate::version::{Version, VersionError};

/// A parsed version requirement such as `~> 1.2 or >= 2.0.0 and < 3.0.0`.
#[derive(Clone, Debug)]
pub struct Requirement {
    /// The text as given; `Display` and [`Requirement::as_str`] return it unchanged.
    source: String,
    /// Matches when any alternative matches; an alternative matches when all its clauses do.
    alternatives: Vec<Vec<Clause>>,
}

/// One `<operator> <version>` comparison.
#[derive(Clone, Debug)]
enum Clause {
    Eq(Version),
    Gt(Version),
    Ge(Version),
    Lt(Version),
    Le(Version),
    /// `~>`: at least `lower`, and below `upper`, which is `X.(Y+1).0-0` (patch given) or
    /// `(X+1).0.0-0` (patch omitted) so that the bound's own pre-releases are excluded.
    /// `None` when that bound would not fit in `u64`: then every version is below it.
    Approx {
        lower: Version,
        upper: Option<Version>,
    },
}

/// Why a string is not a valid requirement.
#[derive(Debug, thiserror::Error)]
pub enum RequirementError {
    /// The requirement is empty or only spaces.
    #[error("invalid requirement {requirement:?}: empty requirement")]
    Empty {
        /// The requirement text.
        requirement: String,
    },
    /// `!=` (or Elixir's `!` shorthand): deprecated in Elixir and refused by hex.pm.
    #[error("invalid requirement {requirement:?}: != is not allowed in requirements")]
    NotEqual {
        /// The requirement text.
        requirement: String,
    },
    /// Something other than what the grammar allows at this point.
    #[error("invalid requirement {requirement:?}: expected {expected}, found {found}")]
    Unexpected {
        /// The requirement text.
        requirement: String,
        /// What the grammar allows here.
        expected: &'static str,
        /// What was there instead (quoted), or `end of input`.
        found: String,
    },
    /// An operand is not a version (or, after `~>`, not even `MAJOR.MINOR`).
    #[error("invalid requirement {requirement:?}: bad version {operand:?}")]
    Operand {
        /// The requirement text.
        requirement: String,
        /// The operand as written.
        operand: String,
        /// Why the operand is not a version.
        #[source]
        source: VersionError,
    },
}

/// The comparison operators, two-character ones first so that `>=` is not read as `>`.
const OPERATORS: [(&str, Operator); 6] = [
    (">=", Operator::Ge),
    ("<=", Operator::Le),
    ("~>", Operator::Approx),
    ("==", Operator::Eq),
    (">", Operator::Gt),
    ("<", Operator::Lt),
];

#[derive(Clone, Copy, Debug)]
enum Operator {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
    Approx,
}

impl Requirement {
    /// Parses a requirement. Words are separated by spaces (any number); `and` and `or` must
    /// be words of their own, while an operator may be glued to its version (`~>0.3`).
    /// A bare version means `==`. Operands must be full versions, except that `~>` also takes
    /// `MAJOR.MINOR`; build metadata in an operand is accepted and ignored.
    pub fn parse(s: &str) -> Result<Requirement, RequirementError> {
        // Only ASCII space separates words, as in Elixir's lexer; a tab is part of a word and
        // so makes the version around it invalid.
        let mut words = s.split(' ').filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            return Err(RequirementError::Empty {
                requirement: s.to_owned(),
            });
        }
        let mut alternatives = Vec::new();
        let mut conjunction = Vec::new();
        loop {
            conjunction.push(parse_clause(s, &mut words)?);
            match words.next() {
                None => break,
                Some("and") => {}
                Some("or") => alternatives.push(std::mem::take(&mut conjunction)),
                Some(other) => return Err(unexpected(s, "\"and\" or \"or\"", Some(other))),
            }
        }
        alternatives.push(conjunction);
        Ok(Requirement {
            source: s.to_owned(),
            alternatives,
        })
    }

    /// Whether `version` satisfies the requirement, as Elixir's
    /// `Version.match?(version, requirement, allow_pre: allow_pre)`.
    ///
    /// With `allow_pre: false` (what Hex before 2.0 used), `>`, `>=` and `~>` match a
    /// pre-release only if their own operand is a pre-release; `==`, `<` and `<=` are
    /// unaffected (`2.0.0-rc.1` matches `< 2.0.0`). With `allow_pre: true` every clause is a
    /// plain comparison.
    pub fn matches(&self, version: &Version, allow_pre: bool) -> bool {
        self.alternatives.iter().any(|conjunction| {
            conjunction
                .iter()
                .all(|clause| clause.matches(version, allow_pre))
        })
    }

    /// The requirement exactly as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Reads one clause: `[operator] version`, where the operator may be its own word.
fn parse_clause<'a>(
    requirement: &str,
    words: &mut impl Iterator<Item = &'a str>,
) -> Result<Clause, RequirementError> {
    let word = words.next();
    let word = match word {
        Some("and" | "or") | None => {
            return Err(unexpected(requirement, "an operator or a version", word));
        }
        Some(word) => word,
    };
    if word.starts_with('!') {
        return Err(RequirementError::NotEqual {
            requirement: requirement.to_owned(),
        });
    }
    let (operator, operand) = match OPERATORS
        .iter()
        .find_map(|(text, op)| word.strip_prefix(text).map(|rest| (*op, rest)))
    {
        None => (Operator::Eq, word),
        Some((operator, "")) => match words.next() {
            Some(operand) if operand != "and" && operand != "or" => (operator, operand),
            other => {
                return Err(unexpected(
                    requirement,
                    "a version after the operator",
                    other,
                ));
            }
        },
        Some((operator, operand)) => (operator, operand),
    };
    let bad_operand = |source| RequirementError::Operand {
        requirement: requirement.to_owned(),
        operand: operand.to_owned(),
        source,
    };
    if let Operator::Approx = operator {
        let (lower, has_patch) = Version::parse_approximate(operand).map_err(bad_operand)?;
        return Ok(Clause::Approx {
            upper: approximate_upper(&lower, has_patch),
            lower,
        });
    }
    let version = Version::parse(operand).map_err(bad_operand)?;
    Ok(match operator {
        Operator::Eq | Operator::Approx => Clause::Eq(version),
        Operator::Gt => Clause::Gt(version),
        Operator::Ge => Clause::Ge(version),
        Operator::Lt => Clause::Lt(version),
        Operator::Le => Clause::Le(version),
    })
}

/// The exclusive upper bound of `~>`. Elixir's integers are unbounded, so `X.(u64::MAX+1).0-0`
/// exists there; over `u64` versions it bounds exactly like `(X+1).0.0-0`, and when even `X+1`
/// overflows no version reaches the bound.
fn approximate_upper(lower: &Version, has_patch: bool) -> Option<Version> {
    let next_minor = lower.minor().checked_add(1).filter(|_| has_patch);
    match next_minor {
        Some(minor) => Some(Version::first_pre_release(lower.major(), minor, 0)),
        None => lower
            .major()
            .checked_add(1)
            .map(|major| Version::first_pre_release(major, 0, 0)),
    }
}

fn unexpected(requirement: &str, expected: &'static str, found: Option<&str>) -> RequirementError {
    RequirementError::Unexpected {
        requirement: requirement.to_owned(),
        expected,
        found: found.map_or_else(|| "end of input".to_owned(), |word| format!("{word:?}")),
    }
}

impl Clause {
    /// Elixir's `match_op?/3` for one operator.
    fn matches(&self, version: &Version, allow_pre: bool) -> bool {
        // The `allow_pre: false` guard of `>`, `>=` and `~>`.
        let pre_allowed = |operand: &Version| allow_pre || operand.is_pre() || !version.is_pre();
        match self {
            Clause::Eq(operand) => version == operand,
            Clause::Gt(operand) => version > operand && pre_allowed(operand),
            Clause::Ge(operand) => version >= operand && pre_allowed(operand),
            Clause::Lt(operand) => version < operand,
            Clause::Le(operand) => version <= operand,
            Clause::Approx { lower, upper } => {
                version >= lower
                    && upper.as_ref().is_none_or(|upper| version < upper)
                    && pre_allowed(lower)
            }
        }
    }
}

impl FromStr for Requirement {
    type Err = RequirementError;

    fn from_str(s: &str) -> Result<Requirement, RequirementError> {
        Requirement::parse(s)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks that an error is of the expected kind.
    type ErrorCheck = fn(&RequirementError) -> bool;

    fn req(s: &str) -> Requirement {
        Requirement::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Versions around the boundaries the tests below care about.
    const SAMPLE: &[&str] = &[
        "0.0.0",
        "1.9.9",
        "2.0.0-0",
        "2.0.0-dev",
        "2.0.0-rc.1",
        "2.0.0",
        "2.0.0+build",
        "2.0.1",
        "2.0.5",
        "2.1.0-0",
        "2.1.0-dev",
        "2.1.0",
        "2.1.2",
        "2.1.3-alpha",
        "2.1.3-dev",
        "2.1.3-dev.1",
        "2.1.3",
        "2.1.9",
        "2.2.0-0",
        "2.2.0-dev",
        "2.2.0",
        "2.99.99",
        "3.0.0-0",
        "3.0.0-rc.1",
        "3.0.0",
        "3.0.1",
    ];

    #[test]
    fn parses_valid_requirements_and_keeps_their_text() {
        let valid = [
            "== 1.0.0",
            "1.0.0",
            "> 1.0.0",
            ">= 1.0.0",
            "< 1.0.0",
            "<= 1.0.0",
            "~> 1.0",
            "~> 1.0.0",
            "~>0.3",
            ">=1.0.0",
            "==1.0.0-rc.1",
            ">=1.0.0  and  <2.0.0",
            "  >= 1.0.0  ",
            "~> 2.1-dev",
            "~> 2.1.3-dev",
            "~> 2.1+build",
            ">= 1.0.0+build",
            "1.0.0 or 2.0.0",
            ">= 1.0.0 and < 2.0.0 or >= 3.0.0",
            ">= 1.0.0 and < 2.0.0 and > 1.5.0 or 1.0.0",
            "~> 18446744073709551615.18446744073709551615",
        ];
        for text in valid {
            let parsed = req(text);
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(
                text.parse::<Requirement>()
                    .map(|r| r.to_string())
                    .ok()
                    .as_deref(),
                Some(text)
            );
        }
    }

    #[test]
    fn rejects_invalid_requirements() {
        use RequirementError as E;
        let cases: &[(&str, ErrorCheck)] = &[
            ("", |e| matches!(e, E::Empty { .. })),
            ("   ", |e| matches!(e, E::Empty { .. })),
            ("!= 1.0.0", |e| matches!(e, E::NotEqual { .. })),
            ("!=1.0.0", |e| matches!(e, E::NotEqual { .. })),
            ("! 1.0.0", |e| matches!(e, E::NotEqual { .. })),
            (">= 1.0.0 and != 1.1.0", |e| matches!(e, E::NotEqual { .. })),
            (">= 1.0", |e| matches!(e, E::Operand { .. })),
            ("1.0", |e| matches!(e, E::Operand { .. })),
            ("~> 1", |e| matches!(e, E::Operand { .. })),
            ("~> 1.0.0.0", |e| matches!(e, E::Operand { .. })),
            ("< 01.0.0", |e| matches!(e, E::Operand { .. })),
            ("=> 1.0.0", |e| matches!(e, E::Operand { .. })),
            ("= 1.0.0", |e| matches!(e, E::Operand { .. })),
            ("> = 1.0.0", |e| matches!(e, E::Operand { .. })),
            (">= >= 1.0.0", |e| matches!(e, E::Operand { .. })),
            (">=\t1.0.0", |e| matches!(e, E::Operand { .. })),
            ("~>", |e| matches!(e, E::Unexpected { .. })),
            (">=", |e| matches!(e, E::Unexpected { .. })),
            (">= and 1.0.0", |e| matches!(e, E::Unexpected { .. })),
            (">= 1.0.0 and", |e| matches!(e, E::Unexpected { .. })),
            ("or 1.0.0", |e| matches!(e, E::Unexpected { .. })),
            ("and 1.0.0", |e| matches!(e, E::Unexpected { .. })),
            (">= 1.0.0 and or < 2.0.0", |e| {
                matches!(e, E::Unexpected { .. })
            }),
            (">= 1.0.0 < 2.0.0", |e| matches!(e, E::Unexpected { .. })),
            ("1.0.0 1.0.0", |e| matches!(e, E::Unexpected { .. })),
            (">= 1.0.0 AND < 2.0.0", |e| {
                matches!(e, E::Unexpected { .. })
            }),
            (">= 1.0.0 and< 2.0.0", |e| matches!(e, E::Unexpected { .. })),
            (">= 1.0.0and < 2.0.0", |e| matches!(e, E::Operand { .. })),
            (">= 1.0.0 &&  < 2.0.0", |e| {
                matches!(e, E::Unexpected { .. })
            }),
            ("(>= 1.0.0)", |e| matches!(e, E::Operand { .. })),
        ];
        for (text, expected) in cases {
            match Requirement::parse(text) {
                Ok(parsed) => panic!("{text:?} parsed as {parsed:?}"),
                Err(e) => assert!(expected(&e), "{text:?}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn error_messages_name_the_requirement() {
        let message = |s: &str| Requirement::parse(s).unwrap_err().to_string();
        assert_eq!(
            message("!= 1.0.0"),
            r#"invalid requirement "!= 1.0.0": != is not allowed in requirements"#
        );
        assert_eq!(
            message(">= 1.0"),
            r#"invalid requirement ">= 1.0": bad version "1.0""#
        );
        assert_eq!(
            message(">= 1.0.0 and"),
            r#"invalid requirement ">= 1.0.0 and": expected an operator or a version, found end of input"#
        );
        assert_eq!(
            message("1.0.0 1.0.0"),
            r#"invalid requirement "1.0.0 1.0.0": expected "and" or "or", found "1.0.0""#
        );
        let source = std::error::Error::source(&Requirement::parse("~> 1").unwrap_err())
            .map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some(r#"invalid version "1": expected MAJOR.MINOR[.PATCH]"#)
        );
    }

    /// Asserts that two requirements agree on every version of [`SAMPLE`], for both values of
    /// `allow_pre`.
    fn assert_same_matches(a: &str, b: &str) {
        for text in SAMPLE {
            for allow_pre in [false, true] {
                assert_eq!(
                    req(a).matches(&v(text), allow_pre),
                    req(b).matches(&v(text), allow_pre),
                    "{a:?} vs {b:?} on {text} (allow_pre: {allow_pre})"
                );
            }
        }
    }

    #[test]
    fn approximate_expands_like_elixir() {
        assert_same_matches("~> 2.0", ">= 2.0.0 and < 3.0.0-0");
        assert_same_matches("~> 2.1", ">= 2.1.0 and < 3.0.0-0");
        assert_same_matches("~> 2.0.0", ">= 2.0.0 and < 2.1.0-0");
        assert_same_matches("~> 2.1.3-dev", ">= 2.1.3-dev and < 2.2.0-0");
        assert_same_matches("~>2.0", "~>  2.0+ignored");

        let r = req("~> 2.0");
        for yes in ["2.0.0", "2.1.0", "2.99.99"] {
            assert!(r.matches(&v(yes), false), "{yes}");
        }
        for no in ["1.9.9", "3.0.0-0", "3.0.0-rc.1", "3.0.0"] {
            assert!(!r.matches(&v(no), true), "{no}");
        }
        let r = req("~> 2.1.3-dev");
        for yes in ["2.1.3-dev", "2.1.3-dev.1", "2.1.3", "2.1.9"] {
            assert!(r.matches(&v(yes), false), "{yes}");
        }
        for no in ["2.1.3-alpha", "2.2.0-0", "2.2.0-dev", "2.2.0"] {
            assert!(!r.matches(&v(no), true), "{no}");
        }
    }

    #[test]
    fn approximate_bounds_that_overflow_are_open() {
        let max = u64::MAX;
        let r = req(&format!("~> {max}.{max}.0"));
        assert!(r.matches(&Version::new(max, max, max), false));
        assert!(!r.matches(&Version::new(max, max - 1, max), false));
        let r = req(&format!("~> {max}.0"));
        assert!(r.matches(&Version::new(max, max, 0), false));
        let r = req(&format!("~> 1.{max}.0"));
        assert!(r.matches(&Version::new(1, max, 7), false));
        assert!(!r.matches(&v("2.0.0-0"), true));
    }

    #[test]
    fn matches_the_elixir_documentation_table() {
        // (requirement, version, allow_pre, expected), from `Version`'s moduledoc.
        let table = [
            ("~> 2.0", "2.1.0", None, true),
            ("~> 2.0", "3.0.0", None, false),
            ("~> 2.0.0", "2.0.5", None, true),
            ("~> 2.0.0", "2.1.0", None, false),
            ("~> 2.1.2", "2.1.6-dev", Some(true), true),
            ("~> 2.1.2", "2.1.6-dev", Some(false), false),
            ("~> 2.1-dev", "2.2.0-dev", None, true),
            ("~> 2.1.2-dev", "2.1.6-dev", None, true),
            (">= 2.1.0", "2.2.0-dev", Some(true), true),
            (">= 2.1.0", "2.2.0-dev", Some(false), false),
            (">= 2.1.0-dev", "2.2.6-dev", None, true),
            ("> 1.0.0", "2.0.0", None, true),
            ("== 1.0.0", "2.0.0", None, false),
        ];
        for (requirement, version, allow_pre, expected) in table {
            for allow in allow_pre.map_or(vec![false, true], |a| vec![a]) {
                assert_eq!(
                    req(requirement).matches(&v(version), allow),
                    expected,
                    "{requirement} on {version} (allow_pre: {allow})"
                );
            }
        }
    }

    #[test]
    fn pre_release_guard_applies_only_to_lower_bounds() {
        // (requirement, version, allow_pre: false, allow_pre: true)
        let table = [
            ("< 2.0.0", "2.0.0-rc.1", true, true),
            ("<= 2.0.0", "2.0.0-rc.1", true, true),
            ("<= 2.0.0-rc.1", "2.0.0-rc.1", true, true),
            ("== 2.0.0-rc.1", "2.0.0-rc.1", true, true),
            ("== 2.0.0", "2.0.0-rc.1", false, false),
            ("> 1.0.0", "1.0.1-rc", false, true),
            (">= 1.0.0", "1.0.1-rc", false, true),
            (">= 1.0.0", "1.0.0-rc", false, false),
            ("> 1.0.0-rc.1", "1.0.1-rc.1", true, true),
            ("> 1.0.0-rc.1", "1.0.0-rc.2", true, true),
            ("> 1.0.0-rc.1", "1.0.0-rc.1", false, false),
            ("> 1.0.0-rc.1", "1.0.0", true, true),
            (">= 1.0.0-rc.1", "1.0.0-rc.1", true, true),
            ("~> 1.0", "1.1.0-rc", false, true),
            ("~> 1.0-rc", "1.1.0-rc", true, true),
            (">= 1.0.0 and < 2.0.0", "1.5.0-beta", false, true),
            (">= 1.0.0-0 and < 2.0.0", "1.5.0-beta", true, true),
        ];
        for (requirement, version, strict, lax) in table {
            let (r, version_parsed) = (req(requirement), v(version));
            assert_eq!(
                r.matches(&version_parsed, false),
                strict,
                "{requirement} on {version}"
            );
            assert_eq!(
                r.matches(&version_parsed, true),
                lax,
                "{requirement} on {version}"
            );
        }
    }

    #[test]
    fn build_metadata_is_ignored() {
        assert!(req("== 1.0.0").matches(&v("1.0.0+build"), false));
        assert!(req("== 1.0.0+abc").matches(&v("1.0.0"), false));
        assert!(req("1.0.0+abc").matches(&v("1.0.0+def"), false));
        assert!(!req("> 1.0.0").matches(&v("1.0.0+build"), true));
        assert!(req("<= 1.0.0+zzz").matches(&v("1.0.0+aaa"), true));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // The cases from elixir-lang/elixir#11200, where the precedence was fixed.
        for text in [
            "< 0.2.0 and >= 0.1.0 or >= 0.7.0",
            ">= 0.7.0 or < 0.2.0 and >= 0.1.0",
        ] {
            let r = req(text);
            for (version, expected) in [
                ("0.1.0", true),
                ("0.1.5", true),
                ("0.3.0", false),
                ("0.6.0", false),
                ("0.7.0", true),
                ("0.7.5", true),
            ] {
                assert_eq!(
                    r.matches(&v(version), false),
                    expected,
                    "{text} on {version}"
                );
            }
        }
        let r = req(">= 3.0.0 and < 4.0.0 or >= 1.0.0 and < 2.0.0");
        for (version, expected) in [
            ("0.5.0", false),
            ("1.5.0", true),
            ("2.5.0", false),
            ("3.5.0", true),
            ("4.5.0", false),
        ] {
            assert_eq!(r.matches(&v(version), false), expected, "{version}");
        }
    }

    /// Stable versions near the `~>` boundaries of small operands.
    fn stable() -> impl Strategy<Value = Version> {
        (0u64..5, 0u64..5, 0u64..5).prop_map(|(a, b, c)| Version::new(a, b, c))
    }

    fn any_version() -> impl Strategy<Value = Version> {
        (
            0u64..4,
            0u64..4,
            0u64..4,
            prop::option::of(prop::sample::select(vec!["0", "1", "dev", "rc.1"])),
        )
            .prop_map(|(a, b, c, pre)| match pre {
                Some(pre) => v(&format!("{a}.{b}.{c}-{pre}")),
                None => Version::new(a, b, c),
            })
    }

    /// A random requirement of the whole grammar, as text.
    fn requirement_text() -> impl Strategy<Value = String> {
        let op = prop::sample::select(vec!["", "== ", "> ", ">= ", "<", "<= ", "~> ", "~>"]);
        let clause = (op, any_version(), any::<bool>())
            .prop_map(|(op, version, short)| {
                let text = version.to_string();
                match (op.starts_with('~'), short, text.split_once('-')) {
                    (true, true, None) => format!("{op}{}.{}", version.major(), version.minor()),
                    _ => format!("{op}{text}"),
                }
            })
            .boxed();
        let joiner = prop::sample::select(vec![" and ", " or ", "  and  "]);
        (
            clause.clone(),
            prop::collection::vec((joiner, clause), 0..4),
        )
            .prop_map(|(first, rest)| {
                rest.into_iter()
                    .fold(first, |acc, (joiner, clause)| acc + joiner + &clause)
            })
    }

    proptest! {
        #[test]
        fn approximate_with_patch_is_a_minor_range(x in 0u64..4, y in 0u64..4, z in 0u64..4, version in stable()) {
            let r = req(&format!("~> {x}.{y}.{z}"));
            let inside = Version::new(x, y, z) <= version && version < Version::new(x, y + 1, 0);
            prop_assert_eq!(r.matches(&version, false), inside);
            prop_assert_eq!(r.matches(&version, true), inside);
        }

        #[test]
        fn approximate_without_patch_is_a_major_range(x in 0u64..4, y in 0u64..4, version in stable()) {
            let r = req(&format!("~> {x}.{y}"));
            let inside = Version::new(x, y, 0) <= version && version < Version::new(x + 1, 0, 0);
            prop_assert_eq!(r.matches(&version, false), inside);
        }

        #[test]
        fn generated_requirements_parse_and_keep_their_text(text in requirement_text()) {
            let parsed = Requirement::parse(&text);
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", text, parsed.err());
            prop_assert_eq!(parsed.map(|r| r.to_string()).ok(), Some(text));
        }

        #[test]
        fn allow_pre_only_widens(text in requirement_text(), version in any_version()) {
            let r = req(&text);
            if r.matches(&version, false) {
                prop_assert!(r.matches(&version, true));
            }
            if !version.is_pre() {
                prop_assert_eq!(r.matches(&version, false), r.matches(&version, true));
            }
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = Requirement::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(s in "[ <>=~!0-9.a-z+-]{0,30}") {
            if let Ok(r) = Requirement::parse(&s) {
                prop_assert_eq!(r.as_str(), s.as_str());
            }
        }
    }
}
