//! `loadTextContent`/`loadJsonContent`/... : files read at compile time and
//! hoisted into variables or inlined as literals.

use super::*;

mod json_path;
mod jsonc;

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
    /// in source order, as the official compiler emits them. Loading stops at the
    /// first file that fails.
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
                let v = self.load_file(fname, args, span);
                // A failed load stands for `null`, so it is reported once.
                self.whole_loaded
                    .insert(span.start, v.clone().map_or(Value::Null, escape_loaded));
                v?;
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
            let v = self.load_file(name, args, span);
            self.loaded.insert(span.start, self.loaded_values.len());
            self.loaded_values
                .push(v.clone().map_or(Value::Null, escape_loaded));
            v?;
        }
        Ok(())
    }

    /// Evaluates a `load*` function at compile time.
    pub(super) fn load_file(&self, name: &str, args: &[Expr], span: Span) -> R<Value> {
        let Some(path) = args.first().and_then(plain_string) else {
            return Err(not_constant(args.first().map(|a| a.span).unwrap_or(span)));
        };
        match (name, args.len()) {
            ("loadTextContent", 1 | 2) => {
                Ok(Value::String(self.read_text(path, args.get(1), span)?))
            }
            ("loadFileAsBase64", 1) => {
                use base64::Engine;
                let (_, bytes) = self
                    .resolver
                    .resolve_bytes(self.file_name, path)
                    .map_err(|e| read_error(e, span))?;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                ))
            }
            ("loadJsonContent" | "loadYamlContent", 1..=3) => {
                let text = self.read_text(path, args.get(2), span)?;
                let parsed = if name == "loadJsonContent" {
                    jsonc::parse(&text).map_err(|e| {
                        Diagnostic::error(
                            "BCP186",
                            format!("Unable to parse literal JSON value. Please ensure that it is well-formed. ({e})"),
                            args[0].span,
                        )
                    })?
                } else {
                    serde_yaml::from_str(&text).map_err(|e| {
                        Diagnostic::error(
                            "BCP340",
                            format!("Unable to parse literal YAML value. Please ensure that it is well-formed. ({e})"),
                            args[0].span,
                        )
                    })?
                };
                match args.get(1) {
                    Some(selector) => select_tokens(&parsed, selector),
                    None => Ok(parsed),
                }
            }
            ("loadDirectoryFileInfo", 1 | 2) => self.directory_file_info(path, args),
            _ => unsupported(format!("This form of \"{name}\""), span),
        }
    }

    /// The text of the file at `path`, decoded with `encoding` when given (else
    /// UTF-8), without a byte order mark.
    fn read_text(&self, path: &str, encoding: Option<&Expr>, span: Span) -> R<String> {
        let Some(encoding_arg) = encoding else {
            return self
                .resolver
                .resolve(self.file_name, path)
                .map(|(_, text)| text.trim_start_matches('\u{feff}').to_string())
                .map_err(|e| read_error(e, span));
        };
        let Some(encoding) = plain_string(encoding_arg) else {
            return Err(not_constant(encoding_arg.span));
        };
        let (_, bytes) = self
            .resolver
            .resolve_bytes(self.file_name, path)
            .map_err(|e| read_error(e, span))?;
        decode_text(&bytes, encoding).ok_or_else(|| {
            Diagnostic::error(
                "BCP070",
                format!(
                    "Argument of type \"'{encoding}'\" is not assignable to parameter of type \"'iso-8859-1' | 'us-ascii' | 'utf-16' | 'utf-16BE' | 'utf-8'\"."
                ),
                encoding_arg.span,
            )
        })
    }

    /// `loadDirectoryFileInfo(dir, pattern?)`: the files directly in `dir` (matching
    /// the `*`/`?` pattern), ordered by path ignoring case as the official compiler.
    fn directory_file_info(&self, dir: &str, args: &[Expr]) -> R<Value> {
        let pattern = match args.get(1) {
            Some(a) => plain_string(a).ok_or_else(|| not_constant(a.span))?,
            None => "*",
        };
        let names = self
            .resolver
            .list_files(self.file_name, dir)
            .map_err(|e| read_error(e, args[0].span))?;
        let mut files: Vec<(String, String)> = names
            .into_iter()
            .filter(|n| {
                let name: Vec<char> = n.chars().collect();
                glob_matches(&pattern.chars().collect::<Vec<_>>(), &name)
            })
            .map(|n| (relative_file_path(dir, &n), n))
            .collect();
        files.sort_by_cached_key(|(path, _)| path.to_uppercase());
        Ok(Value::Array(
            files
                .into_iter()
                .map(|(path, name)| {
                    let extension = name.rfind('.').map_or("", |i| &name[i..]).to_string();
                    json!({"relativePath": path, "baseName": name, "extension": extension})
                })
                .collect(),
        ))
    }
}

/// BCP091: a file that cannot be read.
fn read_error(e: String, span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP091",
        format!("An error occurred reading file. {e}"),
        span,
    )
}

/// The tokens a JSONPath argument selects: one token as itself, several as an
/// array, none (or a malformed path) BCP235.
fn select_tokens(value: &Value, selector: &Expr) -> R<Value> {
    let Some(path) = plain_string(selector) else {
        return Err(not_constant(selector.span));
    };
    let mut tokens = json_path::select(value, path).unwrap_or_default();
    match tokens.len() {
        0 => Err(Diagnostic::error(
            "BCP235",
            "Specified JSONPath does not exist in the given file or is invalid.",
            selector.span,
        )),
        1 => Ok(tokens.remove(0)),
        _ => Ok(Value::Array(tokens)),
    }
}

/// `dir/name` relative to the compiled file, with `.` and `name/..` segments removed.
fn relative_file_path(dir: &str, name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in dir.split(['/', '\\']).chain([name]) {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Matches a file name against a search pattern of `*` (any run) and `?` (one character).
/// Only the latest `*` is ever retried, so the time is at most pattern × name length:
/// a template's pattern with many stars cannot make a compile take exponential time.
fn glob_matches(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                last_star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, from)) => {
                    last_star = Some((star, from + 1));
                    p = star + 1;
                    n = from + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// BCP032: a file function's argument that is not a literal.
fn not_constant(span: Span) -> Diagnostic {
    Diagnostic::error("BCP032", "The value must be a compile-time constant.", span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MapResolver, compile_source};

    const FILES: &[(&str, &str)] = &[
        ("a/x.json", "{\"k\": [1, /* c */ 2], // c\n \"s\": \"v\",}"),
        ("a/y.yaml", "k:\n- 1\n- 2\no:\n  s: v\n"),
        ("a/bad.json", "{\"k\": }"),
        ("a/bad.yaml", "k: [1, 2\n"),
        ("a/B.txt", ""),
        ("a/sub/z.txt", ""),
    ];

    /// The value of variable `x` compiled from `var x = <expr>`, or the codes and
    /// lines of the errors.
    fn load(expr: &str) -> Result<Value, Vec<(String, usize)>> {
        let files = FILES.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let resolver = MapResolver::new(files.collect());
        let source = format!("var x = {expr}\noutput o object = {{ x: x }}\n");
        match compile_source("main.bicep", &source, &resolver) {
            Ok(t) => {
                let vars = &t.json["variables"];
                let x = vars["x"].as_str().unwrap_or_default();
                let hoisted = x.trim_start_matches("[variables('").trim_end_matches("')]");
                Ok(vars
                    .get(hoisted)
                    .cloned()
                    .unwrap_or_else(|| vars["x"].clone()))
            }
            Err(e) => Err(e
                .0
                .into_iter()
                .map(|d| (d.diagnostic.code, d.line))
                .collect()),
        }
    }

    fn error(code: &str) -> Result<Value, Vec<(String, usize)>> {
        Err(vec![(code.to_string(), 1)])
    }

    #[test]
    fn json_content_accepts_comments_and_trailing_commas() {
        assert_eq!(
            load("loadJsonContent('a/x.json')"),
            Ok(json!({"k": [1, 2], "s": "v"}))
        );
        assert_eq!(load("loadJsonContent('a/bad.json')"), error("BCP186"));
    }

    #[test]
    fn json_and_yaml_content_narrowed_by_a_json_path() {
        assert_eq!(load("loadJsonContent('a/x.json', '.k[1]')"), Ok(json!(2)));
        assert_eq!(
            load("loadJsonContent('a/x.json', '$.k[*]')"),
            Ok(json!([1, 2]))
        );
        assert_eq!(load("loadYamlContent('a/y.yaml', '.o.s')"), Ok(json!("v")));
        assert_eq!(
            load("loadJsonContent('a/x.json', '.nope')"),
            error("BCP235")
        );
        assert_eq!(load("loadYamlContent('a/y.yaml', '.k[')"), error("BCP235"));
        assert_eq!(load("loadYamlContent('a/bad.yaml')"), error("BCP340"));
    }

    #[test]
    fn json_and_yaml_content_decoded_with_the_given_encoding() {
        assert_eq!(
            load("loadJsonContent('a/x.json', '.s', 'us-ascii')"),
            Ok(json!("v"))
        );
        assert_eq!(
            load("loadYamlContent('a/y.yaml', '.o.s', 'iso-8859-1')"),
            Ok(json!("v"))
        );
        // Read as UTF-16, the file's bytes pair up into one plain YAML scalar.
        assert!(
            load("loadYamlContent('a/y.yaml', '$', 'utf-16BE')")
                .is_ok_and(|v| v.as_str().is_some_and(|s| s.starts_with('\u{6b3a}')))
        );
        assert_eq!(
            load("loadJsonContent('a/x.json', '.s', 'ebcdic')"),
            error("BCP070")
        );
    }

    #[test]
    fn directory_file_info_lists_files_ordered_ignoring_case() {
        let info = |path: &str, name: &str, ext: &str| json!({"relativePath": path, "baseName": name, "extension": ext});
        assert_eq!(
            load("loadDirectoryFileInfo('./a/sub/..')"),
            Ok(json!([
                info("a/B.txt", "B.txt", ".txt"),
                info("a/bad.json", "bad.json", ".json"),
                info("a/bad.yaml", "bad.yaml", ".yaml"),
                info("a/x.json", "x.json", ".json"),
                info("a/y.yaml", "y.yaml", ".yaml"),
            ]))
        );
        assert_eq!(
            load("loadDirectoryFileInfo('a', '?.*')"),
            Ok(json!([
                info("a/B.txt", "B.txt", ".txt"),
                info("a/x.json", "x.json", ".json"),
                info("a/y.yaml", "y.yaml", ".yaml"),
            ]))
        );
        assert_eq!(load("loadDirectoryFileInfo('nowhere')"), error("BCP091"));
    }

    #[test]
    fn file_paths_and_search_patterns() {
        assert_eq!(relative_file_path("./a/../b/", "f"), "b/f");
        assert_eq!(relative_file_path("../up", "f"), "../up/f");
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert!(glob_matches(&chars("*.txt"), &chars("é.txt")));
        assert!(glob_matches(&chars("?.txt"), &chars("é.txt")));
        assert!(!glob_matches(&chars("*.txt"), &chars("a.json")));
        assert!(glob_matches(&chars("a*b*c"), &chars("aXbYbZc")));
        assert!(!glob_matches(&chars("a*b?c"), &chars("abXXc")));
        assert!(glob_matches(&chars("**"), &chars("")));
        // Exponential with a matcher that retries every star.
        let many_stars: String = "*a".repeat(16) + "*b";
        assert!(!glob_matches(&chars(&many_stars), &chars(&"a".repeat(200))));
    }

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
