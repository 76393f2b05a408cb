//! The encoder: [`Term`]s as the bytes `term_to_binary/1` writes for them.

use super::tags::{
    ATOM_EXT, ATOM_UTF8_EXT, BINARY_EXT, INTEGER_EXT, LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT,
    NEW_FLOAT_EXT, NIL_EXT, SMALL_ATOM_UTF8_EXT, SMALL_BIG_EXT, SMALL_INTEGER_EXT, SMALL_TUPLE_EXT,
    VERSION,
};
use super::{MAX_ATOM_CHARS, Term};

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
