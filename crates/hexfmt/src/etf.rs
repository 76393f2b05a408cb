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

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// Deepest nesting of lists, tuples and maps [`decode`] accepts.
pub const MAX_DEPTH: usize = 100;

/// Longest atom Erlang allows, in characters.
const MAX_ATOM_CHARS: usize = 255;

/// Largest integer magnitude accepted, in bytes: what fits an `i128`.
const MAX_BIG_BYTES: usize = 16;

const VERSION: u8 = 131;
const NEW_FLOAT_EXT: u8 = 70;
const BIT_BINARY_EXT: u8 = 77;
const COMPRESSED: u8 = 80;
const NEW_PID_EXT: u8 = 88;
const NEW_PORT_EXT: u8 = 89;
const NEWER_REFERENCE_EXT: u8 = 90;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const FLOAT_EXT: u8 = 99;
const ATOM_EXT: u8 = 100;
const REFERENCE_EXT: u8 = 101;
const PORT_EXT: u8 = 102;
const PID_EXT: u8 = 103;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const NEW_FUN_EXT: u8 = 112;
const EXPORT_EXT: u8 = 113;
const NEW_REFERENCE_EXT: u8 = 114;
const SMALL_ATOM_EXT: u8 = 115;
const MAP_EXT: u8 = 116;
const FUN_EXT: u8 = 117;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;
const V4_PORT_EXT: u8 = 120;

/// A decoded term, restricted to what the Hex API exchanges.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// The atom `nil`: Elixir's `nil`, JSON's `null`.
    Nil,
    /// The atoms `true` and `false`.
    Bool(bool),
    /// Any other atom, by name. Never `nil`, `true` or `false`: [`decode`] returns those as
    /// [`Term::Nil`] and [`Term::Bool`].
    Atom(String),
    /// An integer that fits an `i64`.
    Integer(i64),
    /// An integer outside `i64` but inside `i128`. [`decode`] returns this only for values no
    /// `i64` holds: `BigInt(5)` is written like `Integer(5)` and reads back as `Integer(5)`.
    BigInt(i128),
    /// A float. Erlang has no NaN or infinity: [`decode`] rejects them, and Erlang rejects
    /// what [`encode`] writes for them.
    Float(f64),
    /// A binary: Hex's strings, UTF-8 text.
    Binary(Vec<u8>),
    /// A proper list. Erlang's strings (`"abc"`) are lists of integers.
    List(Vec<Term>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A map, pairs in wire order; [`decode`] rejects duplicate keys, as Erlang does.
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

/// Reads one ETF term (a safe `binary_to_term`): all of `bytes`, version byte first.
/// Bound `bytes` first (the HTTP body limit): the result can take up to ~50× their size.
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    match bytes.first() {
        None => return Err(EtfError::UnexpectedEnd(0)),
        Some(&VERSION) => {}
        Some(&found) => return Err(EtfError::Version(found)),
    }
    let mut decoder = Decoder {
        input: bytes,
        pos: 1,
    };
    let term = decoder.term(0)?;
    if decoder.pos < bytes.len() {
        return Err(EtfError::TrailingBytes(decoder.pos));
    }
    Ok(term)
}

struct Decoder<'a> {
    input: &'a [u8],
    /// Next byte to read; never past the end of `input`.
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize, at: Location) -> Result<&'a [u8], EtfError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let bytes = rest.get(..n).ok_or(EtfError::Truncated(at))?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, at: Location) -> Result<[u8; N], EtfError> {
        <[u8; N]>::try_from(self.take(N, at)?).map_err(|_| EtfError::Truncated(at))
    }

    fn u8(&mut self, at: Location) -> Result<u8, EtfError> {
        Ok(u8::from_be_bytes(self.array(at)?))
    }

    /// A big-endian length field of 1, 2 or 4 bytes.
    fn len(&mut self, width: usize, at: Location) -> Result<usize, EtfError> {
        let bytes = self.take(width, at)?;
        Ok(bytes.iter().fold(0, |n, &b| n << 8 | usize::from(b)))
    }

    /// Checks `n` declared items of at least `min_bytes` each against the rest of the input,
    /// so a lying header cannot make us allocate.
    fn count(&self, n: usize, min_bytes: usize, at: Location) -> Result<usize, EtfError> {
        if n.saturating_mul(min_bytes) > self.input.len().saturating_sub(self.pos) {
            return Err(EtfError::Truncated(at));
        }
        Ok(n)
    }

    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        let offset = self.pos;
        let Some(&tag) = self.input.get(offset) else {
            return Err(EtfError::UnexpectedEnd(offset));
        };
        self.pos += 1;
        let at = Location { tag, offset };
        let rejected = |kind| Err(EtfError::Rejected(at, kind));
        match tag {
            SMALL_INTEGER_EXT => Ok(Term::Integer(i64::from(self.u8(at)?))),
            INTEGER_EXT => Ok(Term::Integer(i64::from(i32::from_be_bytes(
                self.array(at)?,
            )))),
            SMALL_BIG_EXT => self.big(at),
            LARGE_BIG_EXT => Err(EtfError::IntegerTooLarge(at)),
            NEW_FLOAT_EXT => finite(f64::from_bits(u64::from_be_bytes(self.array(at)?)), at),
            FLOAT_EXT => {
                // OTP < R17's text form: "%.20e" padded with NULs to 31 bytes.
                let text = self.take(31, at)?.split(|&b| b == 0).next();
                let text = std::str::from_utf8(text.unwrap_or_default()).unwrap_or_default();
                finite(text.trim().parse().unwrap_or(f64::NAN), at)
            }
            ATOM_EXT | ATOM_UTF8_EXT => self.atom(2, at),
            SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => self.atom(1, at),
            NIL_EXT => Ok(Term::List(Vec::new())),
            STRING_EXT => {
                let n = self.len(2, at)?;
                let bytes = self.take(n, at)?.iter();
                Ok(Term::List(
                    bytes.map(|&b| Term::Integer(i64::from(b))).collect(),
                ))
            }
            BINARY_EXT => {
                let n = self.len(4, at)?;
                Ok(Term::Binary(self.take(n, at)?.to_vec()))
            }
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT | LIST_EXT | MAP_EXT => self.container(depth, at),
            BIT_BINARY_EXT => rejected("bit string"),
            COMPRESSED => rejected("compressed term"),
            NEW_FUN_EXT | EXPORT_EXT | FUN_EXT => rejected("fun"),
            NEW_PID_EXT | PID_EXT => rejected("pid"),
            NEW_PORT_EXT | PORT_EXT | V4_PORT_EXT => rejected("port"),
            NEWER_REFERENCE_EXT | REFERENCE_EXT | NEW_REFERENCE_EXT => rejected("reference"),
            _ => Err(EtfError::UnknownTag(at)),
        }
    }

    fn container(&mut self, depth: usize, at: Location) -> Result<Term, EtfError> {
        if depth >= MAX_DEPTH {
            return Err(EtfError::TooDeep(at));
        }
        let n = self.len(if at.tag == SMALL_TUPLE_EXT { 1 } else { 4 }, at)?;
        match at.tag {
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => Ok(Term::Tuple(self.items(n, depth, at)?)),
            LIST_EXT => {
                self.count(n.saturating_add(1), 1, at)?;
                let items = self.items(n, depth, at)?;
                match self.u8(at)? {
                    NIL_EXT => Ok(Term::List(items)),
                    tail => Err(EtfError::ImproperList(at, tail)),
                }
            }
            _ => {
                let mut pairs = Vec::with_capacity(self.count(n, 2, at)?);
                for _ in 0..n {
                    let key = self.term(depth + 1)?;
                    pairs.push((key, self.term(depth + 1)?));
                }
                let mut seen = HashSet::with_capacity(n);
                if !pairs.iter().all(|(key, _)| seen.insert(MapKey(key))) {
                    return Err(EtfError::DuplicateKey(at));
                }
                Ok(Term::Map(pairs))
            }
        }
    }

    fn items(&mut self, n: usize, depth: usize, at: Location) -> Result<Vec<Term>, EtfError> {
        let mut items = Vec::with_capacity(self.count(n, 1, at)?);
        for _ in 0..n {
            items.push(self.term(depth + 1)?);
        }
        Ok(items)
    }

    fn big(&mut self, at: Location) -> Result<Term, EtfError> {
        let n = self.len(1, at)?;
        if n > MAX_BIG_BYTES {
            return Err(EtfError::IntegerTooLarge(at));
        }
        // Any non-zero sign byte means negative, as in Erlang.
        let negative = self.u8(at)? != 0;
        let mut le = [0u8; MAX_BIG_BYTES];
        le.iter_mut()
            .zip(self.take(n, at)?)
            .for_each(|(dst, src)| *dst = *src);
        let magnitude = u128::from_le_bytes(le);
        let value = if negative {
            0i128.checked_sub_unsigned(magnitude)
        } else {
            i128::try_from(magnitude).ok()
        };
        let value = value.ok_or(EtfError::IntegerTooLarge(at))?;
        Ok(i64::try_from(value).map_or(Term::BigInt(value), Term::Integer))
    }

    /// An atom whose length field is `width` bytes.
    fn atom(&mut self, width: usize, at: Location) -> Result<Term, EtfError> {
        let n = self.len(width, at)?;
        let bytes = self.take(n, at)?;
        let name = if matches!(at.tag, ATOM_EXT | SMALL_ATOM_EXT) {
            bytes.iter().map(|&b| char::from(b)).collect()
        } else {
            let name = std::str::from_utf8(bytes).map_err(|_| EtfError::InvalidUtf8(at))?;
            name.to_owned()
        };
        if name.chars().count() > MAX_ATOM_CHARS {
            return Err(EtfError::AtomTooLong(at));
        }
        Ok(match name.as_str() {
            "nil" => Term::Nil,
            "true" => Term::Bool(true),
            "false" => Term::Bool(false),
            _ => Term::Atom(name),
        })
    }
}

fn finite(value: f64, at: Location) -> Result<Term, EtfError> {
    if value.is_finite() {
        Ok(Term::Float(value))
    } else {
        Err(EtfError::InvalidFloat(at))
    }
}

/// A map key compared as [`Term`]'s `PartialEq` does, hashed to match, so duplicate keys are
/// found in linear time however many a hostile map declares.
struct MapKey<'a>(&'a Term);

impl PartialEq for MapKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

// Decoded floats are finite, so equality is reflexive.
impl Eq for MapKey<'_> {}

impl Hash for MapKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_term(self.0, state);
    }
}

fn hash_term<H: Hasher>(term: &Term, state: &mut H) {
    std::mem::discriminant(term).hash(state);
    match term {
        Term::Nil => {}
        Term::Bool(b) => b.hash(state),
        Term::Atom(name) => name.hash(state),
        Term::Integer(i) => i.hash(state),
        Term::BigInt(i) => i.hash(state),
        // Adding 0.0 turns -0.0 into 0.0, which `==` treats as equal.
        Term::Float(f) => (f + 0.0).to_bits().hash(state),
        Term::Binary(b) => b.hash(state),
        Term::List(items) | Term::Tuple(items) => {
            items.len().hash(state);
            for item in items {
                hash_term(item, state);
            }
        }
        Term::Map(pairs) => {
            pairs.len().hash(state);
            for (k, v) in pairs {
                hash_term(k, state);
                hash_term(v, state);
            }
        }
    }
}

/// Writes `term` as `term_to_binary/1` of the installed OTP (25) does, except that lists are
/// never written as STRING_EXT and map pairs keep their order. Lengths past what ETF can say
/// (`u32::MAX` items, atoms over 65535 bytes) are cut there, so the output is always one term.
pub fn encode(term: &Term) -> Vec<u8> {
    let mut out = vec![VERSION];
    write_term(&mut out, term);
    out
}

fn write_term(out: &mut Vec<u8>, term: &Term) {
    match term {
        Term::Nil => write_atom(out, "nil"),
        Term::Bool(b) => write_atom(out, if *b { "true" } else { "false" }),
        Term::Atom(name) => write_atom(out, name),
        Term::Integer(i) => write_integer(out, i128::from(*i)),
        Term::BigInt(i) => write_integer(out, *i),
        Term::Float(f) => {
            out.push(NEW_FLOAT_EXT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Term::Binary(bytes) => {
            out.push(BINARY_EXT);
            let n = write_len(out, bytes.len());
            out.extend(bytes.iter().take(n));
        }
        Term::List(items) if items.is_empty() => out.push(NIL_EXT),
        Term::List(items) => {
            out.push(LIST_EXT);
            let n = write_len(out, items.len());
            items.iter().take(n).for_each(|item| write_term(out, item));
            out.push(NIL_EXT);
        }
        Term::Tuple(items) => {
            let n = if let Ok(n) = u8::try_from(items.len()) {
                out.extend([SMALL_TUPLE_EXT, n]);
                items.len()
            } else {
                out.push(LARGE_TUPLE_EXT);
                write_len(out, items.len())
            };
            items.iter().take(n).for_each(|item| write_term(out, item));
        }
        Term::Map(pairs) => {
            out.push(MAP_EXT);
            let n = write_len(out, pairs.len());
            for (k, v) in pairs.iter().take(n) {
                write_term(out, k);
                write_term(out, v);
            }
        }
    }
}

/// Writes a 4-byte length and returns how many items it covers.
fn write_len(out: &mut Vec<u8>, len: usize) -> usize {
    let n = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    usize::try_from(n).unwrap_or(len)
}

fn write_integer(out: &mut Vec<u8>, value: i128) {
    if let Ok(small) = u8::try_from(value) {
        out.extend([SMALL_INTEGER_EXT, small]);
    } else if let Ok(int) = i32::try_from(value) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&int.to_be_bytes());
    } else {
        let magnitude = value.unsigned_abs().to_le_bytes();
        let n = magnitude
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        let n_byte = u8::try_from(n).unwrap_or(u8::MAX);
        out.extend([SMALL_BIG_EXT, n_byte, u8::from(value < 0)]);
        out.extend(magnitude.iter().take(n));
    }
}

fn write_atom(out: &mut Vec<u8>, name: &str) {
    // OTP 25's term_to_binary (minor version 1) writes Latin-1 names as ATOM_EXT and only the
    // others as UTF-8; OTP 26 writes UTF-8 for all. Every OTP since 20 reads both.
    let latin1: Option<Vec<u8>> = name.chars().map(|c| u8::try_from(c).ok()).collect();
    match latin1 {
        Some(bytes) if bytes.len() <= MAX_ATOM_CHARS => {
            out.push(ATOM_EXT);
            write_atom_bytes(out, &bytes);
        }
        _ => {
            if let Ok(n) = u8::try_from(name.len()) {
                out.extend([SMALL_ATOM_UTF8_EXT, n]);
                out.extend_from_slice(name.as_bytes());
            } else {
                out.push(ATOM_UTF8_EXT);
                write_atom_bytes(out, name.as_bytes());
            }
        }
    }
}

/// Writes a 2-byte length and the bytes, cut at 65535.
fn write_atom_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend(bytes.iter().take(usize::from(n)));
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use proptest::strategy::ValueTree as _;

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
        let dir =
            std::env::temp_dir().join(format!("hexfmt-etf-erl-{}-{nanos}", std::process::id()));
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
}
