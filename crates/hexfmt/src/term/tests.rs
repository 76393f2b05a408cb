//! Tests of the term-file parser and writer, and the `arb_term` strategy other modules reuse.

use super::*;
use proptest::prelude::*;

fn parse_one(text: &str) -> Result<Term, TermError> {
    let mut terms = parse_terms(format!("{text}.").as_bytes())?;
    assert_eq!(terms.len(), 1, "{text}");
    Ok(terms.remove(0))
}

fn ok(text: &str) -> Term {
    parse_one(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> String {
    match parse_terms(text.as_bytes()) {
        Ok(terms) => panic!("{text} parsed as {terms:?}"),
        Err(e) => e.to_string(),
    }
}

fn written(term: &Term) -> String {
    let mut out = String::new();
    write_term(term, &mut out);
    out
}

fn ints(values: &[i128]) -> Term {
    Term::List(values.iter().copied().map(Term::Integer).collect())
}

#[test]
fn parses_every_allowed_kind_of_term() {
    let text = concat!(
        "%% a comment\n",
        r#"{<<"name">>, <<"x"/utf8>>, <<>>, <<1,2,255>>, "str", 'quoted atom',"#,
        "\n  [true, false | [nil]], #{<<\"k\">> => [], 1 => {}}, -12, 16#fF, $a, x}.\n",
        "{x@y, 'Ünï', ab_C9, maybe, else}. % trailing comment",
    );
    let terms = parse_terms(text.as_bytes()).unwrap();
    let expected_first = Term::Tuple(vec![
        Term::binary("name"),
        Term::binary("x"),
        Term::Binary(vec![]),
        Term::Binary(vec![1, 2, 255]),
        Term::String("str".into()),
        Term::atom("quoted atom"),
        Term::List(vec![
            Term::atom("true"),
            Term::atom("false"),
            Term::atom("nil"),
        ]),
        Term::Map(vec![
            (Term::binary("k"), Term::List(vec![])),
            (Term::Integer(1), Term::Tuple(vec![])),
        ]),
        Term::Integer(-12),
        Term::Integer(255),
        Term::Integer(97),
        Term::atom("x"),
    ]);
    // `maybe` and `else` are atoms to Erlang before OTP 27, which writes them bare.
    let second = ["x@y", "Ünï", "ab_C9", "maybe", "else"];
    let expected_second = Term::Tuple(second.map(Term::atom).to_vec());
    assert_eq!(terms, vec![expected_first, expected_second]);
    assert_eq!(parse_terms(b"").unwrap(), vec![]);
    assert_eq!(parse_terms(b"  % only a comment").unwrap(), vec![]);
}

#[test]
fn reads_erlang_escapes() {
    let parsed = ok(r#""\n\t\"\\\r\e\s\d\b\f\v\x41\x{1F600}\101\7\^A\^z\q\'""#);
    let expected = "\n\t\"\\\r\x1b \x7f\x08\x0c\x0bA\u{1F600}A\x07\x01\x1aq'";
    assert_eq!(parsed, Term::String(expected.into()));
    assert_eq!(ok(r#"<<"\x{e9}">>"#), Term::Binary(vec![0xe9]));
    assert_eq!(ok(r#"<<"\x{e9}"/utf8>>"#), Term::binary("é"));
    assert_eq!(ok(r"'it\'s'"), Term::atom("it's"));
    assert_eq!(ok(r"$\n"), Term::Integer(10));
    assert_eq!(ok("$ "), Term::Integer(32));
    assert!(err(r#""\x{110000}"."#).contains("not a unicode character"));
    assert!(err(r#""\xZ0"."#).contains("two hex digits"));
    assert!(err(r#""\x{12"."#).contains("closing '}'"));
}

#[test]
fn reads_integers() {
    assert_eq!(ok("- 5"), Term::Integer(-5));
    assert_eq!(ok("+7"), Term::Integer(7));
    assert_eq!(ok("2#1010"), Term::Integer(10));
    assert_eq!(ok("36#Zz"), Term::Integer(35 * 36 + 35));
    assert_eq!(ok("1_000_000"), Term::Integer(1_000_000));
    assert_eq!(ok(&i128::MAX.to_string()), Term::Integer(i128::MAX));
    assert_eq!(ok(&i128::MIN.to_string()), Term::Integer(i128::MIN));
    assert!(err("170141183460469231731687303715884105728.").contains("128 bits"));
    assert!(err("999999999999999999999999999999999999999999.").contains("too large"));
    assert!(err("37#1.").contains("base must be 2 to 36"));
    assert!(err("2#3.").contains("not in its base"));
}

#[test]
fn reads_list_tails_and_adjacent_strings() {
    assert_eq!(ok("[1 | [2, 3]]"), ints(&[1, 2, 3]));
    assert_eq!(
        ok(r#"[a | "bc"]"#),
        Term::List(vec![Term::atom("a"), Term::Integer(98), Term::Integer(99)])
    );
    assert_eq!(ok(r#""ab" "cd""#), Term::String("abcd".into()));
    assert_eq!(
        ok(r#"<<"ab" "cd", 33, $!/utf8, 233/utf8>>"#),
        Term::Binary(b"abcd!!\xc3\xa9".to_vec())
    );
    // Erlang cannot tell "ab" from [97,98]; the parser keeps what was written.
    assert_eq!(ok("[97,98]"), ints(&[97, 98]));
}

#[test]
fn rejects_what_a_safe_term_file_may_not_hold() {
    let cases = [
        ("{a, 1.5}.", "line 1: floats are not allowed"),
        ("\n\n{a, fun() -> ok end}.", "line 3: funs are not allowed"),
        ("{a, X}.", "line 1: variables are not allowed"),
        ("{a, _}.", "variables are not allowed"),
        ("#rec{a = 1}.", "records are not allowed"),
        ("<0.1.0>.", "pids, ports and references are not allowed"),
        ("?MACRO.", "macros are not allowed"),
        ("{a, <<\"abc}.", "line 1: unterminated string"),
        (
            "{a,\n <<\"abc\"}.",
            "line 2: unexpected '}', expected ',' or '>>'",
        ),
        (
            "{a,\n <<\"abc\".",
            "line 2: unexpected '.', expected ',' or '>>'",
        ),
        ("'abc", "unterminated quoted atom"),
        ("\"\\", "unterminated escape sequence"),
        ("$", "unterminated character literal"),
        ("[a | b].", "line 1: improper list"),
        ("[a, b | <<>>].", "improper list"),
        (
            "{a, b}",
            "unexpected end of input, expected '.' after the term",
        ),
        ("{a, b}. {c", "unexpected end of input, expected ',' or '}'"),
        ("{a b}.", "unexpected atom 'b', expected ',' or '}'"),
        ("{a, case}.", "unexpected reserved word 'case'"),
        ("#{a := 1}.", "unexpected character ':'"),
        ("#{a}.", "unexpected '}', expected '=>'"),
        ("<<256>>.", "invalid binary segment: 256 is not a byte"),
        ("<<\"€\">>.", "does not fit in a byte; add /utf8"),
        ("<<\"a\"/binary>>.", "type 'binary' is not supported"),
        ("<<a>>.", "expected a string or integer segment"),
        ("- a.", "expected an integer after the sign"),
        (
            "{a, 'b'}.\n{c, \"d\"}.\n{e, f}\n{g, h}.",
            "line 4: unexpected '{', expected '.'",
        ),
    ];
    for (input, message) in cases {
        let error = err(input);
        assert!(
            error.contains(message),
            "{input:?}: {error:?} lacks {message:?}"
        );
    }
}

#[test]
fn limits_nesting_depth_without_overflowing_the_stack() {
    let nest = |depth: usize, open: &str, close: &str| {
        format!("{}x{}.", open.repeat(depth), close.repeat(depth))
    };
    assert!(parse_terms(nest(MAX_DEPTH, "[", "]").as_bytes()).is_ok());
    assert!(parse_terms(nest(MAX_DEPTH, "#{1 => ", "}").as_bytes()).is_ok());
    let too_deep = err(&nest(MAX_DEPTH + 1, "{", "}"));
    assert_eq!(too_deep, "line 1: terms nest deeper than 100 levels");
    let bomb = "[".repeat(10_000);
    assert!(err(&bomb).contains("nest deeper"));
    assert!(err(&"{[#{a => ".repeat(5_000)).contains("nest deeper"));
}

#[test]
fn limits_input_size() {
    let mut exactly = b"<<\"".to_vec();
    exactly.resize(MAX_INPUT_BYTES - 4, b'a');
    exactly.extend_from_slice(b"\">>.");
    assert_eq!(exactly.len(), MAX_INPUT_BYTES);
    assert!(parse_terms(&exactly).is_ok());
    let mut over = exactly;
    over.push(b'\n');
    let error = parse_terms(&over).unwrap_err();
    assert!(matches!(error, TermError::TooLarge(1_048_577)), "{error}");
    assert_eq!(
        error.to_string(),
        "term file is 1048577 bytes, over the 1048576-byte limit"
    );
}

#[test]
fn falls_back_to_latin1_when_not_utf8() {
    let terms = parse_terms(b"{<<\"d\">>, <<\"Caf\xe9\">>, \"Jos\xe9\", '\xe9t\xe9'}.").unwrap();
    let expected = Term::Tuple(vec![
        Term::binary("d"),
        Term::Binary(b"Caf\xe9".to_vec()),
        Term::String("José".into()),
        Term::atom("été"),
    ]);
    assert_eq!(terms, vec![expected.clone()]);
    let Term::Tuple(items) = &expected else {
        unreachable!()
    };
    assert_eq!(items[1].as_text(), None);
    assert_eq!(items[1].to_text().as_deref(), Some("Café"));
    // Valid UTF-8 is never read as Latin-1.
    assert_eq!(ok("<<\"é\"/utf8>>").as_text(), Some("é"));
}

#[test]
fn text_accessors() {
    assert_eq!(Term::String("ab".into()).as_text(), Some("ab"));
    assert_eq!(ints(&[97, 98]).as_text(), None);
    assert_eq!(
        ints(&[97, 0x1F600]).to_text().as_deref(),
        Some("a\u{1F600}")
    );
    assert_eq!(ints(&[]).to_text().as_deref(), Some(""));
    assert_eq!(ints(&[0xD800]).to_text(), None);
    assert_eq!(ints(&[-1]).to_text(), None);
    assert_eq!(Term::atom("a").to_text(), None);
    assert_eq!(Term::atom("true").as_bool(), Some(true));
    assert_eq!(Term::binary("true").as_bool(), None);
    assert_eq!(Term::String(String::new()).as_list(), Some(&[][..]));
    let kv = ok("[{a, 1}, {b, 2}]");
    let pairs = kv.as_key_values().unwrap();
    assert_eq!(
        pairs,
        vec![
            (&Term::atom("a"), &Term::Integer(1)),
            (&Term::atom("b"), &Term::Integer(2))
        ]
    );
    assert_eq!(ok("[{a, 1}, {b}]").as_key_values(), None);
    assert_eq!(ok("#{a => 1}").as_key_values().map(|p| p.len()), Some(1));
}

#[test]
fn writes_like_erlang() {
    let cases = [
        (Term::binary("mix"), r#"<<"mix">>"#),
        (Term::binary("José"), r#"<<"José"/utf8>>"#),
        (Term::binary(""), "<<>>"),
        (
            Term::binary("a\"b\\c\nd\x01\u{85}"),
            r#"<<"a\"b\134c\nd\001\205"/utf8>>"#,
        ),
        (Term::Binary(vec![255, 0, 1]), "<<255,0,1>>"),
        (Term::String("it's \"x\"".into()), r#""it's \"x\"""#),
        (Term::atom("true"), "true"),
        (Term::atom("a@b_C1"), "a@b_C1"),
        (Term::atom("fun"), "'fun'"),
        (Term::atom("maybe"), "'maybe'"),
        (Term::atom("Upper"), "'Upper'"),
        (Term::atom("it's"), r"'it\'s'"),
        (Term::atom(""), "''"),
        (Term::Integer(-3), "-3"),
        (ints(&[1, 2]), "[1,2]"),
        (
            Term::Tuple(vec![Term::binary("k"), Term::List(vec![])]),
            r#"{<<"k">>,[]}"#,
        ),
        (
            Term::Map(vec![
                (Term::atom("a"), Term::Integer(1)),
                (Term::Integer(2), Term::Map(vec![])),
            ]),
            "#{a => 1,2 => #{}}",
        ),
    ];
    for (term, text) in cases {
        assert_eq!(written(&term), text);
        assert_eq!(term.to_string(), text);
        assert_eq!(ok(text), term, "{text}");
    }
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[\\x00-\\x{FF}\"'\\\\]{0,12}",
        proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// Terms of bounded depth; atoms include names that need quoting.
pub(crate) fn arb_term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        any::<i128>().prop_map(Term::Integer),
        prop_oneof![Just("true"), Just("false")].prop_map(Term::atom),
        arb_text().prop_map(Term::Atom),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Term::Binary),
        arb_text().prop_map(|s| Term::Binary(s.into_bytes())),
        arb_text().prop_map(Term::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Term::List),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Term::Tuple),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Term::Map),
        ]
    })
}

proptest! {
    #[test]
    fn written_terms_read_back(term in arb_term()) {
        let mut text = written(&term);
        text.push_str(".\n");
        prop_assert_eq!(parse_terms(text.as_bytes()).map_err(|e| e.to_string()), Ok(vec![term]));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_terms(&bytes);
    }

    #[test]
    fn term_like_text_never_panics(text in "[\\[\\]{}<>#,.|/=$'\"\\\\0-9a-zA-Z_ %\\n+-]{0,64}") {
        let _ = parse_terms(text.as_bytes());
    }
}
