//! Grammar of type expressions: unions, arrays, nullability, object and tuple types.

use super::*;

impl Parser {
    pub(super) fn type_expr(&mut self) -> PResult<TypeExpr> {
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

    pub(super) fn type_expr_inner(&mut self) -> PResult<TypeExpr> {
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

    pub(super) fn type_postfix(&mut self) -> PResult<TypeExpr> {
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
                Tok::LBrack => t = self.type_item_access(t)?,
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
                Tok::Dot => t = self.type_property_access(t)?,
                _ => return Ok(t),
            }
        }
    }

    /// `[*]` or `[n]` after type `t`.
    fn type_item_access(&mut self, t: TypeExpr) -> PResult<TypeExpr> {
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
        Ok(TypeExpr {
            span: t.span.to(end),
            kind: TypeKind::Access(Box::new(t), access),
        })
    }

    /// `.name` or `.*` after type `t`.
    fn type_property_access(&mut self, t: TypeExpr) -> PResult<TypeExpr> {
        self.bump();
        let (name, sp) = if matches!(self.peek(), Tok::Star) {
            ("*".to_string(), self.bump().span)
        } else {
            self.ident("a property name")?
        };
        Ok(match t.kind {
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
        })
    }

    pub(super) fn type_primary(&mut self) -> PResult<TypeExpr> {
        let start = self.span();
        match self.peek().clone() {
            Tok::Ident(first) => self.named_type(first, start),
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
            Tok::LBrack => self.tuple_type(start),
            _ => Err(Diagnostic::error(
                "BCP279",
                "Expected a type at this location. Please specify a valid type expression or one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\".",
                start,
            )),
        }
    }

    /// A tuple type `[t1, t2, ...]` after its opening bracket.
    fn tuple_type(&mut self, start: Span) -> PResult<TypeExpr> {
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

    /// A type name, possibly namespaced or parameterized, or a keyword literal type.
    fn named_type(&mut self, first: String, start: Span) -> PResult<TypeExpr> {
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
            let end =
                args.and_then(|a| self.expect(&Tok::Gt, "the \">\" character").map(|e| (a, e)));
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

    pub(super) fn object_type_body(&mut self, start: Span) -> PResult<TypeExpr> {
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
