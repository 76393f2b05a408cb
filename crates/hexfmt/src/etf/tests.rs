//! Tests of the decoder and encoder: a table of every accepted tag, rejections and limits,
//! property tests, and Erlang itself as the oracle both ways.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;

use super::tags::{
    ATOM_EXT, ATOM_UTF8_EXT, BINARY_EXT, BIT_BINARY_EXT, COMPRESSED, EXPORT_EXT, FUN_EXT,
    LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT, NEW_FUN_EXT, NEW_PID_EXT, NEW_PORT_EXT, NEW_REFERENCE_EXT,
    NEWER_REFERENCE_EXT, NIL_EXT, PID_EXT, PORT_EXT, REFERENCE_EXT, SMALL_TUPLE_EXT, STRING_EXT,
    V4_PORT_EXT,
};
use super::*;

fn int(i: i64) -> Term {
    Term::Integer(i)
}

fn bin(s: &str) -> Term {
    Term::binary(s)
}

fn atom(name: &str) -> Term {
    Term::Atom(name.to_owned())
}

/// Each accepted tag, with what it decodes to; `encoded` marks the bytes `encode` (and
/// OTP 25's `term_to_binary/1`, bytes copied from `erl`) writes for that term.
#[allow(clippy::type_complexity, clippy::too_many_lines)] // one row per case reads best
fn table() -> Vec<(&'static str, Vec<u8>, Term, bool)> {
    let mut tuple256 = vec![131, LARGE_TUPLE_EXT, 0, 0, 1, 0];
    for i in 1..=256 {
        tuple256.extend(encode(&int(i)).into_iter().skip(1));
    }
    let latin1_255 = [[131, ATOM_EXT, 0, 255].as_slice(), &[b'a'; 255]].concat();
    let utf8_255 = [
        [131, ATOM_UTF8_EXT, 1, 254].as_slice(),
        "é".repeat(255).as_bytes(),
    ]
    .concat();
    vec![
        ("small integer", vec![131, 97, 0], int(0), true),
        ("small integer max", vec![131, 97, 255], int(255), true),
        ("integer 256", vec![131, 98, 0, 0, 1, 0], int(256), true),
        (
            "integer -1",
            vec![131, 98, 255, 255, 255, 255],
            int(-1),
            true,
        ),
        (
            "i32 max",
            vec![131, 98, 127, 255, 255, 255],
            int(2_147_483_647),
            true,
        ),
        (
            "i32 min",
            vec![131, 98, 128, 0, 0, 0],
            int(-2_147_483_648),
            true,
        ),
        (
            "big past i32",
            vec![131, 110, 4, 0, 0, 0, 0, 128],
            int(2_147_483_648),
            true,
        ),
        (
            "big below i32",
            vec![131, 110, 4, 1, 1, 0, 0, 128],
            int(-2_147_483_649),
            true,
        ),
        (
            "big -123456789012",
            vec![131, 110, 5, 1, 20, 26, 153, 190, 28],
            int(-123_456_789_012),
            true,
        ),
        (
            "big 2^64",
            vec![131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            Term::BigInt(1 << 64),
            true,
        ),
        (
            "big i128 min",
            [[131, 110, 16, 1].as_slice(), &[0; 15], &[128]].concat(),
            Term::BigInt(i128::MIN),
            true,
        ),
        (
            "big i128 max",
            [[131, 110, 16, 0].as_slice(), &[255; 15], &[127]].concat(),
            Term::BigInt(i128::MAX),
            true,
        ),
        (
            "big with leading zeros",
            vec![131, 110, 2, 0, 5, 0],
            int(5),
            false,
        ),
        ("big of no bytes", vec![131, 110, 0, 0], int(0), false),
        ("big minus zero", vec![131, 110, 1, 1, 0], int(0), false),
        (
            "new float",
            vec![131, 70, 64, 12, 0, 0, 0, 0, 0, 0],
            Term::Float(3.5),
            true,
        ),
        (
            "new float -0.0",
            vec![131, 70, 128, 0, 0, 0, 0, 0, 0, 0],
            Term::Float(-0.0),
            true,
        ),
        (
            "old float",
            [[131, 99].as_slice(), b"3.50000000000000000000e+00", &[0; 5]].concat(),
            Term::Float(3.5),
            false,
        ),
        (
            "atom nil",
            vec![131, 100, 0, 3, b'n', b'i', b'l'],
            Term::Nil,
            true,
        ),
        (
            "atom true",
            vec![131, 100, 0, 4, b't', b'r', b'u', b'e'],
            Term::Bool(true),
            true,
        ),
        (
            "atom false",
            [[131, 100, 0, 5].as_slice(), b"false"].concat(),
            Term::Bool(false),
            true,
        ),
        (
            "atom abc",
            vec![131, 100, 0, 3, 97, 98, 99],
            atom("abc"),
            true,
        ),
        ("atom latin-1", vec![131, 100, 0, 1, 233], atom("é"), true),
        ("atom 255 latin-1", latin1_255, atom(&"a".repeat(255)), true),
        (
            "small atom",
            vec![131, 115, 2, b'o', b'k'],
            atom("ok"),
            false,
        ),
        (
            "small atom latin-1",
            vec![131, 115, 1, 233],
            atom("é"),
            false,
        ),
        (
            "small utf8 atom nil",
            vec![131, 119, 3, b'n', b'i', b'l'],
            Term::Nil,
            false,
        ),
        (
            "small utf8 atom",
            vec![131, 119, 2, 207, 168],
            atom("\u{3e8}"),
            true,
        ),
        (
            "utf8 atom",
            vec![131, 118, 0, 2, b'o', b'k'],
            atom("ok"),
            false,
        ),
        (
            "utf8 atom 255 chars",
            utf8_255,
            atom(&"é".repeat(255)),
            false,
        ),
        ("empty tuple", vec![131, 104, 0], Term::Tuple(vec![]), true),
        (
            "tuple",
            vec![131, 104, 2, 100, 0, 2, b'o', b'k', 109, 0, 0, 0, 1, b'x'],
            Term::Tuple(vec![atom("ok"), bin("x")]),
            true,
        ),
        (
            "large tuple",
            tuple256,
            Term::Tuple((1..=256).map(int).collect()),
            true,
        ),
        ("nil", vec![131, 106], Term::List(vec![]), true),
        (
            "empty string",
            vec![131, 107, 0, 0],
            Term::List(vec![]),
            false,
        ),
        (
            "string",
            vec![131, 107, 0, 3, 1, 2, 3],
            Term::List(vec![int(1), int(2), int(3)]),
            false,
        ),
        (
            "list",
            vec![131, 108, 0, 0, 0, 2, 97, 1, 106, 106],
            Term::List(vec![int(1), Term::List(vec![])]),
            true,
        ),
        (
            "list of small integers",
            vec![131, 108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106],
            Term::List(vec![int(1), int(2), int(3)]),
            true,
        ),
        ("empty binary", vec![131, 109, 0, 0, 0, 0], bin(""), true),
        (
            "binary",
            vec![131, 109, 0, 0, 0, 3, 97, 98, 99],
            bin("abc"),
            true,
        ),
        (
            "empty map",
            vec![131, 116, 0, 0, 0, 0],
            Term::Map(vec![]),
            true,
        ),
        (
            "map",
            vec![131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 1, 97, 97, 1],
            Term::map([("a", int(1))]),
            true,
        ),
        (
            "map in wire order",
            vec![131, 116, 0, 0, 0, 2, 97, 2, 106, 97, 1, 106],
            Term::Map(vec![
                (int(2), Term::List(vec![])),
                (int(1), Term::List(vec![])),
            ]),
            true,
        ),
    ]
}

#[test]
fn table_decodes_and_encodes() {
    for (name, bytes, term, encoded) in table() {
        assert_eq!(decode(&bytes), Ok(term.clone()), "{name}");
        if encoded {
            assert_eq!(encode(&term), bytes, "{name}");
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let mut samples: Vec<Vec<u8>> = table().into_iter().map(|(_, bytes, _, _)| bytes).collect();
    samples.push(encode(&nested_sample()));
    for bytes in samples {
        for end in 0..bytes.len() {
            assert!(decode(&bytes[..end]).is_err(), "{:?} cut at {end}", &bytes);
        }
    }
}

fn nested_sample() -> Term {
    Term::map([
        ("status", int(422)),
        ("message", bin("Validation error(s)")),
        (
            "errors",
            Term::map([("requirements", Term::map([("decimal", bin("nope"))]))]),
        ),
        (
            "list",
            Term::List(vec![Term::Nil, Term::Bool(false), Term::Float(0.5)]),
        ),
        (
            "tuple",
            Term::Tuple(vec![atom("ok"), Term::BigInt(1 << 70), int(-300)]),
        ),
    ])
}

fn at(tag: u8, offset: usize) -> Location {
    Location { tag, offset }
}

#[test]
fn rejected_tags_name_tag_and_offset() {
    let cases = [
        (BIT_BINARY_EXT, "bit string"),
        (COMPRESSED, "compressed term"),
        (NEW_FUN_EXT, "fun"),
        (EXPORT_EXT, "fun"),
        (FUN_EXT, "fun"),
        (NEW_PID_EXT, "pid"),
        (PID_EXT, "pid"),
        (NEW_PORT_EXT, "port"),
        (PORT_EXT, "port"),
        (V4_PORT_EXT, "port"),
        (NEWER_REFERENCE_EXT, "reference"),
        (REFERENCE_EXT, "reference"),
        (NEW_REFERENCE_EXT, "reference"),
    ];
    for (tag, kind) in cases {
        // Inside a list, to check the offset is the tag's.
        let bytes = [131, 108, 0, 0, 0, 1, tag, 0, 0, 0, 0, 0, 0, 0, 0, 106];
        let err = decode(&bytes).unwrap_err();
        assert_eq!(err, EtfError::Rejected(at(tag, 6), kind));
        let message = format!("{kind} with tag {tag} at offset 6 is not accepted");
        assert_eq!(err.to_string(), message);
    }
    for tag in [0, 1, 68, 69, 71, 82, 121, 130, 131, 255] {
        assert_eq!(
            decode(&[131, tag, 0, 0]),
            Err(EtfError::UnknownTag(at(tag, 1)))
        );
    }
    assert_eq!(
        decode(&[131, 7]).unwrap_err().to_string(),
        "unknown tag 7 at offset 1"
    );
    // hexpm's own example: a compressed term at the top level.
    assert_eq!(
        decode(&[131, 80, 0, 0, 0, 1, 120, 156])
            .unwrap_err()
            .to_string(),
        "compressed term with tag 80 at offset 1 is not accepted"
    );
}

#[test]
fn malformed_input_errors() {
    let err = |bytes: &[u8]| decode(bytes).unwrap_err();
    assert_eq!(err(&[]), EtfError::UnexpectedEnd(0));
    assert_eq!(err(&[131]), EtfError::UnexpectedEnd(1));
    assert_eq!(err(&[130, 97, 1]), EtfError::Version(130));
    assert_eq!(err(&[131, 97, 1, 0, 0]), EtfError::TrailingBytes(3));
    let improper = [131, 108, 0, 0, 0, 1, 97, 1, 97, 2];
    assert_eq!(err(&improper), EtfError::ImproperList(at(108, 1), 97));
    assert_eq!(
        err(&improper).to_string(),
        "list with tag 108 at offset 1 is improper: its tail has tag 97, not 106"
    );
    let too_large = EtfError::IntegerTooLarge(at(110, 1));
    assert_eq!(
        err(&[[131, 110, 17, 0].as_slice(), &[1; 17]].concat()),
        too_large
    );
    assert_eq!(
        err(&[[131, 110, 16, 0].as_slice(), &[255; 16]].concat()),
        too_large
    );
    let under_i128 = [[131, 110, 16, 1].as_slice(), &[0; 15], &[129]].concat();
    assert_eq!(err(&under_i128), too_large);
    let large_big = [131, 111, 0, 0, 0, 1, 0, 1];
    assert_eq!(err(&large_big), EtfError::IntegerTooLarge(at(111, 1)));
    let long_atom = [[131, 100, 1, 0].as_slice(), &[b'a'; 256]].concat();
    assert_eq!(err(&long_atom), EtfError::AtomTooLong(at(100, 1)));
    let long_utf8 = [[131, 118, 2, 0].as_slice(), "é".repeat(256).as_bytes()].concat();
    assert_eq!(err(&long_utf8), EtfError::AtomTooLong(at(118, 1)));
    assert_eq!(
        err(&[131, 119, 2, 255, 255]),
        EtfError::InvalidUtf8(at(119, 1))
    );
    for bits in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY].map(f64::to_bits) {
        let bytes = [[131, 70].as_slice(), &bits.to_be_bytes()].concat();
        assert_eq!(err(&bytes), EtfError::InvalidFloat(at(70, 1)));
    }
    let old = |text: &[u8]| [[131, 99].as_slice(), text, &vec![0; 31 - text.len()]].concat();
    assert_eq!(err(&old(b"inf")), EtfError::InvalidFloat(at(99, 1)));
    assert_eq!(err(&old(b"x")), EtfError::InvalidFloat(at(99, 1)));
    let dup = [
        131, 116, 0, 0, 0, 2, 109, 0, 0, 0, 1, 97, 97, 2, 109, 0, 0, 0, 1, 97, 97, 3,
    ];
    assert_eq!(err(&dup), EtfError::DuplicateKey(at(116, 1)));
    assert_eq!(
        err(&dup).to_string(),
        "map with tag 116 at offset 1 has a duplicate key"
    );
    // The same key written two ways (ATOM_EXT, SMALL_ATOM_UTF8_EXT) is still a duplicate,
    // and so are 0.0 and -0.0, as in OTP 25.
    let nil_twice = [
        131, 116, 0, 0, 0, 2, 100, 0, 3, 110, 105, 108, 97, 1, 119, 3, 110, 105, 108, 97, 2,
    ];
    assert_eq!(err(&nil_twice), EtfError::DuplicateKey(at(116, 1)));
    let zeros = Term::Map(vec![
        (Term::Float(0.0), int(1)),
        (Term::Float(-0.0), int(2)),
    ]);
    assert_eq!(err(&encode(&zeros)), EtfError::DuplicateKey(at(116, 1)));
    assert_eq!(
        err(&[131, 109, 0, 0, 0, 9, 1]).to_string(),
        "term with tag 109 at offset 1 runs past the end of the input"
    );
}

fn nested_lists(depth: usize) -> Vec<u8> {
    let mut bytes = vec![131];
    for _ in 0..depth {
        bytes.extend([LIST_EXT, 0, 0, 0, 1]);
    }
    bytes.push(NIL_EXT);
    bytes.extend(std::iter::repeat_n(NIL_EXT, depth));
    bytes
}

#[test]
fn depth_is_capped_without_overflowing_the_stack() {
    assert!(decode(&nested_lists(MAX_DEPTH)).is_ok());
    let too_deep = Err(EtfError::TooDeep(at(LIST_EXT, 1 + 5 * MAX_DEPTH)));
    assert_eq!(decode(&nested_lists(MAX_DEPTH + 1)), too_deep);
    assert_eq!(decode(&nested_lists(1_000_000)), too_deep);
    let mut tuples = vec![131];
    tuples.extend([SMALL_TUPLE_EXT, 1].repeat(100_000));
    let too_deep = Err(EtfError::TooDeep(at(SMALL_TUPLE_EXT, 1 + 2 * MAX_DEPTH)));
    assert_eq!(decode(&tuples), too_deep);
    let mut maps = vec![131];
    maps.extend([MAP_EXT, 0, 0, 0, 1, NIL_EXT].repeat(100_000));
    let too_deep = Err(EtfError::TooDeep(at(MAP_EXT, 1 + 6 * MAX_DEPTH)));
    assert_eq!(decode(&maps), too_deep);
    assert_eq!(
        decode(&nested_lists(MAX_DEPTH + 1))
            .unwrap_err()
            .to_string(),
        "term with tag 108 at offset 501 nests deeper than 100 levels"
    );
}

/// Headers that declare far more than the input holds, for tags with 2- and 4-byte lengths.
fn huge_header(tag: u8, len: u32) -> Vec<u8> {
    let mut bytes = vec![131, tag];
    if matches!(tag, STRING_EXT | ATOM_EXT | ATOM_UTF8_EXT) {
        bytes.extend_from_slice(&(len >> 16).to_be_bytes()[2..]);
    } else {
        bytes.extend_from_slice(&len.to_be_bytes());
    }
    bytes.extend([97; 10]);
    bytes
}

#[test]
fn huge_declared_lengths_error_before_allocating() {
    let start = Instant::now();
    for tag in [BINARY_EXT, LIST_EXT, MAP_EXT, LARGE_TUPLE_EXT] {
        let truncated = Err(EtfError::Truncated(at(tag, 1)));
        assert_eq!(decode(&huge_header(tag, u32::MAX)), truncated);
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    // Every item needs at least one input byte, so this bounds memory per input byte
    // (the module doc's "under 50×", with the duplicate-key set).
    assert!(std::mem::size_of::<Term>() <= 32);
}

fn leaf() -> impl Strategy<Value = Term> + Clone {
    prop_oneof![
        Just(Term::Nil),
        any::<bool>().prop_map(Term::Bool),
        prop::sample::select(vec!["ok", "error", "Hello", "a b"]).prop_map(atom),
        any::<i64>().prop_map(Term::Integer),
        (-300i64..300).prop_map(Term::Integer),
        any::<i128>()
            .prop_filter("outside i64", |i| i64::try_from(*i).is_err())
            .prop_map(Term::BigInt),
        (prop::num::f64::POSITIVE
            | prop::num::f64::NEGATIVE
            | prop::num::f64::NORMAL
            | prop::num::f64::SUBNORMAL
            | prop::num::f64::ZERO)
            .prop_map(Term::Float),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Term::Binary),
        "[a-z_]{0,8}".prop_map(|s| bin(&s)),
    ]
}

/// Term trees up to 4 levels deep, map keys drawn from `key` and kept unique.
fn arb_term(key: impl Strategy<Value = Term> + Clone + 'static) -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Term::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Term::Tuple),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|pairs| {
                let mut unique: Vec<(Term, Term)> = Vec::new();
                for (k, v) in pairs {
                    if unique.iter().all(|(seen, _)| *seen != k) {
                        unique.push((k, v));
                    }
                }
                Term::Map(unique)
            }),
        ]
    })
}

fn binary_key() -> impl Strategy<Value = Term> + Clone {
    "[a-z_]{0,6}".prop_map(|s| bin(&s))
}

proptest! {
    #[test]
    fn round_trips(term in arb_term(leaf())) {
        prop_assert_eq!(decode(&encode(&term)), Ok(term));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let _ = decode(&[[131].as_slice(), &bytes].concat());
    }

    #[test]
    fn corrupted_encodings_never_panic(
        term in arb_term(binary_key()),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = encode(&term);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
    }

    #[test]
    fn huge_lengths_error_quickly(
        tag in prop::sample::select(vec![
            BINARY_EXT, LIST_EXT, MAP_EXT, LARGE_TUPLE_EXT, STRING_EXT, ATOM_EXT, ATOM_UTF8_EXT,
        ]),
        len in 1u32 << 20..,
    ) {
        let start = Instant::now();
        prop_assert!(decode(&huge_header(tag, len)).is_err());
        prop_assert!(start.elapsed() < Duration::from_millis(200));
    }
}

/// The term as Erlang's `io:format("~w", [T])` prints it (maps with up to 32 binary keys).
fn erl_w(term: &Term, out: &mut String) {
    let seq = |items: &[Term], out: &mut String| {
        for (i, item) in items.iter().enumerate() {
            out.push_str(if i == 0 { "" } else { "," });
            erl_w(item, out);
        }
    };
    match term {
        Term::Nil => out.push_str("nil"),
        Term::Bool(b) => write!(out, "{b}").unwrap(),
        Term::Atom(name) => {
            let bare = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
            if bare {
                out.push_str(name);
            } else {
                write!(out, "'{}'", name.replace('\\', "\\\\").replace('\'', "\\'")).unwrap();
            }
        }
        Term::Integer(i) => write!(out, "{i}").unwrap(),
        Term::BigInt(i) => write!(out, "{i}").unwrap(),
        Term::Float(f) => out.push_str(&erl_float(*f)),
        Term::Binary(b) => {
            let bytes: Vec<String> = b.iter().map(u8::to_string).collect();
            write!(out, "<<{}>>", bytes.join(",")).unwrap();
        }
        Term::List(items) => {
            out.push('[');
            seq(items, out);
            out.push(']');
        }
        Term::Tuple(items) => {
            out.push('{');
            seq(items, out);
            out.push('}');
        }
        Term::Map(pairs) => {
            // Small maps print in term order, which for binaries is byte order.
            let mut sorted: Vec<&(Term, Term)> = pairs.iter().collect();
            sorted.sort_by(|a, b| match (&a.0, &b.0) {
                (Term::Binary(a), Term::Binary(b)) => a.cmp(b),
                _ => panic!("erl_w sorts binary keys only"),
            });
            out.push_str("#{");
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                out.push_str(if i == 0 { "" } else { "," });
                erl_w(k, out);
                out.push_str(" => ");
                erl_w(v, out);
            }
            out.push('}');
        }
    }
}

/// `float_to_list(F, [short])`: the shortest digits that read back, in whichever of plain
/// and scientific notation is shorter (plain on a tie), scientific from 2^53 up.
fn erl_float(f: f64) -> String {
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let digits = mantissa.replace('.', "");
    let (first, rest) = digits.split_at(1);
    let scientific = format!("{first}.{}e{exp}", if rest.is_empty() { "0" } else { rest });
    let plain = if exp < 0 {
        format!(
            "0.{}{digits}",
            "0".repeat(usize::try_from(-exp - 1).unwrap())
        )
    } else {
        let int_len = usize::try_from(exp + 1).unwrap();
        if digits.len() <= int_len {
            format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    };
    let body = if f.abs() < 9_007_199_254_740_992.0 && plain.len() <= scientific.len() {
        plain
    } else {
        scientific
    };
    format!("{sign}{body}")
}

/// Whether OTP 25's `term_to_binary(T, [{minor_version, 1}])` writes what `encode` does:
/// yes unless Erlang picks STRING_EXT for a list or its own order for a map's keys.
fn erl_writes_same_bytes(term: &Term) -> bool {
    match term {
        Term::List(items) => {
            let bytes = items.iter().all(|i| matches!(i, Term::Integer(0..=255)));
            !(bytes && !items.is_empty() && items.len() <= 65535)
                && items.iter().all(erl_writes_same_bytes)
        }
        Term::Tuple(items) => items.iter().all(erl_writes_same_bytes),
        Term::Map(pairs) => {
            pairs.len() <= 1
                && pairs
                    .iter()
                    .all(|(k, v)| erl_writes_same_bytes(k) && erl_writes_same_bytes(v))
        }
        _ => true,
    }
}

/// Erlang literals, with the term each must decode to.
fn erlang_literals() -> Vec<(&'static str, Term)> {
    vec![
        (
            r#"#{<<"reason">> => <<"security">>, <<"message">> => <<"CVE">>}"#,
            // Erlang writes small maps in key order.
            Term::map([("message", bin("CVE")), ("reason", bin("security"))]),
        ),
        ("[1,2,3]", Term::List(vec![int(1), int(2), int(3)])),
        (r#"{ok, <<"x">>}"#, Term::Tuple(vec![atom("ok"), bin("x")])),
        ("-123456789012", int(-123_456_789_012)),
        ("1 bsl 100", Term::BigInt(1 << 100)),
        ("3.5", Term::Float(3.5)),
        ("nil", Term::Nil),
        (
            "[true, false, 'Hello']",
            Term::List(vec![Term::Bool(true), Term::Bool(false), atom("Hello")]),
        ),
        (r#""abc""#, Term::List(vec![int(97), int(98), int(99)])),
        ("[]", Term::List(vec![])),
        (
            "[300, -1, <<>>]",
            Term::List(vec![int(300), int(-1), bin("")]),
        ),
        (
            "list_to_tuple(lists:seq(1, 300))",
            Term::Tuple((1..=300).map(int).collect()),
        ),
        ("lists:duplicate(70000, 7)", Term::List(vec![int(7); 70000])),
        (
            r#"#{<<"status">> => 422, <<"errors">> => #{<<"name">> => <<"taken">>}}"#,
            Term::map([
                ("errors", Term::map([("name", bin("taken"))])),
                ("status", int(422)),
            ]),
        ),
    ]
}

fn unique_temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("hexfmt-etf-erl-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Has `erl` decode each of `ours` with `binary_to_term(Bin, [safe])` into `N.txt` (`~w`)
/// and `N.re` (its own encoding), and encode each of `literals` into `litN-V.etf` for
/// minor versions 0 (FLOAT_EXT), 1 and 2 (UTF-8 atoms) and `litN.etf` (the default).
fn run_erl(dir: &Path, ours: &[Vec<u8>], literals: &[&str]) {
    for (i, bytes) in ours.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.etf")), bytes).unwrap();
    }
    let script = format!(
        r#"
        _ = ['Hello', 'a b'],
        [Dir, N] = init:get_plain_arguments(),
        Path = fun(Parts) -> filename:join(Dir, lists:concat(Parts)) end,
        lists:foreach(fun(I) ->
            {{ok, Bin}} = file:read_file(Path([I, ".etf"])),
            {{Text, Re}} = try binary_to_term(Bin, [safe]) of
                T -> {{io_lib:format("~w", [T]), term_to_binary(T, [{{minor_version, 1}}])}}
            catch C:R -> {{io_lib:format("~p:~p", [C, R]), <<>>}}
            end,
            ok = file:write_file(Path([I, ".txt"]), unicode:characters_to_binary(Text)),
            ok = file:write_file(Path([I, ".re"]), Re)
        end, lists:seq(0, list_to_integer(N) - 1)),
        Lits = [{}],
        lists:foreach(fun({{I, T}}) ->
            ok = file:write_file(Path(["lit", I, ".etf"]), term_to_binary(T)),
            [ok = file:write_file(Path(["lit", I, "-", V, ".etf"]),
                                  term_to_binary(T, [{{minor_version, V}}]))
             || V <- [0, 1, 2]]
        end, lists:zip(lists:seq(0, length(Lits) - 1), Lits)),
        halt()."#,
        literals.join(",\n")
    );
    let output = std::process::Command::new("erl")
        .args(["-noshell", "-eval", &script, "-extra"])
        .arg(dir)
        .arg(ours.len().to_string())
        .current_dir(dir)
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run erl ({e}); this test needs Erlang: apt-get install -y erlang")
        });
    assert!(
        output.status.success(),
        "erl failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Erlang is the oracle both ways: its safe `binary_to_term` reads what `encode` writes as
/// the same term (and re-encodes it byte for byte where its choices match ours), and
/// `decode` reads what its `term_to_binary` writes.
#[test]
fn erlang_agrees() {
    let mut terms = fixed_terms();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = arb_term(binary_key());
    for _ in 0..30 {
        terms.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    let ours: Vec<Vec<u8>> = terms.iter().map(encode).collect();
    let literals = erlang_literals();
    let sources: Vec<&str> = literals.iter().map(|(source, _)| *source).collect();
    let dir = unique_temp_dir();
    run_erl(&dir, &ours, &sources);

    for (i, (term, bytes)) in terms.iter().zip(&ours).enumerate() {
        let mut expected = String::new();
        erl_w(term, &mut expected);
        let printed = std::fs::read_to_string(dir.join(format!("{i}.txt"))).unwrap();
        assert_eq!(printed, expected, "term {i}: {term:?}");
        if erl_writes_same_bytes(term) {
            let re = std::fs::read(dir.join(format!("{i}.re"))).unwrap();
            assert_eq!(&re, bytes, "term {i}: {term:?}");
        }
    }
    for (i, (source, expected)) in literals.iter().enumerate() {
        for version in ["", "-0", "-1", "-2"] {
            let name = format!("lit{i}{version}.etf");
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            assert_eq!(decode(&bytes).as_ref(), Ok(expected), "{source} as {name}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Boundaries the generator seldom reaches: integer limits, a large tuple, float printing.
fn fixed_terms() -> Vec<Term> {
    vec![
        nested_sample(),
        int(i64::MIN),
        int(i64::MAX),
        Term::BigInt(i128::MIN),
        Term::BigInt(i128::MAX),
        Term::Tuple((0..300).map(|i| int(i * 1000)).collect()),
        Term::List(vec![
            Term::Float(f64::MAX),
            Term::Float(5e-324),
            Term::Float(-0.0),
        ]),
        Term::List(
            [1e3, 100.0, 1e-5, 0.001_234, 1.2e5, 9_007_199_254_740_992.0]
                .map(Term::Float)
                .to_vec(),
        ),
    ]
}
