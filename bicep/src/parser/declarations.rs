//! Grammar of a file: decorators, declarations and their bodies.

use super::import_spec::import_spec;
use super::*;

/// The symbol a legacy `provider` declaration introduces: its `as` alias, else its name.
fn provider_alias(toks: &[Token]) -> Option<(String, Span)> {
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

impl Parser {
    /// Every declaration that parses; after an error, parsing resumes at the next
    /// line that starts (in column 1) with a decorator or a keyword.
    pub(super) fn file(&mut self, line_starts: &[bool], errors: &mut Vec<Diagnostic>) -> File {
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

    pub(super) fn decorators(&mut self) -> PResult<Vec<Expr>> {
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

    pub(super) fn decl(&mut self, decorators: Vec<Expr>) -> PResult<Decl> {
        let (kw, kw_span) = match self.peek().clone() {
            Tok::Ident(s) => (s, self.bump().span),
            _ => return Err(unknown_declaration(self.span())),
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
                self.param_decl()?
            }
            "var" => {
                name = Some(self.ident("a variable identifier")?);
                self.var_decl()?
            }
            "resource" => {
                name = Some(self.ident("a resource identifier")?);
                self.resource_decl()?
            }
            "module" => {
                name = Some(self.ident("a module identifier")?);
                self.module_decl()?
            }
            "output" => {
                name = Some(self.ident("an output identifier")?);
                let ty = self.type_expr()?;
                self.expect(&Tok::Assign, "the \"=\" character")?;
                let value = self.expr()?;
                DeclKind::Output { ty, value }
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
                self.func_decl()?
            }
            "import" | "extension" | "provider" | "using" | "test" => {
                let (alias, kind) = self.skipped_decl(&kw)?;
                name = alias;
                kind
            }
            _ => return Err(unknown_declaration(kw_span)),
        };
        Ok(Decl {
            decorators,
            kind,
            name,
            span: kw_span.to(self.prev_span()),
            keyword_span: kw_span,
        })
    }

    /// The rest of a `var` declaration: an optional type and the value.
    fn var_decl(&mut self) -> PResult<DeclKind> {
        let ty = if matches!(self.peek(), Tok::Assign) {
            None
        } else {
            Some(self.type_expr()?)
        };
        self.expect(&Tok::Assign, "the \"=\" character")?;
        Ok(DeclKind::Var {
            ty,
            value: self.expr()?,
        })
    }

    /// An `extension` declaration, or one this compiler only recognises (`import`,
    /// `provider`, `using ... with`, `test`): its name, if any, and its kind.
    fn skipped_decl(&mut self, kw: &str) -> PResult<(Option<(String, Span)>, DeclKind)> {
        if kw == "extension" {
            let spec = self.extension_decl()?;
            // The symbol is the alias, else a built-in extension's name.
            let name = spec.alias.clone().or_else(|| match &spec.source {
                ExtensionSource::Builtin(n) => Some((n.clone(), spec.source_span)),
                ExtensionSource::Reference(_) => None,
            });
            return Ok((name, DeclKind::Extension(Some(spec))));
        }
        let mut name = None;
        if kw == "test" {
            name = Some(self.ident("an identifier")?);
        }
        let from = self.pos;
        self.skip_line_balanced()?;
        if kw == "provider" {
            name = provider_alias(&self.toks[from..self.pos]);
        }
        let kind = match kw {
            "import" => DeclKind::Import(import_spec(&self.toks[from..self.pos])),
            "using" => DeclKind::Using(None),
            "test" => DeclKind::Test,
            _ => DeclKind::Extension(None),
        };
        Ok((name, kind))
    }

    /// The rest of an `extension` declaration: what it names, its configuration
    /// (`with {...}`) and alias (`as x`). A registry reference needs an alias.
    fn extension_decl(&mut self) -> PResult<ExtensionSpec> {
        let source_span = self.span();
        let source = match self.peek().clone() {
            Tok::Ident(n) => {
                self.bump();
                ExtensionSource::Builtin(n)
            }
            Tok::Str { .. } => match self.primary(0)?.kind {
                ExprKind::Str { pieces, holes } if holes.is_empty() => {
                    ExtensionSource::Reference(pieces.concat())
                }
                _ => {
                    return Err(Diagnostic::error(
                        "BCP303",
                        "String interpolation is unsupported for specifying the extension.",
                        source_span,
                    ));
                }
            },
            _ => {
                return Err(Diagnostic::error(
                    "BCP201",
                    "Expected an extension specification string. This should either be a relative path, or a valid OCI artifact specification.",
                    source_span,
                ));
            }
        };
        let config = if matches!(self.peek(), Tok::Ident(s) if s == "with") {
            self.bump();
            let config = self.expr()?;
            if !matches!(config.kind, ExprKind::Object(_)) {
                return Err(Diagnostic::error(
                    "BCP018",
                    "Expected the \"{\" character at this location.",
                    config.span,
                ));
            }
            Some(config)
        } else {
            None
        };
        let alias = if matches!(self.peek(), Tok::Ident(s) if s == "as") {
            self.bump();
            Some(self.ident("an extension alias")?)
        } else {
            None
        };
        if alias.is_none() && matches!(source, ExtensionSource::Reference(_)) {
            return Err(Diagnostic::error(
                "BCP423",
                "An extension alias must be defined for an extension declaration with an inlined registry reference.",
                source_span,
            ));
        }
        Ok(ExtensionSpec {
            source,
            source_span,
            config,
            alias,
        })
    }

    /// The rest of a `param` declaration: an optional type and default.
    fn param_decl(&mut self) -> PResult<DeclKind> {
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
        Ok(DeclKind::Param { ty, default })
    }

    /// The rest of a `resource` declaration: type string, `existing`, body.
    fn resource_decl(&mut self) -> PResult<DeclKind> {
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
        Ok(DeclKind::Resource {
            type_string,
            existing,
            value: self.decl_body()?,
        })
    }

    /// The rest of a `module` declaration: path and body.
    fn module_decl(&mut self) -> PResult<DeclKind> {
        let path = self.primary(0)?;
        if !matches!(path.kind, ExprKind::Str { .. }) {
            return Err(Diagnostic::error(
                "BCP097",
                "Expected a module path string.",
                path.span,
            ));
        }
        self.expect(&Tok::Assign, "the \"=\" character")?;
        Ok(DeclKind::Module {
            path,
            value: self.decl_body()?,
        })
    }

    /// The rest of a `func` declaration: parameters, output type and body.
    fn func_decl(&mut self) -> PResult<DeclKind> {
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
        Ok(DeclKind::Func {
            params,
            output,
            body: self.expr()?,
        })
    }

    /// Consumes the rest of a declaration this compiler only recognises, keeping
    /// brackets balanced so the next declaration parses normally.
    pub(super) fn skip_line_balanced(&mut self) -> PResult<()> {
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
    pub(super) fn decl_body(&mut self) -> PResult<Expr> {
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
}

/// BCP007: a line that starts no declaration this grammar knows.
fn unknown_declaration(span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP007",
        "This declaration type is not recognized. Specify a metadata, parameter, variable, resource, or output declaration.",
        span,
    )
}
