//! The `[...]` expression language of ARM templates: parsing into an [`Expr`] tree.

use super::model::TemplateError;

/// One parsed template language expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    /// A function call; `name` is as written (`concat`, `__bicep.isEven`).
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `.property` access.
    Member(Box<Expr>, String),
    /// `[index]` access.
    Index(Box<Expr>, Box<Expr>),
}

/// How a JSON string in a template is to be read.
#[derive(Debug, PartialEq)]
pub enum StringForm<'a> {
    /// Plain text, to be used as is (a `[[` escape already removed).
    Literal(&'a str),
    /// The expression text between the outer brackets.
    Expression(&'a str),
}

/// ARM's rule: a string that starts with `[` and ends with `]` is an expression,
/// unless it starts with `[[`, which escapes a literal starting with `[`.
pub fn classify(text: &str) -> StringForm<'_> {
    if text.starts_with("[[") {
        return StringForm::Literal(&text[1..]);
    }
    if text.len() >= 2 && text.starts_with('[') && text.ends_with(']') {
        return StringForm::Expression(&text[1..text.len() - 1]);
    }
    StringForm::Literal(text)
}

/// Parses the text between the outer brackets of an expression string.
pub fn parse(text: &str) -> Result<Expr, TemplateError> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        source: text,
        depth: 0,
    };
    parser.skip_ws();
    let expr = parser.expression()?;
    parser.skip_ws();
    if parser.pos != parser.chars.len() {
        return Err(parser.error("unexpected characters after the end of the expression"));
    }
    Ok(expr)
}

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    source: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> TemplateError {
        TemplateError::invalid_template(format!(
            "The template language expression '{}' is not valid: {what} at position {}.",
            self.source, self.pos
        ))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TemplateError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn expression(&mut self) -> Result<Expr, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let result = self.postfix();
        self.depth -= 1;
        result
    }

    fn postfix(&mut self) -> Result<Expr, TemplateError> {
        self.skip_ws();
        let mut expr = self.primary()?;
        loop {
            self.skip_ws();
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    self.skip_ws();
                    let name = self.identifier()?;
                    expr = Expr::Member(Box::new(expr), name);
                }
                Some('[') => {
                    self.pos += 1;
                    let index = self.expression()?;
                    self.expect(']')?;
                    expr = Expr::Index(Box::new(expr), Box::new(index));
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, TemplateError> {
        match self.peek() {
            Some('\'') => self.string(),
            Some(c) if c.is_ascii_digit() || c == '-' => self.integer(),
            Some(c) if c.is_alphabetic() || c == '_' || c == '$' => self.call(),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of expression")),
        }
    }

    fn identifier(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expected an identifier"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn call(&mut self) -> Result<Expr, TemplateError> {
        let mut name = self.identifier()?;
        // `namespace.member(` names a user-defined function.
        if self.peek() == Some('.') {
            let save = self.pos;
            self.pos += 1;
            if let Ok(member) = self.identifier() {
                self.skip_ws();
                if self.peek() == Some('(') {
                    name = format!("{name}.{member}");
                } else {
                    self.pos = save;
                }
            } else {
                self.pos = save;
            }
        }
        self.expect('(')?;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Expr::Call { name, args });
        }
        loop {
            args.push(self.expression()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Expr::Call { name, args });
                }
                _ => return Err(self.error("expected ',' or ')'")),
            }
        }
    }

    fn string(&mut self) -> Result<Expr, TemplateError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string literal")),
                Some('\'') => {
                    if self.chars.get(self.pos + 1) == Some(&'\'') {
                        out.push('\'');
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(Expr::Str(out));
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Result<Expr, TemplateError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse::<i64>()
            .map(Expr::Int)
            .map_err(|_| self.error("invalid integer literal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Call {
            name: name.into(),
            args,
        }
    }

    #[test]
    fn parses_nested_calls_members_and_indexers() {
        let e = parse("concat(parameters('a')[0].b, 'x''y', -3)").unwrap();
        assert_eq!(
            e,
            call(
                "concat",
                vec![
                    Expr::Member(
                        Box::new(Expr::Index(
                            Box::new(call("parameters", vec![Expr::Str("a".into())])),
                            Box::new(Expr::Int(0))
                        )),
                        "b".into()
                    ),
                    Expr::Str("x'y".into()),
                    Expr::Int(-3),
                ]
            )
        );
    }

    #[test]
    fn parses_namespaced_user_function_and_string_indexer() {
        let e = parse(" __bicep.isEven(1)['k'] ").unwrap();
        assert_eq!(
            e,
            Expr::Index(
                Box::new(call("__bicep.isEven", vec![Expr::Int(1)])),
                Box::new(Expr::Str("k".into()))
            )
        );
    }

    #[test]
    fn classifies_escapes() {
        assert_eq!(classify("[[abc]"), StringForm::Literal("[abc]"));
        assert_eq!(classify("[f()]"), StringForm::Expression("f()"));
        assert_eq!(classify("plain"), StringForm::Literal("plain"));
        assert_eq!(classify("[x"), StringForm::Literal("[x"));
    }

    #[test]
    fn rejects_malformed_expressions() {
        let deep = format!("{}1{}", "f(".repeat(500), ")".repeat(500));
        for bad in [
            "concat('a'",
            "'open",
            "f(1,,2)",
            "f() g()",
            "",
            "a.(",
            "1x",
            deep.as_str(),
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.code, "InvalidTemplate", "{bad}");
            assert!(
                err.message.contains("is not valid"),
                "{bad}: {}",
                err.message
            );
        }
    }
}
