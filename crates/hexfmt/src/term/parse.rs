//! The term-file parser: a recursive-descent reader of the lexer's tokens into [`Term`]s,
//! enforcing the input size and nesting limits.

use super::lex::{Lexer, Token};
use super::{MAX_DEPTH, MAX_INPUT_BYTES, Term, TermError};

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
    let lexer = Lexer::new(chars);
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
