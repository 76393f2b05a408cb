//! Cross-checks `hexfmt`'s versions and requirements against an independent implementation:
//! the `hexpm` crate (the Gleam compiler's Hex client). Its versions are `u32`-based and its
//! lexer reads identifiers starting with `an`/`or` as keywords, so the generators below stay
//! inside what both implementations accept.

use std::cmp::Ordering;

use hexfmt::requirement::Requirement;
use hexfmt::version::Version;
use hexpm::version::{Range as HexpmRange, Version as HexpmVersion};
use proptest::prelude::*;

fn ours(text: &str) -> Version {
    Version::parse(text).unwrap_or_else(|e| panic!("hexfmt rejects {text:?}: {e}"))
}

fn theirs(text: &str) -> HexpmVersion {
    HexpmVersion::parse(text).unwrap_or_else(|e| panic!("hexpm rejects {text:?}: {e}"))
}

fn their_range(text: &str) -> HexpmRange {
    HexpmRange::new(text.to_owned()).unwrap_or_else(|e| panic!("hexpm rejects {text:?}: {e}"))
}

/// A number, mostly small so that versions collide and comparisons reach the pre-release.
fn number() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..4, 1 => any::<u32>()]
}

/// A pre-release identifier both parsers read the same way.
fn identifier() -> BoxedStrategy<String> {
    let word = prop_oneof![
        prop::sample::select(vec![
            "alpha", "beta", "rc", "dev", "Z", "A1", "b0", "x-y", "rc-1", "RC", "1a", "0x", "a",
        ])
        .prop_map(str::to_owned),
        "[0-9]?[a-zA-Z][a-zA-Z0-9]{0,3}(-[a-zA-Z][a-zA-Z0-9]{0,2})?".prop_filter(
            "hexpm lexes `an`/`or` as keywords",
            |s| {
                !s.split('-')
                    .any(|part| part.starts_with("an") || part.starts_with("or"))
            }
        ),
    ];
    prop_oneof![
        2 => (0u32..12).prop_map(|n| n.to_string()),
        1 => any::<u32>().prop_map(|n| n.to_string()),
        3 => word,
    ]
    .boxed()
}

/// A version string both parsers accept.
fn version_text() -> impl Strategy<Value = String> {
    let pre = prop::collection::vec(identifier(), 0..4);
    let build = prop::option::weighted(0.2, "b[a-z0-9]{0,3}(\\.[0-9]{1,3})?");
    (number(), number(), number(), pre, build).prop_map(|(major, minor, patch, pre, build)| {
        let mut text = format!("{major}.{minor}.{patch}");
        if !pre.is_empty() {
            text = format!("{text}-{}", pre.join("."));
        }
        if let Some(build) = build {
            text = format!("{text}+{build}");
        }
        text
    })
}

/// A clause that means the same to `hexpm` as to Elixir for the versions it is tested on.
/// `stable_only`: operands of `>`, `<=` and `~>` too (`hexpm` reads `> X` as `>= X.bump_patch`
/// and uses `< X.Y+1.0` rather than `< X.Y+1.0-0` for `~>`, which differ only on pre-releases).
fn clause(stable_only: bool) -> BoxedStrategy<String> {
    let small = || 0u32..4;
    let stable = (small(), small(), small()).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"));
    let pre = prop::sample::select(vec!["-0", "-rc.1", "-dev", ""]);
    let any_operand = (stable.clone(), pre).prop_map(|(v, pre)| format!("{v}{pre}"));
    let plain = (
        prop::sample::select(vec!["== ", "", ">= ", ">=", "< "]),
        any_operand.clone(),
    )
        .prop_map(|(op, v)| format!("{op}{v}"));
    if !stable_only {
        return plain.boxed();
    }
    let edgy = (prop::sample::select(vec!["> ", "<= ", "~> ", "~>"]), stable);
    let approx_short = (small(), small()).prop_map(|(a, b)| format!("~> {a}.{b}"));
    let approx_pre = any_operand.prop_map(|v| format!("~> {v}"));
    prop_oneof![
        plain,
        edgy.prop_map(|(op, v)| format!("{op}{v}")),
        approx_short,
        approx_pre
    ]
    .boxed()
}

fn requirement_text(stable_only: bool) -> impl Strategy<Value = String> {
    let joiner = prop::sample::select(vec![" and ", " or "]);
    (
        clause(stable_only),
        prop::collection::vec((joiner, clause(stable_only)), 0..3),
    )
        .prop_map(|(first, rest)| {
            rest.into_iter()
                .fold(first, |acc, (joiner, c)| acc + joiner + &c)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sorting_agrees_with_hexpm(texts in prop::collection::vec(version_text(), 200..400)) {
        let our_versions: Vec<Version> = texts.iter().map(|t| ours(t)).collect();
        let their_versions: Vec<HexpmVersion> = texts.iter().map(|t| theirs(t)).collect();
        let mut our_order: Vec<usize> = (0..texts.len()).collect();
        let mut their_order = our_order.clone();
        our_order.sort_by(|&a, &b| our_versions[a].cmp(&our_versions[b]));
        their_order.sort_by(|&a, &b| their_versions[a].cmp(&their_versions[b]));
        let sorted = |order: &[usize]| order.iter().map(|&i| texts[i].clone()).collect::<Vec<_>>();
        prop_assert_eq!(sorted(&our_order), sorted(&their_order));
    }

    #[test]
    fn pairwise_comparison_agrees_with_hexpm(a in version_text(), b in version_text()) {
        let ordering: Ordering = ours(&a).cmp(&ours(&b));
        prop_assert_eq!(ordering, theirs(&a).cmp(&theirs(&b)), "{} vs {}", a, b);
        // Both print the canonical form they parsed.
        prop_assert_eq!(ours(&a).to_string(), theirs(&a).to_string());
    }

    #[test]
    fn stable_versions_match_like_hexpm(
        text in requirement_text(true),
        (major, minor, patch) in (number(), number(), number()),
    ) {
        let version = ours(&format!("{major}.{minor}.{patch}"));
        let requirement = Requirement::parse(&text).unwrap();
        let expected = their_range(&text).to_pubgrub().contains(&theirs(&version.to_string()));
        prop_assert_eq!(requirement.matches(&version, false), expected, "{} on {}", text, version);
        prop_assert_eq!(requirement.matches(&version, true), expected, "{} on {}", text, version);
    }

    #[test]
    fn plain_ranges_match_like_hexpm_with_allow_pre(
        text in requirement_text(false),
        version in version_text(),
    ) {
        let requirement = Requirement::parse(&text).unwrap();
        let expected = their_range(&text).to_pubgrub().contains(&theirs(&version));
        prop_assert_eq!(requirement.matches(&ours(&version), true), expected, "{} on {}", text, version);
    }
}

#[test]
fn both_accept_and_reject_the_same_versions() {
    let valid = [
        "0.0.0",
        "1.0.0",
        "1.2.3-rc.1",
        "1.0.0-x-y.7",
        "1.0.0+build.5",
        "1.0.0-0a+b",
    ];
    for text in valid {
        assert!(Version::parse(text).is_ok(), "hexfmt rejects {text:?}");
        assert!(HexpmVersion::parse(text).is_ok(), "hexpm rejects {text:?}");
    }
    let invalid = [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.01.0",
        "1.0.0-01",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-rc..1",
        "1.0.0-rc_1",
        "v1.0.0",
        "1.0-rc.1",
    ];
    for text in invalid {
        assert!(Version::parse(text).is_err(), "hexfmt accepts {text:?}");
        assert!(HexpmVersion::parse(text).is_err(), "hexpm accepts {text:?}");
    }
}

#[test]
fn both_accept_and_reject_the_same_requirements() {
    let valid = [
        "~> 1.0",
        "~>0.3",
        ">=1.0.0  and  <2.0.0",
        "1.0.0 or 2.0.0",
        "~> 2.1.3-dev",
    ];
    for text in valid {
        assert!(Requirement::parse(text).is_ok(), "hexfmt rejects {text:?}");
        assert!(
            HexpmRange::new(text.to_owned()).is_ok(),
            "hexpm rejects {text:?}"
        );
    }
    // `!=` is the one deliberate difference: hexpm accepts it, hex.pm (and hexfmt) refuse it.
    let invalid = [
        ">= 1.0",
        "1.0",
        "~> 1",
        ">= 1.0.0 and",
        ">= 1.0.0 < 2.0.0",
        "> = 1.0.0",
    ];
    for text in invalid {
        assert!(Requirement::parse(text).is_err(), "hexfmt accepts {text:?}");
        assert!(
            HexpmRange::new(text.to_owned()).is_err(),
            "hexpm accepts {text:?}"
        );
    }
    assert!(Requirement::parse("!= 1.0.0").is_err());
}
