//! Recursive-descent parser for the Bicep grammar.
//!
//! Newlines separate declarations and array/object items; inside parentheses they
//! are insignificant, which the parser tracks with a stack of bracket contexts.

use crate::ast::*;
use crate::diag::{Diagnostic, Span};
use crate::lexer::{Tok, Token, describe};

/// Parses a whole Bicep file, stopping at the first error.
pub fn parse(src: &str) -> Result<File, Diagnostic> {
    let (file, errors) = parse_recovering(src);
    match errors.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(file),
    }
}

/// Most errors reported for one file; past that the rest is noise.
const MAX_ERRORS: usize = 100;

/// Parses a whole Bicep file, reporting every lexical and syntax error (in source
/// order) with the declarations that parsed. A declaration with an error is
/// dropped, its name kept in [`File::unparsed_names`].
pub fn parse_recovering(src: &str) -> (File, Vec<Diagnostic>) {
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
    (file, errors)
}

/// The symbol an `extension` declaration introduces: its `as` alias, else its name.
fn extension_alias(toks: &[Token]) -> Option<(String, Span)> {
    let alias = toks
        .windows(2)
        .rev()
        .find_map(|w| match (&w[0].tok, &w[1].tok) {
            (Tok::Ident(a), Tok::Ident(n)) if a == "as" => Some((n.clone(), w[1].span)),
            _ => None,
        });
    alias.or_else(|| match toks.first() {
        Some(Token {
            tok: Tok::Ident(n),
            span,
        }) => Some((n.clone(), *span)),
        _ => None,
    })
}

/// Longest operator chain accepted in one expression level.
const MAX_CHAIN: usize = 100;
/// Deepest syntax tree accepted; later passes recurse over the tree.
const MAX_TREE_DEPTH: usize = 128;

fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error("BCP-DEPTH", "The expression is nested too deeply.", span)
}

fn check_depth(d: &Decl) -> Result<(), Diagnostic> {
    let mut exprs: Vec<&Expr> = d.decorators.iter().collect();
    match &d.kind {
        DeclKind::TargetScope(e) | DeclKind::Metadata(e) | DeclKind::Assert(e) => exprs.push(e),
        DeclKind::Param { default, .. } => exprs.extend(default.iter()),
        DeclKind::Var { value, .. } | DeclKind::Output { value, .. } => exprs.push(value),
        DeclKind::Resource { value, .. } | DeclKind::Module { value, .. } => exprs.push(value),
        _ => {}
    }
    for e in exprs {
        if expr_depth(e, MAX_TREE_DEPTH) > MAX_TREE_DEPTH {
            return Err(too_deep(e.span));
        }
    }
    Ok(())
}

/// Depth of `e`, computed no deeper than `limit` (so this recursion is bounded too).
fn expr_depth(e: &Expr, limit: usize) -> usize {
    if limit == 0 {
        return 1;
    }
    let sub = |x: &Expr| expr_depth(x, limit - 1);
    let inner = match &e.kind {
        ExprKind::Str { holes, .. } => holes.iter().map(sub).max().unwrap_or(0),
        ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Ident(_) => 0,
        ExprKind::Array(items) => items
            .iter()
            .map(|i| match i {
                ArrayItem::Value(x) | ArrayItem::Spread(x) => sub(x),
            })
            .max()
            .unwrap_or(0),
        ExprKind::Object(items) => items
            .iter()
            .map(|i| match i {
                ObjectItem::Property { value, key, .. } => {
                    sub(value).max(key.interpolated.as_deref().map(sub).unwrap_or(0))
                }
                ObjectItem::Spread(x) => sub(x),
                ObjectItem::NestedResource(d) => match &d.kind {
                    DeclKind::Resource { value, .. } => sub(value),
                    _ => 0,
                },
            })
            .max()
            .unwrap_or(0),
        ExprKind::Call { args, .. } => args.iter().map(sub).max().unwrap_or(0),
        ExprKind::MethodCall { base, args, .. } => {
            args.iter().map(sub).max().unwrap_or(0).max(sub(base))
        }
        ExprKind::Member { base, .. }
        | ExprKind::ChildAccess { base, .. }
        | ExprKind::NonNull(base)
        | ExprKind::Paren(base)
        | ExprKind::Unary { operand: base, .. } => sub(base),
        ExprKind::Index { base, index, .. } => sub(base).max(sub(index)),
        ExprKind::Binary { left, right, .. } => sub(left).max(sub(right)),
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => sub(cond).max(sub(then)).max(sub(otherwise)),
        ExprKind::For { iterable, body, .. } => sub(iterable).max(sub(body)),
        ExprKind::If { cond, body } => sub(cond).max(sub(body)),
        ExprKind::Lambda { body, .. } => sub(body),
    };
    inner + 1
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

    /// Every declaration that parses; after an error, parsing resumes at the next
    /// line that starts (in column 1) with a decorator or a keyword.
    fn file(&mut self, line_starts: &[bool], errors: &mut Vec<Diagnostic>) -> File {
        let mut file = File::default();
        loop {
            self.skip_nl();
            if matches!(self.peek(), Tok::Eof) || errors.len() >= MAX_ERRORS {
                return file;
            }
            let start = self.pos;
            let parsed = self.decorators().and_then(|decorators| {
                let decl = self.decl(decorators)?;
                self.end_of_line()?;
                Ok(decl)
            });
            match parsed {
                Ok(decl) => file.decls.push(decl),
                Err(e) => {
                    errors.push(e);
                    file.unparsed_names
                        .extend(crate::recovery::declared_name(&self.toks[start..]));
                    self.pos = crate::recovery::next_declaration(&self.toks, line_starts, start);
                    self.nl_free = vec![false];
                    self.nesting = 0;
                }
            }
        }
    }

    fn decorators(&mut self) -> PResult<Vec<Expr>> {
        let mut out = Vec::new();
        while matches!(self.peek(), Tok::At) {
            self.bump();
            let e = self.postfix(0)?;
            if !matches!(e.kind, ExprKind::Call { .. }) {
                return Err(Diagnostic::error(
                    "BCP123",
                    "Expected a namespace or decorator name at this location.",
                    e.span,
                ));
            }
            out.push(e);
            self.end_of_line()?;
        }
        if let Some(last) = out.last()
            && matches!(self.peek(), Tok::Eof | Tok::RBrace | Tok::RBrack)
        {
            return Err(Diagnostic::error(
                "BCP147",
                "Expected a declaration after the decorator.",
                last.span,
            ));
        }
        Ok(out)
    }

    fn decl(&mut self, decorators: Vec<Expr>) -> PResult<Decl> {
        let (kw, kw_span) = match self.peek().clone() {
            Tok::Ident(s) => (s, self.bump().span),
            _ => {
                return Err(Diagnostic::error(
                    "BCP007",
                    "This declaration type is not recognized. Specify a metadata, parameter, variable, resource, or output declaration.",
                    self.span(),
                ));
            }
        };
        let mut name = None;
        let kind = match kw.as_str() {
            "targetScope" => {
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::TargetScope(self.expr()?)
            }
            "metadata" => {
                name = Some(self.ident("a metadata identifier")?);
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Metadata(self.expr()?)
            }
            "param" => {
                name = Some(self.ident("a parameter identifier")?);
                // `.bicepparam` files assign values without a type.
                let ty = if matches!(self.peek(), Tok::Assign) {
                    None
                } else {
                    Some(self.type_expr()?)
                };
                let default = if self.eat(&Tok::Assign) {
                    Some(self.expr()?)
                } else {
                    None
                };
                DeclKind::Param { ty, default }
            }
            "var" => {
                name = Some(self.ident("a variable identifier")?);
                let ty = if matches!(self.peek(), Tok::Assign) {
                    None
                } else {
                    Some(self.type_expr()?)
                };
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Var {
                    ty,
                    value: self.expr()?,
                }
            }
            "resource" => {
                name = Some(self.ident("a resource identifier")?);
                let type_string = self.primary(0)?;
                if !matches!(type_string.kind, ExprKind::Str { .. }) {
                    return Err(Diagnostic::error(
                        "BCP068",
                        "Expected a resource type string. Specify a valid resource type of format \"<type-name>@<apiVersion>\".",
                        type_string.span,
                    ));
                }
                let existing = matches!(self.peek(), Tok::Ident(s) if s == "existing");
                if existing {
                    self.bump();
                }
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Resource {
                    type_string,
                    existing,
                    value: self.decl_body()?,
                }
            }
            "module" => {
                name = Some(self.ident("a module identifier")?);
                let path = self.primary(0)?;
                if !matches!(path.kind, ExprKind::Str { .. }) {
                    return Err(Diagnostic::error(
                        "BCP097",
                        "Expected a module path string.",
                        path.span,
                    ));
                }
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Module {
                    path,
                    value: self.decl_body()?,
                }
            }
            "output" => {
                name = Some(self.ident("an output identifier")?);
                let ty = self.type_expr()?;
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Output {
                    ty,
                    value: self.expr()?,
                }
            }
            "type" => {
                name = Some(self.ident("a type identifier")?);
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Type(self.type_expr()?)
            }
            "assert" => {
                name = Some(self.ident("an assert identifier")?);
                self.expect(&Tok::Assign, "the \"=\" character")?;
                DeclKind::Assert(self.expr()?)
            }
            // `using 'path'` names the template a `.bicepparam` file is for.
            "using" if matches!(self.peek(), Tok::Str { .. }) => {
                let path = self.primary(0)?;
                if matches!(self.peek(), Tok::Ident(s) if s == "with") {
                    self.skip_line_balanced()?;
                }
                DeclKind::Using(Some(path))
            }
            "func" => {
                name = Some(self.ident("a function identifier")?);
                self.expect(&Tok::LParen, "the \"(\" character")?;
                self.nl_free.push(true);
                let params = (|| {
                    let mut params = Vec::new();
                    if self.eat(&Tok::RParen) {
                        return Ok(params);
                    }
                    loop {
                        let (arg, _) = self.ident("a function argument identifier")?;
                        params.push((arg, self.type_expr()?));
                        if self.eat(&Tok::Comma) {
                            continue;
                        }
                        self.expect(&Tok::RParen, "the \")\" character")?;
                        return Ok(params);
                    }
                })();
                self.nl_free.pop();
                let params = params?;
                let output = self.type_expr()?;
                self.expect(&Tok::Arrow, "the \"=>\" characters")?;
                DeclKind::Func {
                    params,
                    output,
                    body: self.expr()?,
                }
            }
            "import" | "extension" | "provider" | "using" | "test" => {
                if kw == "test" {
                    name = Some(self.ident("an identifier")?);
                }
                let from = self.pos;
                self.skip_line_balanced()?;
                if kw == "extension" || kw == "provider" {
                    name = extension_alias(&self.toks[from..self.pos]);
                }
                match kw.as_str() {
                    "import" => DeclKind::Import(crate::imports::spec(&self.toks[from..self.pos])),
                    "using" => DeclKind::Using(None),
                    "test" => DeclKind::Test,
                    _ => DeclKind::Extension,
                }
            }
            _ => {
                return Err(Diagnostic::error(
                    "BCP007",
                    "This declaration type is not recognized. Specify a metadata, parameter, variable, resource, or output declaration.",
                    kw_span,
                ));
            }
        };
        Ok(Decl {
            decorators,
            kind,
            name,
            span: kw_span.to(self.prev_span()),
            keyword_span: kw_span,
        })
    }

    /// Consumes the rest of a declaration this compiler only recognises, keeping
    /// brackets balanced so the next declaration parses normally.
    fn skip_line_balanced(&mut self) -> PResult<()> {
        let mut depth = 0usize;
        let mut outer_open = self.toks[self.pos].span;
        loop {
            let t = &self.toks[self.pos];
            match t.tok {
                Tok::Eof => {
                    // The file ends where the closing bracket was expected: on
                    // its last line.
                    let last_line = self.toks[..self.pos]
                        .iter()
                        .rev()
                        .find(|t| matches!(t.tok, Tok::NewLine))
                        .map_or(outer_open, |t| t.span);
                    return if depth == 0 {
                        Ok(())
                    } else {
                        Err(Diagnostic::error(
                            "BCP018",
                            "This bracket is not closed.",
                            last_line,
                        ))
                    };
                }
                Tok::NewLine if depth == 0 => return Ok(()),
                Tok::LBrace | Tok::LBrack | Tok::LParen => {
                    if depth == 0 {
                        outer_open = t.span;
                    }
                    depth += 1
                }
                Tok::RBrace | Tok::RBrack | Tok::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// The value of a resource or module: an object, `if (...) {...}` or a `for`.
    fn decl_body(&mut self) -> PResult<Expr> {
        let after_assign = self.prev_span();
        // The body may start on the line after `=`.
        self.skip_nl();
        let start = self.span();
        match self.peek().clone() {
            Tok::Ident(s) if s == "if" => {
                self.bump();
                self.expect(&Tok::LParen, "the \"(\" character")?;
                self.nl_free.push(true);
                let cond = self.expr();
                self.nl_free.pop();
                let cond = cond?;
                self.expect(&Tok::RParen, "the \")\" character")?;
                let body = self.object()?;
                Ok(Expr {
                    span: start.to(body.span),
                    kind: ExprKind::If {
                        cond: Box::new(cond),
                        body: Box::new(body),
                    },
                })
            }
            Tok::LBrace => self.object(),
            Tok::LBrack => self.primary(0),
            // A body missing from the end of the line is reported there.
            _ => Err(Diagnostic::error(
                "BCP018",
                "Expected the \"{\", \"[\" or \"if\" at this location.",
                Span::new(after_assign.end, after_assign.end),
            )),
        }
    }

    pub fn expr(&mut self) -> PResult<Expr> {
        self.ternary(0)
    }

    fn ternary(&mut self, depth: usize) -> PResult<Expr> {
        self.nesting += 1;
        let result = if self.nesting > MAX_DEPTH {
            Err(Diagnostic::error(
                "BCP-DEPTH",
                "The expression is nested too deeply.",
                self.span(),
            ))
        } else {
            self.ternary_inner(depth)
        };
        self.nesting -= 1;
        result
    }

    fn ternary_inner(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            return Err(Diagnostic::error(
                "BCP-DEPTH",
                "The expression is nested too deeply.",
                self.span(),
            ));
        }
        // Lambdas: `x => ...` and `(a, b) => ...`.
        if let Some(l) = self.try_lambda(depth)? {
            return Ok(l);
        }
        let cond = self.binary(1, depth)?;
        if self.next_after_newlines_is(&Tok::Question) {
            self.skip_nl();
            self.bump();
            let then = self.ternary(depth + 1)?;
            if self.next_after_newlines_is(&Tok::Colon) {
                self.skip_nl();
            }
            self.expect(&Tok::Colon, "the \":\" character")?;
            let otherwise = self.ternary(depth + 1)?;
            return Ok(Expr {
                span: cond.span.to(otherwise.span),
                kind: ExprKind::Ternary {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                },
            });
        }
        Ok(cond)
    }

    fn try_lambda(&mut self, depth: usize) -> PResult<Option<Expr>> {
        let start = self.span();
        if let (Tok::Ident(name), Tok::Arrow) = (self.peek().clone(), self.peek_at(1).clone()) {
            self.bump();
            self.bump();
            let body = self.ternary(depth + 1)?;
            return Ok(Some(Expr {
                span: start.to(body.span),
                kind: ExprKind::Lambda {
                    params: vec![name],
                    body: Box::new(body),
                },
            }));
        }
        if !matches!(self.peek(), Tok::LParen) {
            return Ok(None);
        }
        // Scan `( ident (, ident)* )` followed by `=>`.
        let mut i = self.pos + 1;
        let mut params = Vec::new();
        let skip = |i: &mut usize, toks: &[Token]| {
            while matches!(toks[*i].tok, Tok::NewLine) {
                *i += 1;
            }
        };
        skip(&mut i, &self.toks);
        loop {
            match &self.toks[i].tok {
                Tok::RParen => {
                    i += 1;
                    break;
                }
                Tok::Ident(n) => {
                    params.push(n.clone());
                    i += 1;
                    skip(&mut i, &self.toks);
                    match self.toks[i].tok {
                        Tok::Comma => {
                            i += 1;
                            skip(&mut i, &self.toks);
                            // `(a, , b) =>`: a lambda with a parameter missing.
                            if matches!(self.toks[i].tok, Tok::Comma) {
                                return Err(Diagnostic::error(
                                    "BCP015",
                                    "Expected a variable identifier at this location.",
                                    self.toks[i].span,
                                ));
                            }
                        }
                        Tok::RParen => {}
                        _ => return Ok(None),
                    }
                }
                _ => return Ok(None),
            }
        }
        if !matches!(self.toks[i].tok, Tok::Arrow) {
            return Ok(None);
        }
        self.pos = i + 1;
        let body = self.ternary(depth + 1)?;
        Ok(Some(Expr {
            span: start.to(body.span),
            kind: ExprKind::Lambda {
                params,
                body: Box::new(body),
            },
        }))
    }

    fn binary(&mut self, min_prec: u8, depth: usize) -> PResult<Expr> {
        let mut left = self.unary(depth)?;
        let mut chain = 0;
        loop {
            chain += 1;
            if chain > MAX_CHAIN {
                return Err(too_deep(left.span));
            }
            let (op, prec) = match self.peek() {
                Tok::QuestionQuestion => (BinaryOp::Coalesce, 1),
                Tok::OrOr => (BinaryOp::Or, 2),
                Tok::AndAnd => (BinaryOp::And, 3),
                Tok::EqEq => (BinaryOp::Eq, 4),
                Tok::NotEq => (BinaryOp::NotEq, 4),
                Tok::EqTilde => (BinaryOp::EqInsensitive, 4),
                Tok::NotTilde => (BinaryOp::NotEqInsensitive, 4),
                Tok::Lt => (BinaryOp::Lt, 5),
                Tok::Le => (BinaryOp::Le, 5),
                Tok::Gt => (BinaryOp::Gt, 5),
                Tok::Ge => (BinaryOp::Ge, 5),
                Tok::Plus => (BinaryOp::Add, 6),
                Tok::Minus => (BinaryOp::Sub, 6),
                Tok::Star => (BinaryOp::Mul, 7),
                Tok::Slash => (BinaryOp::Div, 7),
                Tok::Percent => (BinaryOp::Mod, 7),
                _ => return Ok(left),
            };
            if prec < min_prec {
                return Ok(left);
            }
            self.bump();
            let right = self.binary(prec + 1, depth + 1)?;
            left = Expr {
                span: left.span.to(right.span),
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
            };
        }
    }

    fn unary(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            return Err(Diagnostic::error(
                "BCP-DEPTH",
                "The expression is nested too deeply.",
                self.span(),
            ));
        }
        let start = self.span();
        let op = match self.peek() {
            Tok::Bang => UnaryOp::Not,
            Tok::Minus => UnaryOp::Minus,
            _ => return self.postfix(depth),
        };
        self.bump();
        let operand = self.unary(depth + 1)?;
        Ok(Expr {
            span: start.to(operand.span),
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
        })
    }

    fn postfix(&mut self, depth: usize) -> PResult<Expr> {
        let mut e = self.primary(depth)?;
        let mut chain = 0;
        loop {
            chain += 1;
            if chain > MAX_CHAIN {
                return Err(too_deep(e.span));
            }
            // Postfix operators must follow on the same line.
            if matches!(self.toks[self.pos].tok, Tok::NewLine) {
                return Ok(e);
            }
            match self.peek().clone() {
                Tok::Dot => {
                    self.bump();
                    let safe = self.eat(&Tok::Question);
                    let (name, sp) = match self.peek().clone() {
                        Tok::Ident(s) => (s, self.bump().span),
                        _ => {
                            return Err(Diagnostic::error(
                                "BCP020",
                                "Expected a function or property name at this location.",
                                self.span(),
                            ));
                        }
                    };
                    if matches!(self.toks[self.pos].tok, Tok::LParen) {
                        if let ExprKind::Ident(ns) = &e.kind {
                            let args = self.call_args(depth)?;
                            e = Expr {
                                span: e.span.to(self.prev_span()),
                                kind: ExprKind::Call {
                                    namespace: Some(ns.clone()),
                                    name,
                                    args,
                                },
                            };
                            continue;
                        }
                        let args = self.call_args(depth)?;
                        e = Expr {
                            span: e.span.to(self.prev_span()),
                            kind: ExprKind::MethodCall {
                                base: Box::new(e),
                                name,
                                args,
                            },
                        };
                        continue;
                    }
                    e = Expr {
                        span: e.span.to(sp),
                        kind: ExprKind::Member {
                            base: Box::new(e),
                            name,
                            safe,
                        },
                    };
                }
                Tok::LBrack => {
                    self.bump();
                    self.nl_free.push(true);
                    let inner = (|| {
                        let safe = self.eat(&Tok::Question);
                        let idx = if matches!(self.peek(), Tok::Caret) {
                            let caret = self.bump().span;
                            let operand = self.expr()?;
                            Expr {
                                span: caret.to(operand.span),
                                kind: ExprKind::Unary {
                                    op: UnaryOp::FromEnd,
                                    operand: Box::new(operand),
                                },
                            }
                        } else {
                            self.expr()?
                        };
                        self.expect(&Tok::RBrack, "the \"]\" character")?;
                        Ok((safe, idx))
                    })();
                    self.nl_free.pop();
                    let (safe, idx) = inner?;
                    e = Expr {
                        span: e.span.to(self.prev_span()),
                        kind: ExprKind::Index {
                            base: Box::new(e),
                            index: Box::new(idx),
                            safe,
                        },
                    };
                }
                Tok::ColonColon => {
                    self.bump();
                    let (name, sp) = self.ident("a nested resource name")?;
                    e = Expr {
                        span: e.span.to(sp),
                        kind: ExprKind::ChildAccess {
                            base: Box::new(e),
                            name,
                        },
                    };
                }
                Tok::Bang => {
                    // `x!` only when not followed by `=` / `~` (those lex as `!=`/`!~`).
                    let sp = self.bump().span;
                    e = Expr {
                        span: e.span.to(sp),
                        kind: ExprKind::NonNull(Box::new(e)),
                    };
                }
                _ => return Ok(e),
            }
        }
    }

    fn call_args(&mut self, depth: usize) -> PResult<Vec<Expr>> {
        self.expect(&Tok::LParen, "the \"(\" character")?;
        self.nl_free.push(true);
        let r = (|| {
            let mut args = Vec::new();
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            loop {
                if depth > MAX_DEPTH {
                    return Err(Diagnostic::error(
                        "BCP-DEPTH",
                        "The expression is nested too deeply.",
                        self.span(),
                    ));
                }
                args.push(self.ternary(depth + 1)?);
                if self.eat(&Tok::Comma) {
                    continue;
                }
                self.expect(&Tok::RParen, "the \")\" character")?;
                return Ok(args);
            }
        })();
        self.nl_free.pop();
        r
    }

    fn primary(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            return Err(Diagnostic::error(
                "BCP-DEPTH",
                "The expression is nested too deeply.",
                self.span(),
            ));
        }
        let start = self.span();
        match self.peek().clone() {
            Tok::Int(s) => {
                self.bump();
                Ok(Expr {
                    kind: ExprKind::Int(s),
                    span: start,
                })
            }
            Tok::Str { pieces, holes } => {
                self.bump();
                let mut parsed = Vec::with_capacity(holes.len());
                for hole in holes {
                    let end_span = hole
                        .last()
                        .map(|t| Span::new(t.span.end, t.span.end))
                        .unwrap_or(start);
                    let mut toks = hole;
                    toks.push(Token {
                        tok: Tok::Eof,
                        span: end_span,
                    });
                    let mut sub = Parser::new(toks);
                    sub.nl_free = vec![true];
                    if matches!(sub.peek(), Tok::Eof) {
                        return Err(Diagnostic::error(
                            "BCP009",
                            "Expected a literal value, an array, an object, a parenthesized expression, or a function call at this location.",
                            end_span,
                        ));
                    }
                    let e = sub.ternary(depth + 1)?;
                    if !matches!(sub.peek(), Tok::Eof) {
                        return Err(sub.unexpected("the \"}\" character"));
                    }
                    parsed.push(e);
                }
                Ok(Expr {
                    kind: ExprKind::Str {
                        pieces,
                        holes: parsed,
                    },
                    span: start,
                })
            }
            Tok::MultiStr(s) => {
                self.bump();
                Ok(Expr {
                    kind: ExprKind::Str {
                        pieces: vec![s],
                        holes: vec![],
                    },
                    span: start,
                })
            }
            Tok::Ident(name) => {
                self.bump();
                match name.as_str() {
                    "true" | "false" => {
                        return Ok(Expr {
                            kind: ExprKind::Bool(name == "true"),
                            span: start,
                        });
                    }
                    "null" => {
                        return Ok(Expr {
                            kind: ExprKind::Null,
                            span: start,
                        });
                    }
                    _ => {}
                }
                if matches!(self.toks[self.pos].tok, Tok::LParen) {
                    let args = self.call_args(depth)?;
                    return Ok(Expr {
                        span: start.to(self.prev_span()),
                        kind: ExprKind::Call {
                            namespace: None,
                            name,
                            args,
                        },
                    });
                }
                Ok(Expr {
                    kind: ExprKind::Ident(name),
                    span: start,
                })
            }
            Tok::LParen => {
                self.bump();
                self.nl_free.push(true);
                let inner = (|| {
                    let e = self.expr()?;
                    self.expect(&Tok::RParen, "the \")\" character")?;
                    Ok(e)
                })();
                self.nl_free.pop();
                let e = inner?;
                Ok(Expr {
                    span: start.to(self.prev_span()),
                    kind: ExprKind::Paren(Box::new(e)),
                })
            }
            Tok::LBrack => self.array_or_for(depth),
            Tok::LBrace => self.object(),
            _ => Err(Diagnostic::error(
                "BCP009",
                "Expected a literal value, an array, an object, a parenthesized expression, or a function call at this location.",
                start,
            )),
        }
    }

    fn array_or_for(&mut self, depth: usize) -> PResult<Expr> {
        let start = self.bump().span;
        self.nl_free.push(false);
        let r = self.array_body(start, depth);
        self.nl_free.pop();
        r
    }

    fn array_body(&mut self, start: Span, depth: usize) -> PResult<Expr> {
        self.skip_nl();
        if matches!(self.peek(), Tok::Ident(s) if s == "for") {
            self.bump();
            let (item, index) = self.for_binding()?;
            self.expect_ident_kw("in")?;
            let iterable = self.expr()?;
            self.expect(&Tok::Colon, "the \":\" character")?;
            let body = match self.peek().clone() {
                Tok::Ident(s) if s == "if" => self.decl_body()?,
                _ => self.expr()?,
            };
            self.skip_nl();
            self.expect(&Tok::RBrack, "the \"]\" character")?;
            return Ok(Expr {
                span: start.to(self.prev_span()),
                kind: ExprKind::For {
                    item,
                    index,
                    iterable: Box::new(iterable),
                    body: Box::new(body),
                },
            });
        }
        let mut items = Vec::new();
        loop {
            self.skip_nl();
            if self.eat(&Tok::RBrack) {
                break;
            }
            if matches!(self.peek(), Tok::Ellipsis) {
                self.bump();
                items.push(ArrayItem::Spread(self.ternary(depth + 1)?));
            } else {
                items.push(ArrayItem::Value(self.ternary(depth + 1)?));
            }
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::NewLine => {}
                Tok::RBrack => {}
                _ => return Err(self.unexpected("the \"]\" character")),
            }
        }
        Ok(Expr {
            span: start.to(self.prev_span()),
            kind: ExprKind::Array(items),
        })
    }

    fn expect_ident_kw(&mut self, kw: &str) -> PResult<()> {
        match self.peek() {
            Tok::Ident(s) if s == kw => {
                self.bump();
                Ok(())
            }
            _ => Err(self.unexpected(&format!("the \"{kw}\" keyword"))),
        }
    }

    fn for_binding(&mut self) -> PResult<(Option<String>, Option<String>)> {
        if self.eat(&Tok::LParen) {
            let (item, _) = self.ident("a loop item variable identifier")?;
            self.expect(&Tok::Comma, "the \",\" character")?;
            let (index, _) = self.ident("a loop index variable identifier")?;
            self.expect(&Tok::RParen, "the \")\" character")?;
            return Ok((Some(item), Some(index)));
        }
        let (item, _) = self.ident("a loop item variable identifier")?;
        Ok((Some(item), None))
    }

    fn object(&mut self) -> PResult<Expr> {
        let start = self.expect(&Tok::LBrace, "the \"{\" character")?;
        self.nl_free.push(false);
        let r = self.object_body(start);
        self.nl_free.pop();
        r
    }

    fn object_body(&mut self, start: Span) -> PResult<Expr> {
        let mut items = Vec::new();
        loop {
            self.skip_nl();
            if self.eat(&Tok::RBrace) {
                break;
            }
            let decorators = if matches!(self.peek(), Tok::At) {
                self.decorators()?
            } else {
                Vec::new()
            };
            match self.peek().clone() {
                Tok::Ellipsis => {
                    self.bump();
                    items.push(ObjectItem::Spread(self.expr()?));
                }
                Tok::Ident(kw)
                    if kw == "resource"
                        && matches!(self.peek_at(1), Tok::Ident(_))
                        && !matches!(self.peek_at(1), Tok::Ident(s) if s == "existing") =>
                {
                    let decl = self.decl(decorators)?;
                    items.push(ObjectItem::NestedResource(Box::new(decl)));
                }
                Tok::Ident(name) => {
                    let sp = self.bump().span;
                    self.expect(&Tok::Colon, "the \":\" character")?;
                    let value = self.expr()?;
                    items.push(ObjectItem::Property {
                        decorators,
                        key: ObjectKey {
                            name: Some(name),
                            interpolated: None,
                            span: sp,
                        },
                        value,
                    });
                }
                Tok::Str { pieces, holes } => {
                    let (name, interpolated) = if holes.is_empty() {
                        self.bump();
                        (pieces.into_iter().next(), None)
                    } else {
                        (None, Some(Box::new(self.primary(0)?)))
                    };
                    let sp = self.prev_span();
                    self.expect(&Tok::Colon, "the \":\" character")?;
                    let value = self.expr()?;
                    items.push(ObjectItem::Property {
                        decorators,
                        key: ObjectKey {
                            name,
                            interpolated,
                            span: sp,
                        },
                        value,
                    });
                }
                Tok::MultiStr(s) => {
                    let sp = self.bump().span;
                    self.expect(&Tok::Colon, "the \":\" character")?;
                    let value = self.expr()?;
                    items.push(ObjectItem::Property {
                        decorators,
                        key: ObjectKey {
                            name: Some(s),
                            interpolated: None,
                            span: sp,
                        },
                        value,
                    });
                }
                _ => {
                    return Err(Diagnostic::error(
                        "BCP022",
                        "Expected a property name at this location.",
                        self.span(),
                    ));
                }
            }
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::NewLine | Tok::RBrace => {}
                _ => return Err(self.unexpected("a new line or the \"}\" character")),
            }
        }
        Ok(Expr {
            span: start.to(self.prev_span()),
            kind: ExprKind::Object(items),
        })
    }

    fn type_expr(&mut self) -> PResult<TypeExpr> {
        self.nesting += 1;
        let result = if self.nesting > MAX_DEPTH {
            Err(Diagnostic::error(
                "BCP-DEPTH",
                "The type expression is nested too deeply.",
                self.span(),
            ))
        } else {
            self.type_expr_inner()
        };
        self.nesting -= 1;
        result
    }

    fn type_expr_inner(&mut self) -> PResult<TypeExpr> {
        // A union may start with `|`.
        if self.eat(&Tok::Pipe) {
            self.skip_nl();
        }
        let first = self.type_postfix()?;
        if !self.next_after_newlines_is(&Tok::Pipe) {
            return Ok(first);
        }
        let mut members = vec![first];
        while self.next_after_newlines_is(&Tok::Pipe) {
            self.skip_nl();
            self.bump();
            self.skip_nl();
            members.push(self.type_postfix()?);
        }
        let span = members[0].span.to(members[members.len() - 1].span);
        Ok(TypeExpr {
            kind: TypeKind::Union(members),
            span,
        })
    }

    fn type_postfix(&mut self) -> PResult<TypeExpr> {
        let mut t = self.type_primary()?;
        loop {
            if matches!(self.toks[self.pos].tok, Tok::NewLine) {
                return Ok(t);
            }
            let next_is_close = matches!(self.peek_at(1), Tok::RBrack);
            match self.peek() {
                Tok::LBrack if next_is_close => {
                    self.bump();
                    let end = self.bump().span;
                    t = TypeExpr {
                        span: t.span.to(end),
                        kind: TypeKind::Array(Box::new(t)),
                    };
                }
                Tok::LBrack => {
                    self.bump();
                    let access = match self.bump().tok {
                        Tok::Star => TypeAccess::Items,
                        Tok::Int(n) => TypeAccess::Index(n.parse().unwrap_or(usize::MAX)),
                        _ => {
                            return Err(Diagnostic::error(
                                "BCP390",
                                "The array item type access operator requires \"*\" or an integer literal.",
                                self.prev_span(),
                            ));
                        }
                    };
                    let end = self.expect(&Tok::RBrack, "the \"]\" character")?;
                    t = TypeExpr {
                        span: t.span.to(end),
                        kind: TypeKind::Access(Box::new(t), access),
                    };
                }
                Tok::Question => {
                    let end = self.bump().span;
                    t = TypeExpr {
                        span: t.span.to(end),
                        kind: TypeKind::Nullable(Box::new(t)),
                    };
                }
                Tok::Bang => {
                    let end = self.bump().span;
                    t = TypeExpr {
                        span: t.span.to(end),
                        kind: TypeKind::NonNull(Box::new(t)),
                    };
                }
                Tok::Dot => {
                    self.bump();
                    let (name, sp) = if matches!(self.peek(), Tok::Star) {
                        ("*".to_string(), self.bump().span)
                    } else {
                        self.ident("a property name")?
                    };
                    t = match t.kind {
                        TypeKind::Name(base) => TypeExpr {
                            span: t.span.to(sp),
                            kind: TypeKind::Name(format!("{base}.{name}")),
                        },
                        other => {
                            let access = if name == "*" {
                                TypeAccess::AdditionalProperties
                            } else {
                                TypeAccess::Property(name)
                            };
                            TypeExpr {
                                span: t.span.to(sp),
                                kind: TypeKind::Access(
                                    Box::new(TypeExpr {
                                        kind: other,
                                        span: t.span,
                                    }),
                                    access,
                                ),
                            }
                        }
                    };
                }
                _ => return Ok(t),
            }
        }
    }

    fn type_primary(&mut self) -> PResult<TypeExpr> {
        let start = self.span();
        match self.peek().clone() {
            Tok::Ident(first) => {
                self.bump();
                // Namespaced generic types such as `sys.resourceInput<'...'>`.
                let mut name = first;
                while matches!(self.toks[self.pos].tok, Tok::Dot)
                    && matches!(self.toks[self.pos + 1].tok, Tok::Ident(_))
                    && matches!(self.toks.get(self.pos + 2).map(|t| &t.tok), Some(Tok::Lt))
                {
                    let Tok::Ident(part) = self.toks[self.pos + 1].tok.clone() else {
                        break;
                    };
                    name = format!("{name}.{part}");
                    self.pos += 2;
                }
                if name == "true" || name == "false" || name == "null" {
                    let e = Expr {
                        kind: if name == "null" {
                            ExprKind::Null
                        } else {
                            ExprKind::Bool(name == "true")
                        },
                        span: start,
                    };
                    return Ok(TypeExpr {
                        kind: TypeKind::Literal(e),
                        span: start,
                    });
                }
                if matches!(self.toks[self.pos].tok, Tok::Lt) {
                    self.bump();
                    self.nl_free.push(true);
                    let args = (|| {
                        let mut args = Vec::new();
                        loop {
                            args.push(self.primary(0)?);
                            if self.eat(&Tok::Comma) {
                                continue;
                            }
                            return Ok(args);
                        }
                    })();
                    let end = args
                        .and_then(|a| self.expect(&Tok::Gt, "the \">\" character").map(|e| (a, e)));
                    self.nl_free.pop();
                    let (args, end) = end?;
                    return Ok(TypeExpr {
                        kind: TypeKind::Parameterized(name, args),
                        span: start.to(end),
                    });
                }
                Ok(TypeExpr {
                    kind: TypeKind::Name(name),
                    span: start,
                })
            }
            Tok::Str { .. } | Tok::MultiStr(_) | Tok::Int(_) | Tok::Minus | Tok::Bang => {
                let e = self.unary(0)?;
                Ok(TypeExpr {
                    span: e.span,
                    kind: TypeKind::Literal(e),
                })
            }
            Tok::LParen => {
                self.bump();
                self.nl_free.push(true);
                let t = self.type_expr();
                self.nl_free.pop();
                let t = t?;
                self.expect(&Tok::RParen, "the \")\" character")?;
                Ok(t)
            }
            Tok::LBrace => {
                self.bump();
                self.nl_free.push(false);
                let r = self.object_type_body(start);
                self.nl_free.pop();
                r
            }
            Tok::LBrack => {
                self.bump();
                self.nl_free.push(false);
                let r = (|| {
                    let mut items = Vec::new();
                    loop {
                        self.skip_nl();
                        if self.eat(&Tok::RBrack) {
                            break;
                        }
                        let decorators = self.decorators()?;
                        items.push(ObjectTypeProperty {
                            decorators,
                            name: None,
                            ty: self.type_expr()?,
                        });
                        self.eat(&Tok::Comma);
                    }
                    Ok(TypeExpr {
                        kind: TypeKind::Tuple(items),
                        span: start.to(self.prev_span()),
                    })
                })();
                self.nl_free.pop();
                r
            }
            _ => Err(Diagnostic::error(
                "BCP279",
                "Expected a type at this location. Please specify a valid type expression or one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\".",
                start,
            )),
        }
    }

    fn object_type_body(&mut self, start: Span) -> PResult<TypeExpr> {
        let mut props = Vec::new();
        loop {
            self.skip_nl();
            if self.eat(&Tok::RBrace) {
                break;
            }
            let decorators = self.decorators()?;
            let name = match self.peek().clone() {
                Tok::Ident(n) => {
                    self.bump();
                    Some(n)
                }
                Tok::Str { pieces, holes } if holes.is_empty() => {
                    self.bump();
                    pieces.into_iter().next()
                }
                Tok::Star => {
                    self.bump();
                    None
                }
                _ => {
                    return Err(Diagnostic::error(
                        "BCP022",
                        "Expected a property name at this location.",
                        self.span(),
                    ));
                }
            };
            self.expect(&Tok::Colon, "the \":\" character")?;
            let ty = self.type_expr()?;
            props.push(ObjectTypeProperty {
                decorators,
                name,
                ty,
            });
            self.eat(&Tok::Comma);
        }
        Ok(TypeExpr {
            kind: TypeKind::Object(props),
            span: start.to(self.prev_span()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_declarations_and_precedence() {
        let f = parse("param a int = 1 + 2 * 3\nvar b = a > 1 ? 'x' : 'y'\n").unwrap();
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
        let f = parse(src).unwrap();
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
        assert!(parse("var x = concat(\n'a',\n'b'\n)\n").is_ok());
        assert!(parse("var x = [\n'a'\n'b', 'c'\n]").is_ok());
    }

    #[test]
    fn reports_unexpected_tokens_with_position() {
        let err = parse("var x = \nvar y = 1").unwrap_err();
        assert_eq!(err.code, "BCP009");
        assert_eq!(err.span.start, 8);
    }
}
