//! Recursive-descent parser for the Bicep grammar.
//!
//! Newlines separate declarations and array/object items; inside parentheses they
//! are insignificant, which the parser tracks with a stack of bracket contexts.

use crate::ast::*;
use crate::diag::{Diagnostic, Span};
use crate::lexer::{Tok, Token, describe};

mod declarations;
mod expressions;
mod import_spec;
mod limits;
mod types;

use limits::check_depth;

/// A parsed file and every lexical and syntax error found in it, in source order.
#[derive(Debug)]
pub struct Parsed {
    /// The declarations that parsed; one with an error is dropped, its name kept
    /// in [`File::unparsed_names`].
    pub file: File,
    pub errors: Vec<Diagnostic>,
}

impl Parsed {
    /// The file, or the first error, for callers that only need to know whether
    /// the text parses.
    pub fn into_result(self) -> Result<File, Diagnostic> {
        match self.errors.into_iter().next() {
            Some(first) => Err(first),
            None => Ok(self.file),
        }
    }
}

/// Most errors reported for one file; past that the rest is noise.
const MAX_ERRORS: usize = 100;

/// Parses a whole Bicep file, collecting every lexical and syntax error (each
/// with its span) with the declarations that parsed: the one entry point of the
/// lexer and parser.
pub fn parse(src: &str) -> Parsed {
    let (tokens, mut errors) = crate::recovery::lex_recovering(src, MAX_ERRORS);
    let line_starts = crate::recovery::line_start_flags(src, &tokens);
    let mut p = Parser::new(tokens);
    let mut syntax_errors = Vec::new();
    let mut file = p.file(&line_starts, &mut syntax_errors);
    // A line with a lexical error was cut short: its syntax errors are noise.
    let lexical_lines: Vec<usize> = errors.iter().map(|e| e.line_col(src).0).collect();
    syntax_errors.retain(|e| !lexical_lines.contains(&e.line_col(src).0));
    errors.extend(syntax_errors);
    file.decls.retain(|d| match check_depth(d) {
        Ok(()) => true,
        Err(e) => {
            errors.push(e);
            false
        }
    });
    errors.sort_by_key(|d| d.span.start);
    errors.truncate(MAX_ERRORS);
    Parsed { file, errors }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// True on top when newlines are insignificant (inside parentheses).
    nl_free: Vec<bool>,
    /// Current expression nesting, bounded so hostile input cannot overflow the stack.
    nesting: usize,
}

type PResult<T> = Result<T, Diagnostic>;

const MAX_DEPTH: usize = 64;

impl Parser {
    fn new(toks: Vec<Token>) -> Self {
        Parser {
            toks,
            pos: 0,
            nl_free: vec![false],
            nesting: 0,
        }
    }

    fn skip_free_newlines(&mut self) {
        if *self.nl_free.last().unwrap_or(&false) {
            self.skip_nl();
        }
    }

    fn skip_nl(&mut self) {
        while matches!(self.toks[self.pos].tok, Tok::NewLine) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> &Tok {
        self.skip_free_newlines();
        &self.toks[self.pos].tok
    }

    /// A ternary may continue on the next line with `?` or `:`.
    fn next_after_newlines_is(&self, tok: &Tok) -> bool {
        self.toks[self.pos..]
            .iter()
            .find(|t| t.tok != Tok::NewLine)
            .is_some_and(|t| &t.tok == tok)
    }

    fn peek_at(&mut self, off: usize) -> &Tok {
        self.skip_free_newlines();
        let i = (self.pos + off).min(self.toks.len() - 1);
        &self.toks[i].tok
    }

    fn span(&mut self) -> Span {
        self.skip_free_newlines();
        self.toks[self.pos].span
    }

    fn prev_span(&self) -> Span {
        self.toks[self.pos.saturating_sub(1)].span
    }

    fn bump(&mut self) -> Token {
        self.skip_free_newlines();
        let t = self.toks[self.pos].clone();
        if !matches!(t.tok, Tok::Eof) {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> PResult<Span> {
        if self.peek() == tok {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&mut self, what: &str) -> Diagnostic {
        let span = self.span();
        let found = describe(&self.toks[self.pos].tok);
        Diagnostic::error(
            "BCP018",
            format!("Expected {what} at this location, found {found}."),
            span,
        )
    }

    fn ident(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                let sp = self.bump().span;
                Ok((s, sp))
            }
            _ => Err(Diagnostic::error(
                "BCP013",
                format!("Expected {what} at this location."),
                self.span(),
            )),
        }
    }

    fn end_of_line(&mut self) -> PResult<()> {
        match self.peek() {
            Tok::NewLine | Tok::Eof => {
                self.skip_nl();
                Ok(())
            }
            _ => Err(Diagnostic::error(
                "BCP019",
                "Expected a new line character at this location.",
                self.span(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_declarations_and_precedence() {
        let f = parse("param a int = 1 + 2 * 3\nvar b = a > 1 ? 'x' : 'y'\n")
            .into_result()
            .unwrap();
        assert_eq!(f.decls.len(), 2);
        let DeclKind::Param {
            default: Some(d), ..
        } = &f.decls[0].kind
        else {
            panic!()
        };
        let ExprKind::Binary { op, right, .. } = &d.kind else {
            panic!()
        };
        assert_eq!(*op, BinaryOp::Add);
        assert!(matches!(
            right.kind,
            ExprKind::Binary {
                op: BinaryOp::Mul,
                ..
            }
        ));
    }

    #[test]
    fn parses_resource_with_nested_child_and_loop() {
        let src = "resource vnet 'Microsoft.Network/virtualNetworks@2020-01-01' = {\n  name: 'v'\n  resource sub 'subnets' = {\n    name: 's'\n  }\n}\nresource r 'a/b@1' = [for (x, i) in range(0, 2): if (i > 0) {\n  name: x\n}]\n";
        let f = parse(src).into_result().unwrap();
        let DeclKind::Resource { value, .. } = &f.decls[0].kind else {
            panic!()
        };
        let ExprKind::Object(items) = &value.kind else {
            panic!()
        };
        assert!(matches!(items[1], ObjectItem::NestedResource(_)));
        let DeclKind::Resource { value, .. } = &f.decls[1].kind else {
            panic!()
        };
        assert!(matches!(&value.kind, ExprKind::For { index: Some(i), .. } if i == "i"));
    }

    #[test]
    fn newlines_inside_parentheses_are_ignored() {
        assert!(parse("var x = concat(\n'a',\n'b'\n)\n").errors.is_empty());
        assert!(parse("var x = [\n'a'\n'b', 'c'\n]").errors.is_empty());
    }

    #[test]
    fn reports_unexpected_tokens_with_position() {
        let err = parse("var x = \nvar y = 1").into_result().unwrap_err();
        assert_eq!(err.code, "BCP009");
        assert_eq!(err.span.start, 8);
    }
}
