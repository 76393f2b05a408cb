//! Package versions: parsing, printing and ordering `MAJOR.MINOR.PATCH[-PRE][+BUILD]` the way
//! Elixir's `Version.parse/1` and `Version.compare/2` do, plus hex.pm's extra publishing limits.
//! Implements HEX-PROTOCOL.md §3.9; requirements (§7) live in [`crate::requirement`] and build
//! on the ordering defined here.
//!
//! A [`Version`] is validated once, when it is parsed, and its `Display` prints back exactly the
//! text it came from. Build metadata is kept for printing only: it takes no part in ordering,
//! equality or hashing, as in Elixir. Numbers are `u64` (Elixir has bignums); larger numbers
//! are an error, never a panic.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Largest number hex.pm accepts in any numeric part of a version (HEX-PROTOCOL §3.9).
pub const HEX_MAX_NUMBER: u64 = 99_999_999_999_999;

/// Longest pre-release (the text between `-` and `+`, in bytes) hex.pm accepts.
pub const HEX_MAX_PRE_LEN: usize = 64;

/// Longest version text a path or a file name may carry: with a package name of at most
/// [`crate::name::MAX_PACKAGE_NAME`] bytes, `NAME-VERSION.tar.gz` fits in a file name's 255.
pub const MAX_VERSION_TEXT: usize = 120;

/// A parsed semantic version (2.0 rules), as Elixir's `Version` understands it.
///
/// Ordering, equality and hashing follow `Version.compare/2` and ignore the build metadata, so
/// `1.0.0+a == 1.0.0+b` even though the two print differently.
#[derive(Clone, Debug)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    /// Empty for a release; a release sorts after all of its pre-releases.
    pre: Vec<PreIdentifier>,
    /// Kept verbatim (dots included) so that `Display` reproduces the input.
    build: Option<String>,
}

/// One dot-separated identifier of a pre-release, such as `rc` or `1` in `1.0.0-rc.1`.
///
/// The variant order matters: the derived `Ord` puts every `Numeric` before every
/// `AlphaNumeric`, as Erlang's term order puts integers before binaries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreIdentifier {
    /// Digits only, without a leading zero; compared numerically (`rc.9 < rc.10`).
    Numeric(u64),
    /// Any other run of `[0-9A-Za-z-]`; compared byte by byte.
    AlphaNumeric(String),
}

/// Why a string is not a valid version, or not one hex.pm accepts.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The text does not split into the expected number of dot-separated numbers.
    #[error("invalid version {input:?}: expected {expected}")]
    Shape {
        /// The text that was being parsed.
        input: String,
        /// The shape that was expected, such as `MAJOR.MINOR.PATCH`.
        expected: &'static str,
    },
    /// A major, minor or patch part is empty or not all ASCII digits.
    #[error("invalid version {input:?}: {part:?} is not a number")]
    NotNumeric {
        /// The text that was being parsed.
        input: String,
        /// The offending part.
        part: String,
    },
    /// A numeric part (or numeric pre-release identifier) starts with `0`.
    #[error("invalid version {input:?}: {part:?} has a leading zero")]
    LeadingZero {
        /// The text that was being parsed.
        input: String,
        /// The offending part.
        part: String,
    },
    /// A number does not fit in 64 bits.
    #[error("invalid version {input:?}: {part:?} is too large")]
    NumberTooLarge {
        /// The text that was being parsed.
        input: String,
        /// The offending part.
        part: String,
    },
    /// A pre-release or build section has an empty identifier (`1.0.0-`, `1.0.0-rc..1`).
    #[error("invalid version {input:?}: empty {section} identifier")]
    EmptyIdentifier {
        /// The text that was being parsed.
        input: String,
        /// `pre-release` or `build`.
        section: &'static str,
    },
    /// A pre-release or build identifier has a character outside `[0-9A-Za-z-]`.
    #[error(
        "invalid version {input:?}: {section} identifier {part:?} has characters outside [0-9A-Za-z-]"
    )]
    InvalidIdentifier {
        /// The text that was being parsed.
        input: String,
        /// `pre-release` or `build`.
        section: &'static str,
        /// The offending identifier.
        part: String,
    },
    /// hex.pm refuses versions with build metadata ("build number not allowed").
    #[error("invalid version {version:?}: hex does not allow build metadata")]
    HexBuildMetadata {
        /// The version as written.
        version: String,
    },
    /// hex.pm refuses numbers above [`HEX_MAX_NUMBER`].
    #[error("invalid version {version:?}: hex allows numbers up to {max}, found {number}", max = HEX_MAX_NUMBER)]
    HexNumberTooLarge {
        /// The version as written.
        version: String,
        /// The first number over the limit.
        number: u64,
    },
    /// hex.pm refuses pre-releases longer than [`HEX_MAX_PRE_LEN`] bytes.
    #[error("invalid version {version:?}: hex allows pre-releases up to {max} characters, found {len}", max = HEX_MAX_PRE_LEN)]
    HexPreTooLong {
        /// The version as written.
        version: String,
        /// Length of the pre-release in bytes.
        len: usize,
    },
}

impl Version {
    /// A release version `MAJOR.MINOR.PATCH`, without pre-release or build.
    pub fn new(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
            pre: Vec::new(),
            build: None,
        }
    }

    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`; anything Elixir's `Version.parse/1` rejects
    /// (or a number over `u64::MAX`) is an error. No surrounding whitespace is allowed.
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        parse_parts(s, false).map(|(version, _)| version)
    }

    /// Parses the operand of `~>`, where the patch may be left out (`2.1`, `2.1-dev`).
    /// Returns the version with a missing patch read as `0`, and whether the patch was given.
    pub(crate) fn parse_approximate(s: &str) -> Result<(Version, bool), VersionError> {
        parse_parts(s, true)
    }

    /// `MAJOR.MINOR.PATCH-0`: the smallest version with these numbers, below all of their
    /// other pre-releases. `~>` uses it as its exclusive upper bound.
    pub(crate) fn first_pre_release(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            pre: vec![PreIdentifier::Numeric(0)],
            ..Version::new(major, minor, patch)
        }
    }

    /// The major number.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor number.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch number.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release identifiers; empty for a release.
    pub fn pre(&self) -> &[PreIdentifier] {
        &self.pre
    }

    /// The build metadata after `+`, exactly as written (dots included).
    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }

    /// Whether this is a pre-release (has a `-PRE` part).
    pub fn is_pre(&self) -> bool {
        !self.pre.is_empty()
    }

    /// Checks hex.pm's publishing rules on top of the syntax (HEX-PROTOCOL §3.9): no build
    /// metadata, no number (including numeric pre-release identifiers) above
    /// [`HEX_MAX_NUMBER`], and a pre-release of at most [`HEX_MAX_PRE_LEN`] bytes.
    pub fn is_valid_for_hex(&self) -> Result<(), VersionError> {
        if self.build.is_some() {
            return Err(VersionError::HexBuildMetadata {
                version: self.to_string(),
            });
        }
        let pre_numbers = self.pre.iter().filter_map(|id| match id {
            PreIdentifier::Numeric(n) => Some(*n),
            PreIdentifier::AlphaNumeric(_) => None,
        });
        let mut numbers = [self.major, self.minor, self.patch]
            .into_iter()
            .chain(pre_numbers);
        if let Some(number) = numbers.find(|n| *n > HEX_MAX_NUMBER) {
            return Err(VersionError::HexNumberTooLarge {
                version: self.to_string(),
                number,
            });
        }
        let len = PreText(&self.pre).to_string().len();
        if len > HEX_MAX_PRE_LEN {
            return Err(VersionError::HexPreTooLong {
                version: self.to_string(),
                len,
            });
        }
        Ok(())
    }
}

/// The shared parser for full versions and `~>` operands, following the order of Elixir's
/// `Version.Parser.parse_version/2`: split off `+BUILD` at the first `+`, then `-PRE` at the
/// first `-`, then the dot-separated numbers.
fn parse_parts(input: &str, patch_optional: bool) -> Result<(Version, bool), VersionError> {
    let (rest, build) = match input.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (input, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let shape = || VersionError::Shape {
        input: input.to_owned(),
        expected: if patch_optional {
            "MAJOR.MINOR[.PATCH]"
        } else {
            "MAJOR.MINOR.PATCH"
        },
    };
    let mut numbers = core.split('.');
    let (Some(major), Some(minor)) = (numbers.next(), numbers.next()) else {
        return Err(shape());
    };
    let patch = numbers.next();
    if numbers.next().is_some() || (patch.is_none() && !patch_optional) {
        return Err(shape());
    }

    let major = parse_number(input, major)?;
    let minor = parse_number(input, minor)?;
    let patch = patch.map(|p| parse_number(input, p)).transpose()?;
    let pre = match pre {
        Some(pre) => parse_pre(input, pre)?,
        None => Vec::new(),
    };
    if let Some(build) = build {
        for part in build.split('.') {
            check_identifier(input, "build", part)?;
        }
    }
    let version = Version {
        major,
        minor,
        patch: patch.unwrap_or(0),
        pre,
        build: build.map(str::to_owned),
    };
    Ok((version, patch.is_some()))
}

fn parse_number(input: &str, part: &str) -> Result<u64, VersionError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionError::NotNumeric {
            input: input.to_owned(),
            part: part.to_owned(),
        });
    }
    parse_digits(input, part)
}

/// Parses a non-empty run of ASCII digits, rejecting leading zeros and overflow.
fn parse_digits(input: &str, part: &str) -> Result<u64, VersionError> {
    if part.len() > 1 && part.starts_with('0') {
        return Err(VersionError::LeadingZero {
            input: input.to_owned(),
            part: part.to_owned(),
        });
    }
    part.parse().map_err(|_| VersionError::NumberTooLarge {
        input: input.to_owned(),
        part: part.to_owned(),
    })
}

fn parse_pre(input: &str, pre: &str) -> Result<Vec<PreIdentifier>, VersionError> {
    pre.split('.')
        .map(|part| {
            check_identifier(input, "pre-release", part)?;
            if part.bytes().all(|b| b.is_ascii_digit()) {
                parse_digits(input, part).map(PreIdentifier::Numeric)
            } else {
                Ok(PreIdentifier::AlphaNumeric(part.to_owned()))
            }
        })
        .collect()
}

fn check_identifier(input: &str, section: &'static str, part: &str) -> Result<(), VersionError> {
    if part.is_empty() {
        return Err(VersionError::EmptyIdentifier {
            input: input.to_owned(),
            section,
        });
    }
    if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(VersionError::InvalidIdentifier {
            input: input.to_owned(),
            section,
            part: part.to_owned(),
        });
    }
    Ok(())
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Version, VersionError> {
        Version::parse(s)
    }
}

impl fmt::Display for PreIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreIdentifier::Numeric(n) => write!(f, "{n}"),
            PreIdentifier::AlphaNumeric(s) => f.write_str(s),
        }
    }
}

/// Prints pre-release identifiers joined by dots, without the leading `-`.
struct PreText<'a>(&'a [PreIdentifier]);

impl fmt::Display for PreText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.is_pre() {
            write!(f, "-{}", PreText(&self.pre))?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl Ord for Version {
    /// `Version.compare/2`: numbers first, then a release above its pre-releases, then the
    /// pre-release identifiers as an Erlang list (element by element, a prefix sorts first).
    fn cmp(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.is_pre(), other.is_pre()) {
                (false, false) => Ordering::Equal,
                (false, true) => Ordering::Greater,
                (true, false) => Ordering::Less,
                (true, true) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    /// Hashes exactly what `Eq` compares: everything but the build metadata.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.major, self.minor, self.patch, &self.pre).hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// (text, (major, minor, patch), pre-release identifiers, build)
    type ValidCase = (
        &'static str,
        (u64, u64, u64),
        &'static [&'static str],
        Option<&'static str>,
    );
    /// Checks that an error is of the expected kind.
    type ErrorCheck = fn(&VersionError) -> bool;
    /// (major, minor, patch, is a release, pre-release as (kind, number, text) triples)
    type ModelKey = (u64, u64, u64, bool, Vec<(u8, u64, String)>);

    fn hash_of(v: &Version) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn parses_valid_versions_and_prints_them_back() {
        let cases: &[ValidCase] = &[
            ("0.0.0", (0, 0, 0), &[], None),
            ("1.2.3", (1, 2, 3), &[], None),
            ("10.20.30", (10, 20, 30), &[], None),
            ("1.0.0-rc.1", (1, 0, 0), &["rc", "1"], None),
            (
                "1.0.0-alpha.3+20130417140000.amd64",
                (1, 0, 0),
                &["alpha", "3"],
                Some("20130417140000.amd64"),
            ),
            ("1.0.0+build", (1, 0, 0), &[], Some("build")),
            ("1.0.0+001.0-x", (1, 0, 0), &[], Some("001.0-x")),
            ("1.0.0+-", (1, 0, 0), &[], Some("-")),
            ("1.0.0-rc-1", (1, 0, 0), &["rc-1"], None),
            ("1.0.0--", (1, 0, 0), &["-"], None),
            ("1.0.0-0a.0", (1, 0, 0), &["0a", "0"], None),
            ("1.0.0-x.7.z.92", (1, 0, 0), &["x", "7", "z", "92"], None),
            ("1.0.0-A-Z.a-z", (1, 0, 0), &["A-Z", "a-z"], None),
            (
                "1.0.0-rc.1+build-1",
                (1, 0, 0),
                &["rc", "1"],
                Some("build-1"),
            ),
            (
                "18446744073709551615.18446744073709551615.18446744073709551615-18446744073709551615",
                (u64::MAX, u64::MAX, u64::MAX),
                &["18446744073709551615"],
                None,
            ),
        ];
        for (text, (major, minor, patch), pre, build) in cases {
            let parsed = v(text);
            assert_eq!(
                (parsed.major(), parsed.minor(), parsed.patch()),
                (*major, *minor, *patch),
                "{text}"
            );
            let pre_text: Vec<String> = parsed.pre().iter().map(ToString::to_string).collect();
            assert_eq!(pre_text, *pre, "{text}");
            assert_eq!(parsed.build(), *build, "{text}");
            assert_eq!(parsed.is_pre(), !pre.is_empty(), "{text}");
            assert_eq!(parsed.to_string(), *text);
            assert_eq!(
                text.parse::<Version>()
                    .map(|v| v.to_string())
                    .ok()
                    .as_deref(),
                Some(*text)
            );
        }
    }

    #[test]
    fn numeric_pre_identifiers_are_numbers() {
        assert_eq!(
            v("1.0.0-rc.10.x-1.0a").pre(),
            &[
                PreIdentifier::AlphaNumeric("rc".into()),
                PreIdentifier::Numeric(10),
                PreIdentifier::AlphaNumeric("x-1".into()),
                PreIdentifier::AlphaNumeric("0a".into()),
            ]
        );
    }

    #[test]
    fn rejects_invalid_versions() {
        use VersionError as E;
        let cases: &[(&str, ErrorCheck)] = &[
            ("", |e| matches!(e, E::Shape { .. })),
            ("1", |e| matches!(e, E::Shape { .. })),
            ("1.0", |e| matches!(e, E::Shape { .. })),
            ("1.0.0.0", |e| matches!(e, E::Shape { .. })),
            ("1.0-rc.1", |e| matches!(e, E::Shape { .. })),
            ("1-0.0.0", |e| matches!(e, E::Shape { .. })),
            ("-1.0.0", |e| matches!(e, E::Shape { .. })),
            ("+1.0.0", |e| matches!(e, E::Shape { .. })),
            ("1..0", |e| matches!(e, E::NotNumeric { .. })),
            ("v1.0.0", |e| matches!(e, E::NotNumeric { .. })),
            (" 1.0.0", |e| matches!(e, E::NotNumeric { .. })),
            ("1.0.0 ", |e| matches!(e, E::NotNumeric { .. })),
            ("1.0.x", |e| matches!(e, E::NotNumeric { .. })),
            ("1.0.+1", |e| matches!(e, E::NotNumeric { .. })),
            ("١.0.0", |e| matches!(e, E::NotNumeric { .. })),
            ("01.0.0", |e| matches!(e, E::LeadingZero { .. })),
            ("1.00.0", |e| matches!(e, E::LeadingZero { .. })),
            ("1.0.00", |e| matches!(e, E::LeadingZero { .. })),
            ("1.0.0-01", |e| matches!(e, E::LeadingZero { .. })),
            ("1.0.0-rc.00", |e| matches!(e, E::LeadingZero { .. })),
            ("18446744073709551616.0.0", |e| {
                matches!(e, E::NumberTooLarge { .. })
            }),
            ("1.0.0-18446744073709551616", |e| {
                matches!(e, E::NumberTooLarge { .. })
            }),
            ("1.0.0-", |e| {
                matches!(
                    e,
                    E::EmptyIdentifier {
                        section: "pre-release",
                        ..
                    }
                )
            }),
            ("1.0.0-rc.", |e| matches!(e, E::EmptyIdentifier { .. })),
            ("1.0.0-.rc", |e| matches!(e, E::EmptyIdentifier { .. })),
            ("1.0.0-rc..1", |e| matches!(e, E::EmptyIdentifier { .. })),
            ("1.0.0-rc+", |e| {
                matches!(
                    e,
                    E::EmptyIdentifier {
                        section: "build",
                        ..
                    }
                )
            }),
            ("1.0.0+", |e| {
                matches!(
                    e,
                    E::EmptyIdentifier {
                        section: "build",
                        ..
                    }
                )
            }),
            ("1.0.0+a..b", |e| matches!(e, E::EmptyIdentifier { .. })),
            ("1.0.0-rc_1", |e| matches!(e, E::InvalidIdentifier { .. })),
            ("1.0.0-é", |e| matches!(e, E::InvalidIdentifier { .. })),
            ("1.0.0+b_1", |e| {
                matches!(
                    e,
                    E::InvalidIdentifier {
                        section: "build",
                        ..
                    }
                )
            }),
            ("1.0.0+build+1", |e| {
                matches!(e, E::InvalidIdentifier { .. })
            }),
            ("1.0.0-rc 1", |e| matches!(e, E::InvalidIdentifier { .. })),
        ];
        for (text, expected) in cases {
            match Version::parse(text) {
                Ok(parsed) => panic!("{text:?} parsed as {parsed}"),
                Err(e) => assert!(expected(&e), "{text:?}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn error_messages_name_the_input() {
        let message = |s: &str| Version::parse(s).unwrap_err().to_string();
        assert_eq!(
            message("1.0"),
            r#"invalid version "1.0": expected MAJOR.MINOR.PATCH"#
        );
        assert_eq!(
            message("01.0.0"),
            r#"invalid version "01.0.0": "01" has a leading zero"#
        );
        assert_eq!(
            message("1.x.0"),
            r#"invalid version "1.x.0": "x" is not a number"#
        );
        assert_eq!(
            message("1.0.0-"),
            r#"invalid version "1.0.0-": empty pre-release identifier"#
        );
        assert_eq!(
            message("1.0.0+a_b"),
            r#"invalid version "1.0.0+a_b": build identifier "a_b" has characters outside [0-9A-Za-z-]"#
        );
        assert_eq!(
            message("99999999999999999999.0.0"),
            r#"invalid version "99999999999999999999.0.0": "99999999999999999999" is too large"#
        );
        assert_eq!(
            Version::parse_approximate("1").unwrap_err().to_string(),
            r#"invalid version "1": expected MAJOR.MINOR[.PATCH]"#
        );
    }

    #[test]
    fn approximate_operands_may_omit_the_patch() {
        let (parsed, has_patch) = Version::parse_approximate("2.1-dev+b").unwrap();
        assert_eq!(
            (parsed.to_string().as_str(), has_patch),
            ("2.1.0-dev+b", false)
        );
        let (parsed, has_patch) = Version::parse_approximate("2.1.3").unwrap();
        assert_eq!((parsed.to_string().as_str(), has_patch), ("2.1.3", true));
        assert!(Version::parse_approximate("2").is_err());
        assert!(Version::parse_approximate("2.1.3.4").is_err());
        assert!(Version::parse_approximate("2.01").is_err());
    }

    #[test]
    fn orders_like_elixir_version_compare() {
        // Each strictly below the next; SemVer's own example chain plus Elixir's doc examples.
        let chain = [
            "0.9.9",
            "1.0.0-0",
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-Z",
            "1.0.0-a",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0-rc.9",
            "1.0.0-rc.10",
            "1.0.0-rc.10.0",
            "1.0.0-rc1",
            "1.0.0",
            "1.0.1-0",
            "1.0.1",
            "1.9.0",
            "1.10.0",
            "2.0.0",
            "2.0.1-alpha1",
            "10.0.0",
        ];
        for (i, a) in chain.iter().enumerate() {
            for (j, b) in chain.iter().enumerate() {
                assert_eq!(v(a).cmp(&v(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn build_metadata_is_ignored_by_ordering_equality_and_hash() {
        let pairs = [
            ("2.0.1+build0", "2.0.1"),
            ("1.0.0-rc.1+a", "1.0.0-rc.1+b.c"),
        ];
        for (a, b) in pairs {
            assert_eq!(v(a).cmp(&v(b)), Ordering::Equal);
            assert_eq!(v(a), v(b));
            assert_eq!(hash_of(&v(a)), hash_of(&v(b)));
            assert_ne!(v(a).to_string(), v(b).to_string());
        }
        assert_eq!(Version::new(1, 2, 3), v("1.2.3"));
        assert!(Version::first_pre_release(3, 0, 0) < v("3.0.0-alpha"));
        assert!(Version::first_pre_release(3, 0, 0) > v("2.99.99"));
    }

    #[test]
    fn hex_rules() {
        let ok = [
            "1.0.0",
            "99999999999999.99999999999999.99999999999999",
            "1.0.0-99999999999999",
        ];
        for text in ok {
            assert!(v(text).is_valid_for_hex().is_ok(), "{text}");
        }
        let pre_64 = format!("1.0.0-{}.{}", "a".repeat(31), "b".repeat(32));
        assert!(v(&pre_64).is_valid_for_hex().is_ok());

        let err = |s: &str| v(s).is_valid_for_hex().unwrap_err();
        assert!(matches!(
            err("1.0.0+build"),
            VersionError::HexBuildMetadata { .. }
        ));
        assert!(matches!(
            err("100000000000000.0.0"),
            VersionError::HexNumberTooLarge {
                number: 100_000_000_000_000,
                ..
            }
        ));
        assert!(matches!(
            err("0.0.100000000000000"),
            VersionError::HexNumberTooLarge { .. }
        ));
        assert!(matches!(
            err("1.0.0-rc.100000000000000"),
            VersionError::HexNumberTooLarge { .. }
        ));
        let pre_65 = format!("1.0.0-{}.{}", "a".repeat(32), "b".repeat(32));
        assert!(matches!(
            err(&pre_65),
            VersionError::HexPreTooLong { len: 65, .. }
        ));
        assert_eq!(
            err("1.0.0+build").to_string(),
            r#"invalid version "1.0.0+build": hex does not allow build metadata"#
        );
    }

    /// An identifier of `[0-9A-Za-z-]` that is not all digits.
    fn alphanumeric() -> impl Strategy<Value = String> {
        "[0-9A-Za-z-]{0,6}[A-Za-z-][0-9A-Za-z-]{0,6}"
    }

    fn pre_identifier() -> impl Strategy<Value = PreIdentifier> {
        prop_oneof![
            any::<u64>().prop_map(PreIdentifier::Numeric),
            alphanumeric().prop_map(PreIdentifier::AlphaNumeric),
        ]
    }

    fn any_version() -> impl Strategy<Value = Version> {
        let build = proptest::option::of(r"[0-9A-Za-z-]{1,5}(\.[0-9A-Za-z-]{1,5}){0,3}");
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(pre_identifier(), 0..4),
            build,
        )
            .prop_map(|(major, minor, patch, pre, build)| Version {
                major,
                minor,
                patch,
                pre,
                build,
            })
    }

    /// Versions drawn from small ranges, so that comparisons often reach the pre-release.
    fn close_version() -> impl Strategy<Value = Version> {
        let id = prop_oneof![
            (0u64..12).prop_map(PreIdentifier::Numeric),
            prop::sample::select(vec!["a", "alpha", "b", "beta", "rc", "rc1", "Z", "-", "0a"])
                .prop_map(|s| PreIdentifier::AlphaNumeric(s.to_owned())),
        ];
        let build =
            proptest::option::of(prop::sample::select(vec!["b1", "b2"]).prop_map(str::to_owned));
        (
            0u64..3,
            0u64..3,
            0u64..3,
            prop::collection::vec(id, 0..4),
            build,
        )
            .prop_map(|(major, minor, patch, pre, build)| Version {
                major,
                minor,
                patch,
                pre,
                build,
            })
    }

    /// Reference model of `Version.compare/2`: a release sorts after its pre-releases, and
    /// pre-releases compare as lists of (kind, number, text) with numbers before text.
    fn model_key(v: &Version) -> ModelKey {
        let pre = v
            .pre
            .iter()
            .map(|id| match id {
                PreIdentifier::Numeric(n) => (0, *n, String::new()),
                PreIdentifier::AlphaNumeric(s) => (1, 0, s.clone()),
            })
            .collect();
        (v.major, v.minor, v.patch, v.pre.is_empty(), pre)
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(version in any_version()) {
            let text = version.to_string();
            let parsed = Version::parse(&text).unwrap();
            prop_assert_eq!(&parsed, &version);
            prop_assert_eq!(parsed.pre(), version.pre());
            prop_assert_eq!(parsed.build(), version.build());
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn ordering_matches_the_reference_model(a in close_version(), b in close_version()) {
            prop_assert_eq!(a.cmp(&b), model_key(&a).cmp(&model_key(&b)));
            prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
            prop_assert_eq!(b.cmp(&a), a.cmp(&b).reverse());
            if a == b {
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
        }

        #[test]
        fn ordering_is_transitive(a in close_version(), b in close_version(), c in close_version()) {
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
        }

        #[test]
        fn ordering_matches_the_model_on_wide_values(a in any_version(), b in any_version()) {
            prop_assert_eq!(a.cmp(&b), model_key(&a).cmp(&model_key(&b)));
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = Version::parse(&s);
            let _ = Version::parse_approximate(&s);
        }

        #[test]
        fn whatever_parses_prints_back_identically(s in r"[0-9]{1,3}\.[0-9.]{1,4}[0-9a-z.+-]{0,8}") {
            if let Ok(parsed) = Version::parse(&s) {
                prop_assert_eq!(parsed.to_string(), s);
            }
        }
    }
}
