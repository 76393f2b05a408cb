//! Erlang term files: a safe parser for what `file:consult/1` reads, restricted like `hex_core`'s
//! `safe_erl_term` to binaries, strings, integers, atoms, lists, tuples and maps, and a writer
//! whose output `file:consult/1` (and `hex_core`) read back as the same terms.
//!
//! This module owns the syntax only; what the keys of a `metadata.config` mean lives in
//! `metadata.rs`. It implements the reading rules of HEX-PROTOCOL.md §3.5 and §8 item 19:
//! UTF-8 with a Latin-1 fallback, a 1 MiB limit, no floats or funs, and atoms kept as plain
//! names (Rust has no atom table to exhaust; callers accept only the atoms they know).
//! Nesting is capped at [`MAX_DEPTH`] so hostile input can never overflow the stack.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Largest term file accepted, in bytes: `hex_core`'s (≥ 0.16) `metadata.config` limit.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Deepest nesting of lists, tuples and maps accepted.
pub const MAX_DEPTH: usize = 100;

/// Words Erlang reserves, which can only be written as atoms when quoted.
const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
    "rem", "try", "when", "xor",
];

/// Reserved since OTP 27 only, so older Erlang writes them bare: read them as atoms, but
/// quote them when writing so every release reads the output.
const RESERVED_SINCE_OTP_27: &[&str] = &["else", "maybe"];

const NO_TERMS: &[Term] = &[];

/// One Erlang term of the subset a Hex term file may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// An integer. Erlang's are unbounded; anything outside `i128` is rejected when parsing.
    Integer(i128),
    /// An atom, by name (`true`, `false`, `nil`, …), without quotes.
    Atom(String),
    /// A binary `<<…>>`: raw bytes, UTF-8 when written `<<"…"/utf8>>`.
    Binary(Vec<u8>),
    /// A string literal `"…"`. Erlang sees a list of character codes; it is kept apart from
    /// [`Term::List`] so text written as a string can be recognised and written back as one.
    String(String),
    /// A proper list `[…]`.
    List(Vec<Term>),
    /// A tuple `{…}`.
    Tuple(Vec<Term>),
    /// A map `#{K => V}`, pairs in source order; duplicates are kept (Erlang keeps the last).
    Map(Vec<(Term, Term)>),
}

/// Why a term file could not be read. The first field of every variant but
/// [`TermError::TooLarge`] is the line (counted from 1) where the problem starts.
#[derive(Debug, thiserror::Error)]
pub enum TermError {
    /// The input, of this many bytes, is over [`MAX_INPUT_BYTES`].
    #[error("term file is {0} bytes, over the {limit}-byte limit", limit = MAX_INPUT_BYTES)]
    TooLarge(usize),
    /// Lists, tuples and maps nest deeper than [`MAX_DEPTH`] at this opening bracket.
    #[error("line {0}: terms nest deeper than {limit} levels", limit = MAX_DEPTH)]
    TooDeep(usize),
    /// Valid Erlang that a safe term file may not hold; what, in the plural (`"floats"`).
    #[error("line {0}: {1} are not allowed in a term file")]
    NotAllowed(usize, &'static str),
    /// A token the grammar does not allow here: the token found, and what was expected.
    #[error("line {0}: unexpected {1}, expected {2}")]
    Unexpected(usize, String, &'static str),
    /// A string, quoted atom, character literal or escape that the input ends inside of.
    #[error("line {0}: unterminated {1}")]
    Unterminated(usize, &'static str),
    /// A list whose tail after `|` is not a list; the line of the `|`.
    #[error("line {0}: improper list (the tail after '|' is not a list)")]
    ImproperList(usize),
    /// An integer, escape sequence or binary segment that is malformed or out of range:
    /// which of them, and why.
    #[error("line {0}: invalid {1}: {2}")]
    Invalid(usize, &'static str, String),
}

/// Parses a whole term file, as `file:consult/1` does: a sequence of terms, each ended by `.`,
/// separated by whitespace and `%` comments. The bytes are read as UTF-8, or as Latin-1 when
/// they are not valid UTF-8.
pub fn parse_terms(input: &[u8]) -> Result<Vec<Term>, TermError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(TermError::TooLarge(input.len()));
    }
    let chars: Vec<char> = match std::str::from_utf8(input) {
        Ok(text) => text.chars().collect(),
        // Latin-1 maps each byte to the code point of the same value.
        Err(_) => input.iter().copied().map(char::from).collect(),
    };
    let lexer = Lexer {
        chars,
        pos: 0,
        line: 1,
    };
    let mut parser = Parser {
        lexer,
        peeked: None,
    };
    let mut terms = Vec::new();
    while *parser.peek()? != Token::Eof {
        terms.push(parser.term(0)?);
        parser.expect(".", "'.' after the term")?;
    }
    Ok(terms)
}

/// Appends `term` in Erlang syntax, without the final `.`. Binaries are written as
/// `<<"…">>` (`/utf8` when not ASCII) or as a byte list when not UTF-8, the way `~p` does;
/// escapes are limited to those `hex_core`'s own lexer reads too.
pub fn write_term(term: &Term, out: &mut String) {
    match term {
        Term::Integer(n) => out.push_str(&n.to_string()),
        Term::Atom(name) if is_bare_atom(name) => out.push_str(name),
        Term::Atom(name) => write_quoted(name, '\'', out),
        Term::Binary(bytes) => match std::str::from_utf8(bytes) {
            Ok("") => out.push_str("<<>>"),
            Ok(text) => {
                out.push_str("<<");
                write_quoted(text, '"', out);
                out.push_str(if text.is_ascii() { ">>" } else { "/utf8>>" });
            }
            Err(_) => {
                let bytes: Vec<String> = bytes.iter().map(u8::to_string).collect();
                let _ = write!(out, "<<{}>>", bytes.join(","));
            }
        },
        Term::String(text) => write_quoted(text, '"', out),
        Term::List(items) => write_sequence(('[', ']'), items.iter(), out, write_term),
        Term::Tuple(items) => write_sequence(('{', '}'), items.iter(), out, write_term),
        Term::Map(pairs) => {
            out.push('#');
            write_sequence(('{', '}'), pairs.iter(), out, |(key, value), out| {
                write_term(key, out);
                out.push_str(" => ");
                write_term(value, out);
            });
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_term(self, &mut out);
        f.write_str(&out)
    }
}

impl Term {
    /// A binary holding `text` as UTF-8, the way Hex stores text.
    pub fn binary(text: &str) -> Term {
        Term::Binary(text.as_bytes().to_vec())
    }

    /// An atom with this name.
    pub fn atom(name: &str) -> Term {
        Term::Atom(name.to_owned())
    }

    /// The text of a binary that is valid UTF-8, or of a string literal.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Term::Binary(bytes) => std::str::from_utf8(bytes).ok(),
            Term::String(text) => Some(text),
            _ => None,
        }
    }

    /// Like [`Term::as_text`], but also accepts what old packages wrote: binaries that are
    /// not UTF-8 (read as Latin-1) and lists of character codes (`[]` being `""`).
    pub fn to_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Term::Binary(bytes) => Some(match std::str::from_utf8(bytes) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => Cow::Owned(bytes.iter().copied().map(char::from).collect()),
            }),
            Term::String(text) => Some(Cow::Borrowed(text)),
            Term::List(items) => items
                .iter()
                .map(|item| match item {
                    Term::Integer(n) => u32::try_from(*n).ok().and_then(char::from_u32),
                    _ => None,
                })
                .collect::<Option<String>>()
                .map(Cow::Owned),
            _ => None,
        }
    }

    /// The name of an atom.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(name) => Some(name),
            _ => None,
        }
    }

    /// `Some(true)` for the atom `true`, `Some(false)` for `false`, else `None`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_atom()? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// The elements of a list; the empty string `""` is Erlang's empty list too.
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(items) => Some(items),
            Term::String(text) if text.is_empty() => Some(NO_TERMS),
            _ => None,
        }
    }

    /// The pairs of a map, or of a key/value list (a list of 2-tuples), in order.
    pub fn as_key_values(&self) -> Option<Vec<(&Term, &Term)>> {
        fn pair(item: &Term) -> Option<(&Term, &Term)> {
            match item {
                Term::Tuple(pair) if pair.len() == 2 => Some((&pair[0], &pair[1])),
                _ => None,
            }
        }
        if let Term::Map(pairs) = self {
            return Some(pairs.iter().map(|(k, v)| (k, v)).collect());
        }
        self.as_list()?.iter().map(pair).collect()
    }

    /// What kind of term this is, for error messages: `"binary"`, `"list"`, ….
    pub fn kind(&self) -> &'static str {
        match self {
            Term::Integer(_) => "integer",
            Term::Atom(_) => "atom",
            Term::Binary(_) => "binary",
            Term::String(_) => "string",
            Term::List(_) => "list",
            Term::Tuple(_) => "tuple",
            Term::Map(_) => "map",
        }
    }
}

fn is_bare_atom(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        && !RESERVED.contains(&name)
        && !RESERVED_SINCE_OTP_27.contains(&name)
}

fn write_quoted(text: &str, quote: char, out: &mut String) {
    out.push(quote);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            // A backslash is written in octal, never as `\\`: `hex_core`'s lexer takes the
            // longest match, so in `"a\\"` it would read `\"` as an escaped quote and run on.
            // Control characters are all below 0o240, so three octal digits always fit, and
            // exactly three is what `hex_core`'s lexer requires.
            c if c == '\\' || c.is_control() => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            c if c == quote => out.extend(['\\', c]),
            c => out.push(c),
        }
    }
    out.push(quote);
}

fn write_sequence<T>(
    (open, close): (char, char),
    items: impl Iterator<Item = T>,
    out: &mut String,
    write: impl Fn(T, &mut String),
) {
    out.push(open);
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(item, out);
    }
    out.push(close);
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A non-negative integer or character literal; the sign is a separate token.
    Int(u128),
    Atom(String),
    Str(String),
    /// One of [`PUNCTUATION`].
    Punct(&'static str),
    Eof,
}

/// Punctuation tokens, two-character ones first so they win over their first character.
const PUNCTUATION: &[&str] = &[
    "=>", "<<", ">>", "#{", "{", "}", "[", "]", ",", "|", "/", ".", "-", "+",
];

/// Escapes standing for one character (`\n` …), as `erl_scan` reads them: the letter after
/// the `\` in the first string stands for the character at the same place in the second.
const ESCAPE_LETTERS: &str = "nrtvbfesd";
const ESCAPED_CHARS: &str = "\n\r\t\x0B\x08\x0C\x1B \x7F";

fn unexpected(token: &Token, line: usize, expected: &'static str) -> TermError {
    let found = match token {
        Token::Int(n) => format!("integer {n}"),
        Token::Atom(name) => format!("atom '{name}'"),
        Token::Str(_) => "string".to_owned(),
        Token::Punct(p) => format!("'{p}'"),
        Token::Eof => "end of input".to_owned(),
    };
    TermError::Unexpected(line, found, expected)
}

/// Erlang's whitespace: control characters, space, and Latin-1 `\x80`–`\xA0`.
fn is_blank(c: char) -> bool {
    matches!(u32::from(c), 0..=32 | 0x80..=0xA0)
}

/// Erlang's name characters: ASCII letters, digits, `_`, `@` and Latin-1 letters.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@' || is_latin1_letter(c)
}

fn is_latin1_letter(c: char) -> bool {
    matches!(c, 'À'..='ÿ') && c != '×' && c != '÷'
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        self.line += usize::from(c == '\n');
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        let found = self.peek(0) == Some(want);
        self.pos += usize::from(found);
        found
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '%' {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
            } else if is_blank(c) {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// Returns the next token and the line it starts on.
    fn next(&mut self) -> Result<(Token, usize), TermError> {
        self.skip_blanks_and_comments();
        let line = self.line;
        let rest = &self.chars[self.pos..];
        // Punctuation is ASCII, so its length in bytes is its length in chars.
        let starts = |p: &&&str| p.len() <= rest.len() && p.chars().zip(rest).all(|(a, &b)| a == b);
        if let Some(p) = PUNCTUATION.iter().find(starts) {
            self.pos += p.len();
            return Ok((Token::Punct(p), line));
        }
        let not_allowed = |what| Err(TermError::NotAllowed(line, what));
        let Some(c) = self.bump() else {
            return Ok((Token::Eof, line));
        };
        let token = match c {
            '#' => return not_allowed("records"),
            '<' => return not_allowed("pids, ports and references"),
            '?' => return not_allowed("macros"),
            '"' => Token::Str(self.quoted('"', line)?),
            '\'' => Token::Atom(self.quoted('\'', line)?),
            '$' => match self.bump() {
                Some('\\') => Token::Int(u32::from(self.escape(line)?).into()),
                Some(c) => Token::Int(u32::from(c).into()),
                None => return Err(TermError::Unterminated(line, "character literal")),
            },
            '0'..='9' => self.number(c, line)?,
            'a'..='z' | 'ß'..='ÿ' if c != '÷' => {
                let mut name = String::from(c);
                while let Some(c) = self.peek(0).filter(|&c| is_name_char(c)) {
                    name.push(c);
                    self.pos += 1;
                }
                match name.as_str() {
                    "fun" => return not_allowed("funs"),
                    word if RESERVED.contains(&word) => {
                        let found = format!("reserved word '{word}'");
                        return Err(TermError::Unexpected(line, found, "a term"));
                    }
                    _ => Token::Atom(name),
                }
            }
            'A'..='Z' | '_' => return not_allowed("variables"),
            c if is_latin1_letter(c) => return not_allowed("variables"),
            other => {
                let found = format!("character {other:?}");
                return Err(TermError::Unexpected(line, found, "a term"));
            }
        };
        Ok((token, line))
    }

    fn number(&mut self, first: char, line: usize) -> Result<Token, TermError> {
        let bad = |reason: &str| TermError::Invalid(line, "integer", reason.to_owned());
        let mut value = self.digits(first, 10).ok_or_else(|| bad("too large"))?;
        if self.peek(0) == Some('#') && self.peek(1).is_some_and(|c| c.is_ascii_alphanumeric()) {
            let base = u32::try_from(value).ok().filter(|b| (2..=36).contains(b));
            let base = base.ok_or_else(|| bad("the base must be 2 to 36"))?;
            let first = self.peek(1).filter(|c| c.is_digit(base));
            let first = first.ok_or_else(|| bad("a digit is not in its base"))?;
            self.pos += 2;
            value = self.digits(first, base).ok_or_else(|| bad("too large"))?;
        }
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            return Err(TermError::NotAllowed(line, "floats"));
        }
        Ok(Token::Int(value))
    }

    /// Reads digits in `base` (2..=36) with `_` separators after the already consumed digit
    /// `first`; `None` when the value overflows.
    fn digits(&mut self, first: char, base: u32) -> Option<u128> {
        let digit = |c: char| c.to_digit(base).map(u128::from);
        let mut value = digit(first)?;
        loop {
            match self.peek(0) {
                Some('_') if self.peek(1).and_then(digit).is_some() => {}
                Some(c) if digit(c).is_some() => {
                    value = value.checked_mul(base.into())?.checked_add(digit(c)?)?;
                }
                _ => return Some(value),
            }
            self.pos += 1;
        }
    }

    fn quoted(&mut self, quote: char, line: usize) -> Result<String, TermError> {
        let mut text = String::new();
        loop {
            match self.bump() {
                None if quote == '"' => return Err(TermError::Unterminated(line, "string")),
                None => return Err(TermError::Unterminated(line, "quoted atom")),
                Some('\\') => text.push(self.escape(line)?),
                Some(c) if c == quote => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    /// Reads an escape sequence after its `\`, as `erl_scan` does.
    fn escape(&mut self, line: usize) -> Result<char, TermError> {
        let bad = |reason: &str| TermError::Invalid(line, "escape sequence", reason.to_owned());
        let c = self
            .bump()
            .ok_or(TermError::Unterminated(line, "escape sequence"))?;
        let code = match c {
            '0'..='7' => {
                let mut code = u32::from(c) - u32::from('0');
                for _ in 0..2 {
                    let Some(d) = self.peek(0).and_then(|c| c.to_digit(8)) else {
                        break;
                    };
                    code = code * 8 + d;
                    self.pos += 1;
                }
                code
            }
            'x' if self.eat('{') => {
                let start = self.pos;
                let mut code: u32 = 0;
                while let Some(d) = self.peek(0).and_then(|c| c.to_digit(16)) {
                    code = code.saturating_mul(16).saturating_add(d);
                    self.pos += 1;
                }
                if self.pos == start || !self.eat('}') {
                    return Err(bad("\\x{…} needs hex digits and a closing '}'"));
                }
                code
            }
            'x' => {
                let hex = |c: Option<char>| c.and_then(|c| c.to_digit(16));
                match (hex(self.bump()), hex(self.bump())) {
                    (Some(high), Some(low)) => high * 16 + low,
                    _ => return Err(bad("\\x needs two hex digits")),
                }
            }
            '^' => match self.bump() {
                Some(c) => u32::from(c) & 31,
                None => return Err(TermError::Unterminated(line, "escape sequence")),
            },
            c => ESCAPE_LETTERS
                .find(c)
                .and_then(|i| ESCAPED_CHARS.as_bytes().get(i).map(|&b| char::from(b)))
                .unwrap_or(c)
                .into(),
        };
        char::from_u32(code).ok_or_else(|| bad("not a unicode character"))
    }
}

/// A recursive-descent parser over the lexer with one token of look-ahead.
struct Parser {
    lexer: Lexer,
    peeked: Option<(Token, usize)>,
}

impl Parser {
    fn next(&mut self) -> Result<(Token, usize), TermError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next(),
        }
    }

    fn peek(&mut self) -> Result<&Token, TermError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next()?,
        };
        Ok(&self.peeked.insert(token).0)
    }

    fn eat(&mut self, punct: &'static str) -> Result<bool, TermError> {
        let found = *self.peek()? == Token::Punct(punct);
        if found {
            self.peeked = None;
        }
        Ok(found)
    }

    fn expect(&mut self, punct: &'static str, expected: &'static str) -> Result<(), TermError> {
        match self.next()? {
            (Token::Punct(p), _) if p == punct => Ok(()),
            (other, line) => Err(unexpected(&other, line, expected)),
        }
    }

    /// After a `,`-separated element, reads the `,` (true) or `close` (false).
    fn separator(
        &mut self,
        close: &'static str,
        expected: &'static str,
    ) -> Result<bool, TermError> {
        match self.next()? {
            (Token::Punct(","), _) => Ok(true),
            (Token::Punct(p), _) if p == close => Ok(false),
            (other, line) => Err(unexpected(&other, line, expected)),
        }
    }

    /// Reads adjacent string literals, which Erlang concatenates: `"a" "b"` is `"ab"`.
    fn strings(&mut self, mut text: String) -> Result<String, TermError> {
        while let Token::Str(more) = self.peek()? {
            text.push_str(more);
            self.peeked = None;
        }
        Ok(text)
    }

    fn term(&mut self, depth: usize) -> Result<Term, TermError> {
        let (token, line) = self.next()?;
        let inner = depth + 1;
        if inner > MAX_DEPTH && matches!(token, Token::Punct("{" | "[" | "#{")) {
            return Err(TermError::TooDeep(line));
        }
        match token {
            Token::Int(n) => signed(n, false, line),
            Token::Punct(sign @ ("-" | "+")) => match self.next()? {
                (Token::Int(n), _) => signed(n, sign == "-", line),
                (other, line) => Err(unexpected(&other, line, "an integer after the sign")),
            },
            Token::Atom(name) => Ok(Term::Atom(name)),
            Token::Str(text) => Ok(Term::String(self.strings(text)?)),
            Token::Punct("{") => Ok(Term::Tuple(self.elements(inner, "}")?.0)),
            Token::Punct("[") => self.list(inner),
            Token::Punct("#{") => self.map(inner),
            Token::Punct("<<") => self.binary(),
            other => Err(unexpected(&other, line, "a term")),
        }
    }

    /// Reads `Term, …` up to `close`, or up to `|` in a list; returns the elements and the
    /// line of the `|` if that is what ended them.
    fn elements(
        &mut self,
        depth: usize,
        close: &'static str,
    ) -> Result<(Vec<Term>, Option<usize>), TermError> {
        let mut items = Vec::new();
        if self.eat(close)? {
            return Ok((items, None));
        }
        loop {
            items.push(self.term(depth)?);
            match self.next()? {
                (Token::Punct(","), _) => {}
                (Token::Punct(p), _) if p == close => return Ok((items, None)),
                (Token::Punct("|"), line) if close == "]" => return Ok((items, Some(line))),
                (other, line) if close == "]" => {
                    return Err(unexpected(&other, line, "',', '|' or ']'"));
                }
                (other, line) => return Err(unexpected(&other, line, "',' or '}'")),
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<Term, TermError> {
        let (mut items, bar) = self.elements(depth, "]")?;
        if let Some(bar_line) = bar {
            // `[a | [b]]` and `[a | "bc"]` are proper lists in Erlang; anything else is not.
            let tail = self.term(depth)?;
            self.expect("]", "']' after the list tail")?;
            match tail {
                Term::List(rest) => items.extend(rest),
                Term::String(text) => {
                    items.extend(text.chars().map(|c| Term::Integer(u32::from(c).into())));
                }
                _ => return Err(TermError::ImproperList(bar_line)),
            }
        }
        Ok(Term::List(items))
    }

    fn map(&mut self, depth: usize) -> Result<Term, TermError> {
        let mut pairs = Vec::new();
        if self.eat("}")? {
            return Ok(Term::Map(pairs));
        }
        loop {
            let key = self.term(depth)?;
            self.expect("=>", "'=>'")?;
            pairs.push((key, self.term(depth)?));
            if !self.separator("}", "',' or '}'")? {
                return Ok(Term::Map(pairs));
            }
        }
    }

    /// Reads binary segments after `<<`: strings and integers, each optionally `/utf8`.
    fn binary(&mut self) -> Result<Term, TermError> {
        let mut bytes = Vec::new();
        if self.eat(">>")? {
            return Ok(Term::Binary(bytes));
        }
        loop {
            let (token, line) = self.next()?;
            let bad = |reason: String| TermError::Invalid(line, "binary segment", reason);
            let segment = match token {
                Token::Str(text) => Ok(self.strings(text)?),
                Token::Int(n) => Err(n),
                other => return Err(unexpected(&other, line, "a string or integer segment")),
            };
            let utf8 = self.eat("/")?;
            if utf8 {
                match self.next()? {
                    (Token::Atom(kind), _) if kind == "utf8" => {}
                    (Token::Atom(kind), _) => {
                        return Err(bad(format!("type '{kind}' is not supported, only utf8")));
                    }
                    (other, line) => return Err(unexpected(&other, line, "a segment type")),
                }
            }
            // Erlang would silently keep the low 8 bits of a value that does not fit a byte;
            // that corrupts text, so it is an error here (hex_core and mix never write one).
            match segment {
                Ok(text) if utf8 => bytes.extend_from_slice(text.as_bytes()),
                Ok(text) => {
                    for c in text.chars() {
                        let too_big =
                            |_| bad(format!("character {c:?} does not fit in a byte; add /utf8"));
                        bytes.push(u8::try_from(c).map_err(too_big)?);
                    }
                }
                Err(n) if utf8 => {
                    let c = u32::try_from(n).ok().and_then(char::from_u32);
                    let c = c.ok_or_else(|| bad(format!("{n} is not a unicode character")))?;
                    bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Err(n) => {
                    bytes.push(u8::try_from(n).map_err(|_| bad(format!("{n} is not a byte")))?);
                }
            }
            if !self.separator(">>", "',' or '>>'")? {
                return Ok(Term::Binary(bytes));
            }
        }
    }
}

fn signed(magnitude: u128, negative: bool, line: usize) -> Result<Term, TermError> {
    let value = if negative {
        0i128.checked_sub_unsigned(magnitude)
    } else {
        i128::try_from(magnitude).ok()
    };
    let too_big = || TermError::Invalid(line, "integer", "does not fit in 128 bits".to_owned());
    value.map(Term::Integer).ok_or_else(too_big)
}

#[cfg(test)]
pub(crate) mod tests {
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
        let terms =
            parse_terms(b"{<<\"d\">>, <<\"Caf\xe9\">>, \"Jos\xe9\", '\xe9t\xe9'}.").unwrap();
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
}
