//! Error recovery: how lexing and parsing resume after an error, so one run
//! reports every error of a file instead of only the first.

use crate::diag::Diagnostic;
use crate::lexer::{Tok, Token, lex};

/// Keywords that start a top-level declaration.
const DECLARATION_KEYWORDS: &[&str] = &[
    "targetScope",
    "metadata",
    "param",
    "var",
    "resource",
    "module",
    "output",
    "type",
    "func",
    "import",
    "extension",
    "provider",
    "using",
    "test",
    "assert",
];

/// Declarations that introduce a name right after their keyword.
const NAMING_KEYWORDS: &[&str] = &[
    "metadata", "param", "var", "resource", "module", "output", "type", "func", "test", "assert",
];

/// Tokenizes `src`, reporting every lexical error: the rest of the line holding an
/// error is blanked (offsets kept) and lexing starts over, at most `max_errors` times.
pub fn lex_recovering(src: &str, max_errors: usize) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut text = src.as_bytes().to_vec();
    loop {
        // Only whole lines (or the whole tail) are ever blanked, so `text` stays UTF-8.
        let current = String::from_utf8_lossy(&text).into_owned();
        match lex(&current) {
            Ok(tokens) => return (tokens, errors),
            Err(e) => {
                let at = e.span.start.min(text.len());
                // What remains of a line after its first error says nothing new.
                let line_start = |at: usize| text[..at].iter().rposition(|&b| b == b'\n');
                let same_line = errors.last().is_some_and(|p: &Diagnostic| {
                    line_start(p.span.start.min(text.len())) == line_start(at)
                });
                if !same_line {
                    errors.push(e);
                }
                if errors.len() >= max_errors || !blank_line(&mut text, at) {
                    let eof = lex("").unwrap_or_default();
                    return (shift_eof(eof, src.len()), errors);
                }
            }
        }
    }
}

/// The end-of-file token at `len`.
fn shift_eof(mut eof: Vec<Token>, len: usize) -> Vec<Token> {
    for t in &mut eof {
        t.span = crate::diag::Span::new(len, len);
    }
    eof
}

/// Replaces the rest of the line from byte `at` with spaces; when that is blank
/// already, the whole line; when that is too, everything from `at` on. False when
/// nothing changed.
fn blank_line(text: &mut [u8], at: usize) -> bool {
    let start = text[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = text[at..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(text.len(), |i| at + i);
    blank(&mut text[at..end]) || blank(&mut text[start..end]) || blank(&mut text[at..])
}

fn blank(bytes: &mut [u8]) -> bool {
    let mut changed = false;
    for b in bytes
        .iter_mut()
        .filter(|b| !matches!(**b, b' ' | b'\n' | b'\r'))
    {
        *b = b' ';
        changed = true;
    }
    changed
}

/// For each token, whether it starts a line (column 1).
pub fn line_start_flags(src: &str, tokens: &[Token]) -> Vec<bool> {
    let bytes = src.as_bytes();
    let bom = if src.starts_with('\u{feff}') { 3 } else { 0 };
    tokens
        .iter()
        .map(|t| t.span.start <= bom || bytes.get(t.span.start - 1) == Some(&b'\n'))
        .collect()
}

/// The name a declaration starting at `toks[0]` introduces, when its tokens get that far.
pub fn declared_name(toks: &[Token]) -> Option<String> {
    let keyword = toks
        .iter()
        .take(256)
        .position(|t| matches!(&t.tok, Tok::Ident(k) if NAMING_KEYWORDS.contains(&k.as_str())))?;
    match &toks.get(keyword + 1)?.tok {
        Tok::Ident(name) => Some(name.clone()),
        _ => None,
    }
}

/// Index of the first token after `from` that starts a declaration in column 1
/// (a keyword or a decorator), or of the end-of-file token.
pub fn next_declaration(toks: &[Token], line_starts: &[bool], from: usize) -> usize {
    (from + 1..toks.len())
        .find(|&i| {
            matches!(toks[i].tok, Tok::Eof)
                || (line_starts[i]
                    && match &toks[i].tok {
                        Tok::At => true,
                        Tok::Ident(k) => DECLARATION_KEYWORDS.contains(&k.as_str()),
                        _ => false,
                    })
        })
        .unwrap_or(toks.len() - 1)
}

#[cfg(test)]
mod tests {
    use crate::parser::{Parsed, parse};

    #[test]
    fn every_syntax_error_is_reported_and_good_declarations_are_kept() {
        let src = "var a = \nvar b = 1\nparam c string = (\nvar d = b\noutput o int = )\n";
        let Parsed { file, errors } = parse(src);
        let lines: Vec<usize> = errors.iter().map(|e| e.line_col(src).0).collect();
        // The open parenthesis lets the expression go on to line 4, where it fails.
        assert_eq!(lines, [1, 4, 5]);
        let names: Vec<&str> = file
            .decls
            .iter()
            .filter_map(|d| d.name.as_ref().map(|(n, _)| n.as_str()))
            .collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(file.unparsed_names, ["a", "c", "o"]);
    }

    #[test]
    fn every_lexical_error_is_reported() {
        let src = "var a = 'open\nvar b = 1\nvar c = 'bad \\q escape'\nvar d = #\n";
        let Parsed { file, errors } = parse(src);
        let lines: Vec<usize> = errors.iter().map(|e| e.line_col(src).0).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert_eq!(file.decls.len(), 1);
        assert_eq!(file.unparsed_names, ["a", "c", "d"]);
    }
}
