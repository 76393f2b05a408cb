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

mod lex;
mod parse;
mod write;

#[cfg(test)]
pub(crate) mod tests;

pub use parse::parse_terms;
pub use write::write_term;

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
