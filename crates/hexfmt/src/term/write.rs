//! The term writer: [`Term`]s in Erlang syntax that `file:consult/1` and `hex_core` read back.

use std::fmt::{self, Write as _};

use super::{RESERVED, RESERVED_SINCE_OTP_27, Term};

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
