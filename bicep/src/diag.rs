//! Diagnostics in the official compiler's shape: `path(line,col) : Error CODE: message`.

use std::fmt;

/// Byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        })
    }
}

/// Code used for valid Bicep that this compiler does not implement.
pub const UNSUPPORTED: &str = "BCP-UNSUPPORTED";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub span: Span,
    /// File the span belongs to (the main file unless the error is inside a module).
    pub file: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code.to_string(),
            message: message.into(),
            span,
            file: None,
        }
    }

    /// A finding that does not stop compilation.
    pub fn warning(code: &str, message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, span)
        }
    }

    /// Valid Bicep this compiler does not implement; `construct` names it.
    pub fn unsupported(construct: impl fmt::Display, span: Span) -> Self {
        Diagnostic::error(
            UNSUPPORTED,
            format!("{construct} is not supported by this compiler."),
            span,
        )
    }

    /// True when the input may be valid Bicep that only this compiler rejects,
    /// so a caller may fall back to the official compiler.
    pub fn is_unsupported(&self) -> bool {
        self.code == UNSUPPORTED
    }

    pub fn in_file(mut self, file: &str) -> Self {
        if self.file.is_none() {
            self.file = Some(file.to_string());
        }
        self
    }

    /// 1-based line and column of the span start in `source`.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        line_col(source, self.span.start)
    }

    /// Formats as `path(line,col) : Error CODE: message`.
    pub fn render(&self, path: &str, source: &str) -> String {
        let (line, col) = self.line_col(source);
        format!(
            "{}({line},{col}) : {} {}: {}",
            path, self.severity, self.code, self.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)
    }
}

pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in source.as_bytes()[..offset].iter().enumerate() {
        if *b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let prefix = source.get(line_start..offset).unwrap_or("");
    let col = prefix.trim_start_matches('\u{feff}').chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_official_form() {
        let d = Diagnostic::error(
            "BCP057",
            "The name \"x\" does not exist.",
            Span::new(19, 20),
        );
        assert_eq!(
            d.render("main.bicep", "var a = 1\r\nvar b = x"),
            "main.bicep(2,9) : Error BCP057: The name \"x\" does not exist."
        );
    }
}
