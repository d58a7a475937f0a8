//! `loadTextContent`/`loadJsonContent`/... : files read at compile time and
//! hoisted into variables or inlined as literals.

use super::*;

/// Loaded text is data, never an ARM expression.
pub(super) fn escape_loaded(v: Value) -> Value {
    match v {
        Value::String(s) => literal_string(&s),
        other => other,
    }
}

pub(super) const LOAD_FUNCTIONS: &[&str] = &[
    "loadTextContent",
    "loadFileAsBase64",
    "loadJsonContent",
    "loadYamlContent",
    "loadDirectoryFileInfo",
];

/// A variable whose whole value is a text or base64 file load is emitted as the
/// literal content instead of a hoisted `$fxv#N` variable.
pub(super) fn whole_file_load(value: &Expr) -> Option<(&str, &[Expr])> {
    match &value.kind {
        ExprKind::Call {
            namespace,
            name,
            args,
        } if matches!(name.as_str(), "loadTextContent" | "loadFileAsBase64")
            && namespace.as_deref().is_none_or(|n| n == "sys") =>
        {
            Some((name.as_str(), args.as_slice()))
        }
        _ => None,
    }
}

/// Decodes a loaded text file the way the official compiler does: a byte-order
/// mark wins over the requested encoding; without one, `encoding` decides
/// (`us-ascii` turns bytes above 127 into `?`). `None` for an unknown encoding.
pub(super) fn decode_text(bytes: &[u8], encoding: &str) -> Option<String> {
    let utf16 = |b: &[u8], big: bool| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if big {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    let known = ["utf-8", "utf-16", "utf-16be", "us-ascii", "iso-8859-1"];
    let encoding = encoding.to_ascii_lowercase();
    if !known.contains(&encoding.as_str()) {
        return None;
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return Some(String::from_utf8_lossy(rest).into_owned());
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Some(utf16(rest, false));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Some(utf16(rest, true));
    }
    Some(match encoding.as_str() {
        "utf-16" => utf16(bytes, false),
        "utf-16be" => utf16(bytes, true),
        "us-ascii" => bytes
            .iter()
            .map(|&b| if b < 0x80 { b as char } else { '?' })
            .collect(),
        "iso-8859-1" => bytes.iter().map(|&b| b as char).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    })
}

impl<'a> Emitter<'a> {
    /// File contents loaded inside expressions become variables `$fxv#N`, numbered
    /// in source order, as the official compiler emits them.
    pub(super) fn hoist_loaded_files(&mut self) -> R<()> {
        let mut calls = Vec::new();
        for d in &self.model.file.decls {
            let whole = match &d.kind {
                DeclKind::Var { value, .. } => {
                    whole_file_load(value).map(|(n, a)| (value.span, n, a))
                }
                _ => None,
            };
            if let Some((span, fname, args)) = whole {
                let v = escape_loaded(self.load_file(fname, args, span)?);
                self.whole_loaded.insert(span.start, v);
            }
            let whole = whole.map(|(span, _, _)| span.start);
            d.visit(&mut |e| {
                if let ExprKind::Call {
                    namespace,
                    name,
                    args,
                } = &e.kind
                    && LOAD_FUNCTIONS.contains(&name.as_str())
                    && namespace.as_deref().is_none_or(|n| n == "sys")
                    && Some(e.span.start) != whole
                {
                    calls.push((name.as_str(), args.as_slice(), e.span));
                }
            });
        }
        for (name, args, span) in calls {
            let v = escape_loaded(self.load_file(name, args, span)?);
            self.loaded.insert(span.start, self.loaded_values.len());
            self.loaded_values.push(v);
        }
        Ok(())
    }

    /// Evaluates `loadTextContent`, `loadFileAsBase64` or `loadJsonContent` at compile time.
    pub(super) fn load_file(&self, name: &str, args: &[Expr], span: Span) -> R<Value> {
        let Some(path) = args.first().and_then(plain_string) else {
            return Err(not_constant(args.first().map(|a| a.span).unwrap_or(span)));
        };
        let read_error = |e: String| {
            Diagnostic::error(
                "BCP091",
                format!("An error occurred reading file. {e}"),
                span,
            )
        };
        // The text of the file, without a byte order mark.
        let read_text = || {
            self.resolver
                .resolve(self.file_name, path)
                .map(|(_, text)| text.trim_start_matches('\u{feff}').to_string())
                .map_err(read_error)
        };
        match (name, args.len()) {
            ("loadTextContent", 1) => Ok(Value::String(read_text()?)),
            ("loadTextContent", 2) => {
                let Some(encoding) = plain_string(&args[1]) else {
                    return Err(not_constant(args[1].span));
                };
                let (_, bytes) = self
                    .resolver
                    .resolve_bytes(self.file_name, path)
                    .map_err(read_error)?;
                match decode_text(&bytes, encoding) {
                    Some(text) => Ok(Value::String(text)),
                    None => Err(Diagnostic::error(
                        "BCP070",
                        format!(
                            "Argument of type \"'{encoding}'\" is not assignable to parameter of type \"'iso-8859-1' | 'us-ascii' | 'utf-16' | 'utf-16BE' | 'utf-8'\"."
                        ),
                        args[1].span,
                    )),
                }
            }
            ("loadFileAsBase64", 1) => {
                use base64::Engine;
                let (_, bytes) = self
                    .resolver
                    .resolve_bytes(self.file_name, path)
                    .map_err(read_error)?;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                ))
            }
            ("loadJsonContent", 1) => serde_json::from_str(&read_text()?).or_else(|_| {
                unsupported("loadJsonContent of a file that is not strict JSON", span)
            }),
            ("loadYamlContent", 1) => serde_yaml::from_str(&read_text()?).map_err(|e| {
                Diagnostic::error(
                    "BCP-YAML",
                    format!("The file \"{path}\" is not valid YAML: {e}"),
                    span,
                )
            }),
            _ => unsupported(format!("This form of \"{name}\""), span),
        }
    }
}

/// BCP032: a file function's argument that is not a literal.
fn not_constant(span: Span) -> Diagnostic {
    Diagnostic::error("BCP032", "The value must be a compile-time constant.", span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_text_honours_byte_order_marks_then_the_requested_encoding() {
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFh\xC3\xA9", "us-ascii").unwrap(),
            "h\u{e9}"
        );
        assert_eq!(decode_text(b"\xFF\xFEh\x00", "utf-8").unwrap(), "h");
        assert_eq!(decode_text(b"\x00h", "utf-16BE").unwrap(), "h");
        assert_eq!(decode_text(b"h\xE9", "iso-8859-1").unwrap(), "h\u{e9}");
        assert_eq!(decode_text(b"h\xE9", "us-ascii").unwrap(), "h?");
        assert_eq!(decode_text(b"h", "windows-1250"), None);
    }
}
