//! JSON as `loadJsonContent` reads it: the official compiler parses with Json.NET,
//! which accepts `//` and `/* */` comments and trailing commas, and closes the
//! objects and arrays a truncated file leaves open (its baseline
//! `InvalidLoadFunctions_CRLF` loads such a file without an error).

use serde_json::Value;

/// Parses `text` as JSON with comments, trailing commas and unclosed containers.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(&strip(text)?).map_err(|e| e.to_string())
}

/// `text` without comments and trailing commas, with open containers closed;
/// strings are kept verbatim, and removed comments leave a space so tokens stay apart.
fn strip(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    // Byte index in `out` of a comma that a closing bracket would make trailing.
    let mut pending_comma: Option<usize> = None;
    // The closing brackets of the containers open at this point.
    let mut open: Vec<char> = Vec::new();
    let close = |out: &mut String, pending_comma: &mut Option<usize>, c: char| {
        if let Some(at) = pending_comma.take() {
            out.replace_range(at..at + 1, " ");
        }
        out.push(c);
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                pending_comma = None;
                out.push(c);
                let mut closed = false;
                while let Some(s) = chars.next() {
                    out.push(s);
                    match s {
                        '\\' => out.extend(chars.next()),
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return Err("unterminated string".into());
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = '\0';
                loop {
                    match chars.next() {
                        None => return Err("unterminated comment".into()),
                        Some('/') if last == '*' => break,
                        Some(n) => last = n,
                    }
                }
                out.push(' ');
            }
            ',' => {
                pending_comma = Some(out.len());
                out.push(c);
            }
            ']' | '}' => {
                open.pop();
                close(&mut out, &mut pending_comma, c);
            }
            '[' | '{' => {
                pending_comma = None;
                open.push(if c == '[' { ']' } else { '}' });
                out.push(c);
            }
            c if c.is_whitespace() => out.push(c),
            c => {
                pending_comma = None;
                out.push(c);
            }
        }
    }
    while let Some(c) = open.pop() {
        close(&mut out, &mut pending_comma, c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comments_and_trailing_commas_are_ignored() {
        let text = "{\n \"a\": [1, // one\n 2, /* two\n */],\n \"s\": \"//not /* a comment\",\n}";
        assert_eq!(
            parse(text).unwrap(),
            json!({"a": [1, 2], "s": "//not /* a comment"})
        );
    }

    #[test]
    fn containers_a_truncated_file_leaves_open_are_closed() {
        assert_eq!(
            parse("{\"s\": \"v\",\n \"a\": [\n 1,\n 2").unwrap(),
            json!({"s": "v", "a": [1, 2]})
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(parse("{\"a\": \"open").is_err());
        assert!(parse("{\"a\": }").is_err());
        assert!(parse("[1 /* open").is_err());
    }
}
