//! .NET composite formatting as ARM's `format()` applies it, and .NET date formats
//! for `utcNow()` / `dateTimeAdd()`.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;

use super::model::TemplateError;
use super::value::to_text;

/// Widths and precisions are capped at this many characters.
const MAX_WIDTH: usize = 1000;

fn format_error(format: &str, why: &str) -> TemplateError {
    TemplateError::invalid_template(format!(
        "Unable to evaluate template language function 'format': the format string '{format}' is not valid: {why}."
    ))
}

/// `format('{0}-{1:N2}', a, b)`: `{index[,alignment][:formatString]}` items, `{{`/`}}` escapes.
pub fn dotnet_format(format: &str, args: &[Value]) -> Result<String, TemplateError> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::with_capacity(format.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => {
                out.push('{');
                i += 2;
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                out.push('}');
                i += 2;
            }
            '{' => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == '}')
                    .map(|p| p + i)
                    .ok_or_else(|| format_error(format, "unclosed '{'"))?;
                let item: String = chars[i + 1..end].iter().collect();
                let (head, spec) = match item.split_once(':') {
                    Some((h, s)) => (h, Some(s)),
                    None => (item.as_str(), None),
                };
                let (index, alignment) = match head.split_once(',') {
                    Some((idx, al)) => (idx, Some(al)),
                    None => (head, None),
                };
                let index: usize = index
                    .trim()
                    .parse()
                    .map_err(|_| format_error(format, "an item index is not a number"))?;
                let arg = args.get(index).ok_or_else(|| {
                    format_error(
                        format,
                        &format!(
                            "index {index} is beyond the {} argument(s) given",
                            args.len()
                        ),
                    )
                })?;
                let text = format_value(arg, spec);
                match alignment.map(|a| a.trim().parse::<i64>()) {
                    Some(Ok(width)) => {
                        let pad = (width.unsigned_abs() as usize)
                            .min(MAX_WIDTH)
                            .saturating_sub(text.chars().count());
                        if width < 0 {
                            out.push_str(&text);
                            out.extend(std::iter::repeat_n(' ', pad));
                        } else {
                            out.extend(std::iter::repeat_n(' ', pad));
                            out.push_str(&text);
                        }
                    }
                    Some(Err(_)) => {
                        return Err(format_error(format, "an alignment is not a number"));
                    }
                    None => out.push_str(&text),
                }
                i = end + 1;
            }
            '}' => return Err(format_error(format, "unmatched '}'")),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn format_value(value: &Value, spec: Option<&str>) -> String {
    let (Some(spec), Value::Number(n)) = (spec, value) else {
        return to_text(value);
    };
    let x = n.as_f64().unwrap_or(0.0);
    let mut chars = spec.chars();
    let kind = chars.next().unwrap_or('G');
    // .NET allows at most 999999999; anything beyond a few hundred digits is
    // refused here as it would only exhaust memory.
    let precision: Option<usize> = chars.as_str().parse().ok().map(|p: usize| p.min(MAX_WIDTH));
    match kind {
        'N' | 'n' => group_thousands(&format!("{:.*}", precision.unwrap_or(2), x)),
        'F' | 'f' => format!("{:.*}", precision.unwrap_or(2), x),
        'D' | 'd' => {
            let digits = format!("{}", (x as i64).unsigned_abs());
            let padded = format!("{digits:0>width$}", width = precision.unwrap_or(0));
            if x < 0.0 {
                format!("-{padded}")
            } else {
                padded
            }
        }
        'X' => format!("{:0>width$X}", x as i64, width = precision.unwrap_or(0)),
        'x' => format!("{:0>width$x}", x as i64, width = precision.unwrap_or(0)),
        'P' | 'p' => format!(
            "{} %",
            group_thousands(&format!("{:.*}", precision.unwrap_or(2), x * 100.0))
        ),
        _ => to_text(value),
    }
}

fn group_thousands(fixed: &str) -> String {
    let (sign, rest) = fixed.strip_prefix('-').map_or(("", fixed), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A .NET date format: standard specifiers `u`, `s`, `o`, `d`, `D`-less subset,
/// or a custom pattern of `yyyy MM dd HH mm ss fff` tokens and literals.
pub fn format_datetime(t: &DateTime<Utc>, format: &str) -> String {
    match format {
        "u" => return t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        "s" => return t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "o" | "O" => return t.format("%Y-%m-%dT%H:%M:%S%.7fZ").to_string(),
        "d" => return t.format("%-m/%-d/%Y").to_string(),
        "t" => return t.format("%-I:%M %p").to_string(),
        _ => {}
    }
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|x| **x == c).count();
        let piece = match c {
            'y' if run >= 4 => format!("{:04}", t.year()),
            'y' => format!("{:02}", t.year() % 100),
            'M' if run >= 2 => format!("{:02}", t.month()),
            'M' => t.month().to_string(),
            'd' if run >= 2 => format!("{:02}", t.day()),
            'd' => t.day().to_string(),
            'H' if run >= 2 => format!("{:02}", t.hour()),
            'H' => t.hour().to_string(),
            'h' => format!("{:02}", (t.hour() + 11) % 12 + 1),
            'm' if run >= 2 => format!("{:02}", t.minute()),
            'm' => t.minute().to_string(),
            's' if run >= 2 => format!("{:02}", t.second()),
            's' => t.second().to_string(),
            'f' => {
                let nanos = format!("{:09}", t.nanosecond());
                nanos[..run.min(9)].to_string()
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|x| *x == '\'')
                    .map_or(chars.len(), |p| p + i + 1);
                out.extend(&chars[i + 1..end.min(chars.len())]);
                i = end + 1;
                continue;
            }
            other => std::iter::repeat_n(other, run).collect(),
        };
        out.push_str(&piece);
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn composite_format_matches_the_documentation_example() {
        let out = dotnet_format(
            "{0}, {1}. Formatted number: {2:N0}",
            &[json!("Hello"), json!("User"), json!(8175133)],
        )
        .unwrap();
        assert_eq!(out, "Hello, User. Formatted number: 8,175,133");
        assert_eq!(
            dotnet_format("{{{0}}}-{1,3}|{1,-3}|", &[json!("x"), json!(7)]).unwrap(),
            "{x}-  7|7  |"
        );
        assert_eq!(
            dotnet_format("{0:D3} {0:X} {1:N2}", &[json!(10), json!(1234.5)]).unwrap(),
            "010 A 1,234.50"
        );
        assert_eq!(dotnet_format("{0}", &[json!(false)]).unwrap(), "False");
    }

    #[test]
    fn bad_format_strings_are_errors() {
        assert!(dotnet_format("{1}", &[json!("a")]).is_err());
        assert!(dotnet_format("{0", &[json!("a")]).is_err());
        assert!(dotnet_format("a}b", &[]).is_err());
        let huge = dotnet_format("{0,-999999999}|{0:D999999999}", &[json!(1)]).unwrap();
        assert!(huge.len() < 3000);
    }

    #[test]
    fn dates_use_dotnet_patterns() {
        let t = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        assert_eq!(format_datetime(&t, "yyyyMMddTHHmmssZ"), "20260304T050607Z");
        assert_eq!(format_datetime(&t, "u"), "2026-03-04 05:06:07Z");
        assert_eq!(format_datetime(&t, "yyyy-MM-dd"), "2026-03-04");
    }
}
