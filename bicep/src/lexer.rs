//! Tokenizer: turns Bicep source text into tokens with byte spans.
//!
//! Interpolated strings are lexed as one token whose holes carry their own token
//! lists, so the parser never has to re-enter the lexer.

use crate::diag::{Diagnostic, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(String),
    /// `pieces.len() == holes.len() + 1`.
    Str {
        pieces: Vec<String>,
        holes: Vec<Vec<Token>>,
    },
    MultiStr(String),
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Dot,
    Colon,
    ColonColon,
    Question,
    QuestionQuestion,
    At,
    Arrow,
    Assign,
    EqEq,
    NotEq,
    EqTilde,
    NotTilde,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Pipe,
    /// `^` (index from the end, `arr[^1]`).
    Caret,
    Ellipsis,
    NewLine,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

pub fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("identifier \"{s}\""),
        Tok::Int(s) => format!("integer \"{s}\""),
        Tok::Str { .. } | Tok::MultiStr(_) => "string".into(),
        Tok::NewLine => "new line".into(),
        Tok::Eof => "end of file".into(),
        other => format!("\"{}\"", punct_text(other)),
    }
}

fn punct_text(tok: &Tok) -> &'static str {
    match tok {
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LBrack => "[",
        Tok::RBrack => "]",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Dot => ".",
        Tok::Colon => ":",
        Tok::ColonColon => "::",
        Tok::Question => "?",
        Tok::QuestionQuestion => "??",
        Tok::At => "@",
        Tok::Arrow => "=>",
        Tok::Assign => "=",
        Tok::EqEq => "==",
        Tok::NotEq => "!=",
        Tok::EqTilde => "=~",
        Tok::NotTilde => "!~",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::AndAnd => "&&",
        Tok::OrOr => "||",
        Tok::Bang => "!",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Pipe => "|",
        Tok::Caret => "^",
        Tok::Ellipsis => "...",
        _ => "?",
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Interpolation nesting, bounded so hostile input cannot overflow the stack.
    holes: usize,
    /// High half of a surrogate pair waiting for its `\u{DCxx}` partner.
    pending_high_surrogate: Option<u32>,
}

const MAX_HOLE_DEPTH: usize = 32;

/// Tokenizes a whole file. Stops at the first lexical error.
pub fn lex(src: &str) -> Result<Vec<Token>, Diagnostic> {
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        holes: 0,
        pending_high_surrogate: None,
    };
    if src.starts_with('\u{feff}') {
        lx.pos = 3;
    }
    let mut out = lx.tokens(false)?;
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(src.len(), src.len()),
    });
    Ok(out)
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> u8 {
        self.bytes.get(self.pos + off).copied().unwrap_or(0)
    }

    /// Lexes until end of input, or (inside an interpolation hole) until the
    /// `}` that closes the hole, which is consumed.
    fn tokens(&mut self, in_hole: bool) -> Result<Vec<Token>, Diagnostic> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            self.skip_trivia()?;
            let start = self.pos;
            if self.pos >= self.bytes.len() {
                if in_hole {
                    return Err(Diagnostic::error(
                        "BCP004",
                        "The string at this location is not terminated.",
                        Span::new(start, start),
                    ));
                }
                return Ok(out);
            }
            let c = self.peek(0);
            if in_hole && c == b'}' && depth == 0 {
                self.pos += 1;
                return Ok(out);
            }
            if in_hole && (c == b'\n' || c == b'\r') {
                return Err(Diagnostic::error(
                    "BCP004",
                    "The string at this location is not terminated due to an unexpected new line character.",
                    Span::new(start, start),
                ));
            }
            let tok = match c {
                b'\r' | b'\n' => {
                    if c == b'\r' && self.peek(1) == b'\n' {
                        self.pos += 1;
                    }
                    self.pos += 1;
                    Tok::NewLine
                }
                b'\'' => {
                    if self.src[self.pos..].starts_with("'''") {
                        self.multi_string()?
                    } else {
                        self.string()?
                    }
                }
                b'$' if self.dollar_multi_string_start().is_some() => {
                    let dollars = self.dollar_multi_string_start().unwrap_or(1);
                    self.interp_multi_string(dollars)?
                }
                b'0'..=b'9' => {
                    while self.peek(0).is_ascii_digit() {
                        self.pos += 1;
                    }
                    Tok::Int(self.src[start..self.pos].to_string())
                }
                c if c == b'_' || c.is_ascii_alphabetic() => {
                    while self.peek(0) == b'_' || self.peek(0).is_ascii_alphanumeric() {
                        self.pos += 1;
                    }
                    Tok::Ident(self.src[start..self.pos].to_string())
                }
                _ => {
                    let (tok, len) = self.punct(start)?;
                    self.pos += len;
                    if in_hole {
                        match tok {
                            Tok::LBrace => depth += 1,
                            Tok::RBrace => depth = depth.saturating_sub(1),
                            _ => {}
                        }
                    }
                    tok
                }
            };
            out.push(Token {
                tok,
                span: Span::new(start, self.pos),
            });
        }
    }

    fn punct(&self, start: usize) -> Result<(Tok, usize), Diagnostic> {
        let two = [self.peek(0), self.peek(1)];
        let t2 = match &two {
            b"::" => Some(Tok::ColonColon),
            b"??" => Some(Tok::QuestionQuestion),
            b"=>" => Some(Tok::Arrow),
            b"==" => Some(Tok::EqEq),
            b"!=" => Some(Tok::NotEq),
            b"=~" => Some(Tok::EqTilde),
            b"!~" => Some(Tok::NotTilde),
            b"<=" => Some(Tok::Le),
            b">=" => Some(Tok::Ge),
            b"&&" => Some(Tok::AndAnd),
            b"||" => Some(Tok::OrOr),
            _ => None,
        };
        if let Some(t) = t2 {
            return Ok((t, 2));
        }
        if self.src[self.pos..].starts_with("...") {
            return Ok((Tok::Ellipsis, 3));
        }
        let t = match two[0] {
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b'[' => Tok::LBrack,
            b']' => Tok::RBrack,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b',' => Tok::Comma,
            b'.' => Tok::Dot,
            b':' => Tok::Colon,
            b'?' => Tok::Question,
            b'@' => Tok::At,
            b'=' => Tok::Assign,
            b'<' => Tok::Lt,
            b'>' => Tok::Gt,
            b'!' => Tok::Bang,
            b'+' => Tok::Plus,
            b'-' => Tok::Minus,
            b'*' => Tok::Star,
            b'/' => Tok::Slash,
            b'%' => Tok::Percent,
            b'|' => Tok::Pipe,
            b'^' => Tok::Caret,
            b'$' if matches!(self.peek(1), b'\'' | b'$') => {
                return Err(Diagnostic::unsupported(
                    "A string with a custom interpolation prefix (\"$'...'\")",
                    Span::new(start, start + 1),
                ));
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                return Err(Diagnostic::error(
                    "BCP001",
                    format!("The following token is not recognized: \"{ch}\"."),
                    Span::new(start, start + ch.len_utf8()),
                ));
            }
        };
        Ok((t, 1))
    }

    fn skip_trivia(&mut self) -> Result<(), Diagnostic> {
        loop {
            match self.peek(0) {
                b' ' | b'\t' => self.pos += 1,
                b'/' if self.peek(1) == b'/' => {
                    while !matches!(self.peek(0), b'\n' | b'\r' | 0) {
                        self.pos += 1;
                    }
                }
                b'/' if self.peek(1) == b'*' => {
                    let start = self.pos;
                    match self.src[self.pos + 2..].find("*/") {
                        Some(i) => self.pos += i + 4,
                        None => {
                            return Err(Diagnostic::error(
                                "BCP002",
                                "The multi-line comment at this location is not terminated. Terminate it with the */ character sequence.",
                                Span::new(start, start + 2),
                            ));
                        }
                    }
                }
                // `#disable-next-line` and similar pragmas run to the end of the line.
                b'#' if self.at_line_start() => {
                    while !matches!(self.peek(0), b'\n' | b'\r' | 0) {
                        self.pos += 1;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn at_line_start(&self) -> bool {
        self.src[..self.pos]
            .bytes()
            .rev()
            .take_while(|b| *b != b'\n')
            .all(|b| b == b' ' || b == b'\t' || b == b'\r')
    }

    fn multi_string(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.pos;
        self.pos += 3;
        let body_start = self.pos;
        match self.src[body_start..].find("'''") {
            Some(i) => {
                let mut end = body_start + i;
                // A closing run of more than three quotes ends with the last three.
                while self.bytes.get(end + 3) == Some(&b'\'') {
                    end += 1;
                }
                let mut text = &self.src[body_start..end];
                if let Some(rest) = text.strip_prefix("\r\n") {
                    text = rest;
                } else if let Some(rest) = text.strip_prefix('\n') {
                    text = rest;
                }
                self.pos = end + 3;
                Ok(Tok::MultiStr(text.to_string()))
            }
            None => Err(Diagnostic::error(
                "BCP140",
                "The multi-line string at this location is not terminated. Terminate it with \"'''\".",
                Span::new(start, start + 3),
            )),
        }
    }

    /// The number of `$` before `'''` when a multi-line interpolated string
    /// (`$'''…${x}…'''`, `$$'''…$${x}…'''`) starts here.
    fn dollar_multi_string_start(&self) -> Option<usize> {
        let rest = &self.src[self.pos..];
        let dollars = rest.bytes().take_while(|b| *b == b'$').count();
        rest[dollars..].starts_with("'''").then_some(dollars)
    }

    /// A multi-line string whose holes open with `dollars` dollar signs and `{`;
    /// shorter runs of `$` are literal text. No escapes, as in `'''` strings.
    fn interp_multi_string(&mut self, dollars: usize) -> Result<Tok, Diagnostic> {
        let start = self.pos;
        self.pos += dollars + 3;
        if self.src[self.pos..].starts_with("\r\n") {
            self.pos += 2;
        } else if self.peek(0) == b'\n' {
            self.pos += 1;
        }
        let mut pieces = Vec::new();
        let mut holes = Vec::new();
        let mut cur = String::new();
        loop {
            let rest = &self.src[self.pos..];
            if rest.is_empty() {
                return Err(Diagnostic::error(
                    "BCP140",
                    "The multi-line string at this location is not terminated. Terminate it with \"'''\".",
                    Span::new(start, start + dollars + 3),
                ));
            }
            if rest.starts_with("'''") {
                // A closing run of more than three quotes ends with the last three.
                let quotes = rest.bytes().take_while(|b| *b == b'\'').count();
                cur.push_str(&rest[..quotes - 3]);
                self.pos += quotes;
                pieces.push(cur);
                return Ok(Tok::Str { pieces, holes });
            }
            let run = rest.bytes().take_while(|b| *b == b'$').count();
            if run >= dollars && rest[run..].starts_with('{') {
                cur.push_str(&rest[..run - dollars]);
                self.pos += run + 1;
                pieces.push(std::mem::take(&mut cur));
                if self.holes >= MAX_HOLE_DEPTH {
                    return Err(Diagnostic::error(
                        "BCP-DEPTH",
                        "The string interpolation is nested too deeply.",
                        Span::new(start, self.pos),
                    ));
                }
                self.holes += 1;
                let hole = self.tokens(true);
                self.holes -= 1;
                holes.push(hole?);
                continue;
            }
            let take = if run > 0 {
                run
            } else {
                rest.chars().next().map_or(1, char::len_utf8)
            };
            cur.push_str(&rest[..take]);
            self.pos += take;
        }
    }

    fn string(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let mut pieces = Vec::new();
        let mut holes = Vec::new();
        let mut cur = String::new();
        loop {
            let c = self.peek(0);
            match c {
                0 if self.pos >= self.bytes.len() => {
                    return Err(Diagnostic::error(
                        "BCP004",
                        "The string at this location is not terminated.",
                        Span::new(start, self.pos),
                    ));
                }
                b'\r' | b'\n' => {
                    return Err(Diagnostic::error(
                        "BCP004",
                        "The string at this location is not terminated due to an unexpected new line character.",
                        Span::new(start, self.pos),
                    ));
                }
                b'\'' => {
                    self.pos += 1;
                    pieces.push(cur);
                    return Ok(Tok::Str { pieces, holes });
                }
                b'\\' => self.escape(&mut cur)?,
                b'$' if self.peek(1) == b'{' => {
                    self.pos += 2;
                    pieces.push(std::mem::take(&mut cur));
                    if self.holes >= MAX_HOLE_DEPTH {
                        return Err(Diagnostic::error(
                            "BCP-DEPTH",
                            "The string interpolation is nested too deeply.",
                            Span::new(start, self.pos),
                        ));
                    }
                    self.holes += 1;
                    let hole = self.tokens(true);
                    self.holes -= 1;
                    let hole = hole?;
                    holes.push(hole);
                }
                _ => {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('\0');
                    cur.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
    }

    /// One escape sequence after its backslash, appended to `cur`.
    fn escape(&mut self, cur: &mut String) -> Result<(), Diagnostic> {
        let esc_start = self.pos;
        self.pos += 1;
        let e = self.peek(0);
        self.pos += 1;
        match e {
            b'\\' => cur.push('\\'),
            b'\'' => cur.push('\''),
            b'n' => cur.push('\n'),
            b'r' => cur.push('\r'),
            b't' => cur.push('\t'),
            b'$' => cur.push('$'),
            b'u' if self.peek(0) == b'{' => {
                let code = self.src[self.pos..].find('}').and_then(|i| {
                    let hex = &self.src[self.pos + 1..self.pos + i];
                    (hex.len() <= 6)
                        .then(|| u32::from_str_radix(hex, 16).ok())
                        .flatten()
                        .map(|c| (c, i))
                });
                let Some((code, i)) = code else {
                    return Err(bad_escape(esc_start));
                };
                self.pos += i + 1;
                match char::from_u32(code) {
                    Some(ch) => cur.push(ch),
                    // A UTF-16 surrogate pair written as two escapes.
                    None if (0xD800..0xDC00).contains(&code) => {
                        self.pending_high_surrogate = Some(code);
                    }
                    None if (0xDC00..0xE000).contains(&code) => {
                        let Some(high) = self.pending_high_surrogate.take() else {
                            return Err(bad_escape(esc_start));
                        };
                        let c = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00);
                        cur.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                    }
                    None => return Err(bad_escape(esc_start)),
                }
            }
            _ => return Err(bad_escape(esc_start)),
        }
        Ok(())
    }
}

fn bad_escape(at: usize) -> Diagnostic {
    Diagnostic::error(
        "BCP006",
        "The specified escape sequence is not recognized. Only the following escape sequences are allowed: \"\\$\", \"\\'\", \"\\\\\", \"\\n\", \"\\r\", \"\\t\", \"\\u{...}\".",
        Span::new(at, at + 2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_interpolation_with_nested_braces() {
        let toks = kinds("'a${ {x: 1}.x }b'");
        let Tok::Str { pieces, holes } = &toks[0] else {
            panic!("not a string: {toks:?}")
        };
        assert_eq!(pieces, &["a", "b"]);
        assert_eq!(holes[0][0].tok, Tok::LBrace);
        assert_eq!(holes[0].len(), 7);
    }

    #[test]
    fn lexes_operators_and_comments() {
        let toks = kinds("a ?? b // c\n/* d */ x!.y =~ 'z' ...");
        assert_eq!(
            toks,
            vec![
                Tok::Ident("a".into()),
                Tok::QuestionQuestion,
                Tok::Ident("b".into()),
                Tok::NewLine,
                Tok::Ident("x".into()),
                Tok::Bang,
                Tok::Dot,
                Tok::Ident("y".into()),
                Tok::EqTilde,
                Tok::Str {
                    pieces: vec!["z".into()],
                    holes: vec![]
                },
                Tok::Ellipsis,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn multiline_string_drops_first_newline_and_keeps_escapes_raw() {
        assert_eq!(
            kinds("'''\nhi\\n${x}'''")[0],
            Tok::MultiStr("hi\\n${x}".into())
        );
    }

    #[test]
    fn dollar_multiline_string_opens_holes_with_as_many_dollars() {
        let Tok::Str { pieces, holes } = &kinds("$$'''\n${a}$${b}$$$${c}'''")[0] else {
            panic!("not an interpolated string");
        };
        assert_eq!(pieces, &["${a}", "$$", ""]);
        assert_eq!(holes.len(), 2);
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let err = lex("var x = 'abc\nvar y = 1").unwrap_err();
        assert_eq!(err.code, "BCP004");
    }
}
