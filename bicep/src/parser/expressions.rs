//! Grammar of expressions: operators by precedence, lambdas, postfix chains,
//! literals, arrays, objects and `for` loops.

use super::limits::{MAX_CHAIN, too_deep};
use super::*;

impl Parser {
    pub fn expr(&mut self) -> PResult<Expr> {
        self.ternary(0)
    }

    pub(super) fn ternary(&mut self, depth: usize) -> PResult<Expr> {
        self.nesting += 1;
        let result = if self.nesting > MAX_DEPTH {
            Err(too_deep(self.span()))
        } else {
            self.ternary_inner(depth)
        };
        self.nesting -= 1;
        result
    }

    pub(super) fn ternary_inner(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            return Err(too_deep(self.span()));
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

    pub(super) fn try_lambda(&mut self, depth: usize) -> PResult<Option<Expr>> {
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

    pub(super) fn binary(&mut self, min_prec: u8, depth: usize) -> PResult<Expr> {
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

    pub(super) fn unary(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            return Err(too_deep(self.span()));
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

    pub(super) fn postfix(&mut self, depth: usize) -> PResult<Expr> {
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
                Tok::Dot => e = self.dot_access(e, depth)?,
                Tok::LBrack => e = self.index_access(e)?,
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

    /// `[index]`, `[?index]` or `[^n]` after `e`.
    fn index_access(&mut self, e: Expr) -> PResult<Expr> {
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
        Ok(Expr {
            span: e.span.to(self.prev_span()),
            kind: ExprKind::Index {
                base: Box::new(e),
                index: Box::new(idx),
                safe,
            },
        })
    }

    /// `.name`, `.?name`, `ns.fn(...)` or `.method(...)` after `e`.
    fn dot_access(&mut self, e: Expr, depth: usize) -> PResult<Expr> {
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
                return Ok(Expr {
                    span: e.span.to(self.prev_span()),
                    kind: ExprKind::Call {
                        namespace: Some(ns.clone()),
                        name,
                        args,
                    },
                });
            }
            let args = self.call_args(depth)?;
            return Ok(Expr {
                span: e.span.to(self.prev_span()),
                kind: ExprKind::MethodCall {
                    base: Box::new(e),
                    name,
                    args,
                },
            });
        }
        Ok(Expr {
            span: e.span.to(sp),
            kind: ExprKind::Member {
                base: Box::new(e),
                name,
                safe,
            },
        })
    }

    pub(super) fn call_args(&mut self, depth: usize) -> PResult<Vec<Expr>> {
        self.expect(&Tok::LParen, "the \"(\" character")?;
        self.nl_free.push(true);
        let r = (|| {
            let mut args = Vec::new();
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            loop {
                if depth > MAX_DEPTH {
                    return Err(too_deep(self.span()));
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

    pub(super) fn primary(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            return Err(too_deep(self.span()));
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
            Tok::Str { pieces, holes } => self.interpolated_string(pieces, holes, start, depth),
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
            Tok::Ident(name) => self.identifier_or_call(name, start, depth),
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

    /// A keyword literal, a function call or a plain identifier.
    fn identifier_or_call(&mut self, name: String, start: Span, depth: usize) -> PResult<Expr> {
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

    /// A string literal; each interpolation hole is parsed as an expression of its own.
    fn interpolated_string(
        &mut self,
        pieces: Vec<String>,
        holes: Vec<Vec<Token>>,
        start: Span,
        depth: usize,
    ) -> PResult<Expr> {
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

    pub(super) fn array_or_for(&mut self, depth: usize) -> PResult<Expr> {
        let start = self.bump().span;
        self.nl_free.push(false);
        let r = self.array_body(start, depth);
        self.nl_free.pop();
        r
    }

    pub(super) fn array_body(&mut self, start: Span, depth: usize) -> PResult<Expr> {
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

    pub(super) fn expect_ident_kw(&mut self, kw: &str) -> PResult<()> {
        match self.peek() {
            Tok::Ident(s) if s == kw => {
                self.bump();
                Ok(())
            }
            _ => Err(self.unexpected(&format!("the \"{kw}\" keyword"))),
        }
    }

    pub(super) fn for_binding(&mut self) -> PResult<(Option<String>, Option<String>)> {
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

    pub(super) fn object(&mut self) -> PResult<Expr> {
        let start = self.expect(&Tok::LBrace, "the \"{\" character")?;
        self.nl_free.push(false);
        let r = self.object_body(start);
        self.nl_free.pop();
        r
    }

    pub(super) fn object_body(&mut self, start: Span) -> PResult<Expr> {
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
                    let span = self.bump().span;
                    let key = ObjectKey {
                        name: Some(name),
                        interpolated: None,
                        span,
                    };
                    items.push(self.property_value(decorators, key)?);
                }
                Tok::Str { pieces, holes } => {
                    let (name, interpolated) = if holes.is_empty() {
                        self.bump();
                        (pieces.into_iter().next(), None)
                    } else {
                        (None, Some(Box::new(self.primary(0)?)))
                    };
                    let span = self.prev_span();
                    let key = ObjectKey {
                        name,
                        interpolated,
                        span,
                    };
                    items.push(self.property_value(decorators, key)?);
                }
                Tok::MultiStr(s) => {
                    let span = self.bump().span;
                    let key = ObjectKey {
                        name: Some(s),
                        interpolated: None,
                        span,
                    };
                    items.push(self.property_value(decorators, key)?);
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

    /// The `: value` after an object property's key.
    fn property_value(&mut self, decorators: Vec<Expr>, key: ObjectKey) -> PResult<ObjectItem> {
        self.expect(&Tok::Colon, "the \":\" character")?;
        Ok(ObjectItem::Property {
            decorators,
            key,
            value: self.expr()?,
        })
    }
}
