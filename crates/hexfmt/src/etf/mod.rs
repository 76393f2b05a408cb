//! Erlang's External Term Format (ETF), the `application/vnd.hex+erlang` body of the Hex HTTP
//! API (HEX-PROTOCOL.md §6.1): a decoder as safe as `binary_to_term(Bin, [safe])` and an
//! encoder that writes what `term_to_binary/1` writes.
//!
//! This module owns the bytes only. Which keys a body must hold, hexpm's wrapping of a non-map
//! body as `%{"_json" => term}` and the §6.3 error body belong to the server.
//!
//! Decoding accepts only the data tags the Hex API exchanges and rejects, with the tag and
//! offset, compressed terms (tag 80, as hexpm does), funs, pids, ports, references and bit
//! strings. Atoms are kept as names: there is no atom table here for hostile input to exhaust.
//! Nesting is capped at [`MAX_DEPTH`], every declared length is checked against the remaining
//! input before anything is allocated, and trailing bytes are an error, so memory stays a
//! small multiple (under 50×) of the input. The input size limit is the caller's: the HTTP
//! body limit.

mod decode;
mod encode;
mod tags;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;

/// Deepest nesting of lists, tuples and maps [`decode()`] accepts.
pub const MAX_DEPTH: usize = 100;

/// Longest atom Erlang allows, in characters.
const MAX_ATOM_CHARS: usize = 255;

/// A decoded term, restricted to what the Hex API exchanges.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// The atom `nil`: Elixir's `nil`, JSON's `null`.
    Nil,
    /// The atoms `true` and `false`.
    Bool(bool),
    /// Any other atom, by name. Never `nil`, `true` or `false`: [`decode()`] returns those as
    /// [`Term::Nil`] and [`Term::Bool`].
    Atom(String),
    /// An integer that fits an `i64`.
    Integer(i64),
    /// An integer outside `i64` but inside `i128`. [`decode()`] returns this only for values no
    /// `i64` holds: `BigInt(5)` is written like `Integer(5)` and reads back as `Integer(5)`.
    BigInt(i128),
    /// A float. Erlang has no NaN or infinity: [`decode()`] rejects them, and Erlang rejects
    /// what [`encode()`] writes for them.
    Float(f64),
    /// A binary: Hex's strings, UTF-8 text.
    Binary(Vec<u8>),
    /// A proper list. Erlang's strings (`"abc"`) are lists of integers.
    List(Vec<Term>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A map, pairs in wire order; [`decode()`] rejects duplicate keys, as Erlang does.
    Map(Vec<(Term, Term)>),
}

impl Term {
    /// A binary holding the UTF-8 of `s`.
    pub fn binary(s: &str) -> Term {
        Term::Binary(s.as_bytes().to_vec())
    }

    /// A map with binary keys, pairs in the order given.
    pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, Term)>) -> Term {
        Term::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Term::binary(k), v))
                .collect(),
        )
    }

    /// The value under the binary key `key`, if this is a map holding it.
    pub fn map_get(&self, key: &str) -> Option<&Term> {
        let Term::Map(pairs) = self else { return None };
        pairs
            .iter()
            .find(|(k, _)| matches!(k, Term::Binary(b) if b == key.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The text of a binary that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Term::Binary(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value of `true` or `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Term::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value of an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Term::Integer(i) => Some(*i),
            Term::BigInt(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }
}

/// Where a rejected term starts: its tag and that tag's offset, counted from the version
/// byte (offset 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The term's tag byte.
    pub tag: u8,
    /// Where the tag is in the input.
    pub offset: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tag {} at offset {}", self.tag, self.offset)
    }
}

/// Why bytes are not an ETF term this module accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtfError {
    /// The input does not start with the version byte 131; the byte it starts with.
    #[error("expected etf version byte 131 at offset 0, found {0}")]
    Version(u8),
    /// The input ends at this offset, where a term's tag should be (0: the input is empty).
    #[error("input ends at offset {0}, where a term should start")]
    UnexpectedEnd(usize),
    /// A term's header or declared length runs past the end of the input.
    #[error("term with {0} runs past the end of the input")]
    Truncated(Location),
    /// A valid term of a kind that is never accepted, named (`"fun"`, `"compressed term"`).
    #[error("{1} with {0} is not accepted")]
    Rejected(Location, &'static str),
    /// A tag that is not part of ETF, or not one this decoder knows.
    #[error("unknown {0}")]
    UnknownTag(Location),
    /// A list, tuple or map nested deeper than [`MAX_DEPTH`].
    #[error("term with {0} nests deeper than {MAX_DEPTH} levels")]
    TooDeep(Location),
    /// A list whose tail, of this tag, is not the empty list.
    #[error("list with {0} is improper: its tail has tag {1}, not 106")]
    ImproperList(Location, u8),
    /// An integer whose magnitude is over 16 bytes or outside `i128`.
    #[error("integer with {0} does not fit in 128 bits")]
    IntegerTooLarge(Location),
    /// An atom longer than Erlang's 255 characters.
    #[error("atom with {0} is longer than {MAX_ATOM_CHARS} characters")]
    AtomTooLong(Location),
    /// A UTF-8 atom whose bytes are not UTF-8.
    #[error("atom with {0} is not valid utf-8")]
    InvalidUtf8(Location),
    /// A float that is NaN, infinite or (tag 99) not a number at all.
    #[error("float with {0} is not a finite number")]
    InvalidFloat(Location),
    /// A map holding the same key twice (Erlang rejects it too).
    #[error("map with {0} has a duplicate key")]
    DuplicateKey(Location),
    /// Bytes left over after the term, from this offset (Erlang ignores them; a body is one
    /// term).
    #[error("trailing bytes after the term, from offset {0}")]
    TrailingBytes(usize),
}
