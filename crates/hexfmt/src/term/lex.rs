//! The term-file lexer: characters to tokens, as `erl_scan` reads them (blanks, `%` comments,
//! integers in any base, quoted strings and atoms with their escapes, punctuation).

use super::{RESERVED, TermError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
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

pub(super) struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Lexer {
    /// A lexer at the start of `chars`, on line 1.
    pub(super) fn new(chars: Vec<char>) -> Lexer {
        Lexer {
            chars,
            pos: 0,
            line: 1,
        }
    }

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
    pub(super) fn next(&mut self) -> Result<(Token, usize), TermError> {
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
