//! The decoder: a safe `binary_to_term` that reads only the terms the Hex API exchanges,
//! checks every declared length before allocating and rejects duplicate map keys.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::tags::{
    ATOM_EXT, ATOM_UTF8_EXT, BINARY_EXT, BIT_BINARY_EXT, COMPRESSED, EXPORT_EXT, FLOAT_EXT,
    FUN_EXT, INTEGER_EXT, LARGE_BIG_EXT, LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT, NEW_FLOAT_EXT,
    NEW_FUN_EXT, NEW_PID_EXT, NEW_PORT_EXT, NEW_REFERENCE_EXT, NEWER_REFERENCE_EXT, NIL_EXT,
    PID_EXT, PORT_EXT, REFERENCE_EXT, SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT, SMALL_BIG_EXT,
    SMALL_INTEGER_EXT, SMALL_TUPLE_EXT, STRING_EXT, V4_PORT_EXT, VERSION,
};
use super::{EtfError, Location, MAX_ATOM_CHARS, MAX_DEPTH, Term};

/// Largest integer magnitude accepted, in bytes: what fits an `i128`.
const MAX_BIG_BYTES: usize = 16;

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
