//! The JSONPath dialect `loadJsonContent`/`loadYamlContent` accept as their second
//! argument (the official compiler selects tokens with Json.NET, errors off):
//! `$`/`@` roots (optional), `.name`, `['name','other']`, `.*`, `[*]`, `..step`,
//! `[i,j]`, `[start:end:step]` and `[?(filter)]` with comparisons, `&&`, `||`.
//! A selector that matches nothing selects nothing; a malformed one is an error.

use serde_json::Value;

/// One step of a path, applied to every currently selected token.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` / `['a','b']`: the named properties of objects.
    Fields(Vec<String>),
    /// `.*`: every property value of objects.
    AllFields,
    /// `[*]`: every element of arrays.
    AllElements,
    /// `[0,2]`: elements by position.
    Indexes(Vec<i64>),
    /// `[start:end:step]`, negative bounds counted from the end.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `..step`: the step applied to the token and all its descendants.
    Descend(Box<Step>),
    /// `[?(expr)]`: the elements of arrays the filter holds for.
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    /// A path alone: true when it selects something.
    Exists(Operand),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@...` (relative to the element) or `$...` (relative to the root).
    Path {
        from_root: bool,
        steps: Vec<Step>,
    },
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The tokens `path` selects in `root`; `Err` when `path` is malformed.
pub(crate) fn select(root: &Value, path: &str) -> Result<Vec<Value>, String> {
    let mut parser = Parser {
        s: path.as_bytes(),
        i: 0,
        filter_parts: 0,
    };
    parser.skip_root();
    let steps = parser.steps(false)?;
    if parser.i < parser.s.len() {
        return Err(format!("unexpected character at {}", parser.i));
    }
    Ok(apply_all(root, root, &steps).into_iter().cloned().collect())
}

fn apply_all<'v>(root: &'v Value, start: &'v Value, steps: &[Step]) -> Vec<&'v Value> {
    let mut current = vec![start];
    for step in steps {
        current = current
            .into_iter()
            .flat_map(|v| apply(root, v, step))
            .collect();
    }
    current
}

fn apply<'v>(root: &'v Value, v: &'v Value, step: &Step) -> Vec<&'v Value> {
    match (step, v) {
        (Step::Fields(names), Value::Object(o)) => names.iter().filter_map(|n| o.get(n)).collect(),
        (Step::AllFields, Value::Object(o)) => o.values().collect(),
        (Step::AllElements, Value::Array(a)) => a.iter().collect(),
        (Step::Indexes(ix), Value::Array(a)) => ix
            .iter()
            .filter_map(|&i| usize::try_from(i).ok().and_then(|i| a.get(i)))
            .collect(),
        (Step::Slice(start, end, step), Value::Array(a)) => slice(a, *start, *end, *step),
        (Step::Descend(inner), _) => {
            let mut out = apply(root, v, inner);
            let children: Vec<&Value> = match v {
                Value::Object(o) => o.values().collect(),
                Value::Array(a) => a.iter().collect(),
                _ => Vec::new(),
            };
            for child in children {
                out.extend(apply(root, child, step));
            }
            out
        }
        (Step::Filter(f), Value::Array(a)) => a.iter().filter(|e| holds(root, e, f)).collect(),
        _ => Vec::new(),
    }
}

fn slice(a: &[Value], start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<&Value> {
    let len = a.len() as i64;
    let step = step.unwrap_or(1);
    if step == 0 {
        return Vec::new();
    }
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, end) = (clamp(start.unwrap_or(0)), clamp(end.unwrap_or(len)));
        while i < end {
            out.push(&a[i as usize]);
            i = i.saturating_add(step);
        }
    } else {
        let mut i = start.map_or(len - 1, |s| clamp(s).min(len - 1));
        let end = end.map_or(-1, clamp);
        while i > end && i >= 0 {
            out.push(&a[i as usize]);
            i = i.saturating_add(step);
        }
    }
    out
}

fn holds(root: &Value, element: &Value, f: &Filter) -> bool {
    match f {
        Filter::Or(a, b) => holds(root, element, a) || holds(root, element, b),
        Filter::And(a, b) => holds(root, element, a) && holds(root, element, b),
        Filter::Exists(o) => !operand(root, element, o).is_empty(),
        Filter::Compare(l, op, r) => {
            let (l, r) = (operand(root, element, l), operand(root, element, r));
            // Json.NET compares every left token with every right token.
            l.iter().any(|l| r.iter().any(|r| compare(l, *op, r)))
        }
    }
}

fn operand<'v>(root: &'v Value, element: &'v Value, o: &'v Operand) -> Vec<&'v Value> {
    match o {
        Operand::Path { from_root, steps } => {
            apply_all(root, if *from_root { root } else { element }, steps)
        }
        Operand::Literal(v) => vec![v],
    }
}

fn compare(l: &Value, op: Op, r: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ordering) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
    }
}

/// Filters, groups and `&&`/`||` operators a path may hold. Each one nests the filter
/// tree that parsing, evaluating and dropping walk recursively, so a template's path
/// cannot overflow the stack.
const MAX_FILTER_PARTS: usize = 256;

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
    /// Filters, groups and operators parsed so far (see [`MAX_FILTER_PARTS`]).
    filter_parts: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.i))
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn skip_root(&mut self) {
        if matches!(self.peek(), Some(b'$' | b'@')) {
            self.i += 1;
        }
    }

    /// Steps up to the end, or (inside a filter) up to an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            let step = match c {
                b'.' if self.s.get(self.i + 1) == Some(&b'.') => {
                    self.i += 2;
                    let inner = if self.peek() == Some(b'[') {
                        self.bracket()?
                    } else {
                        self.dotted()?
                    };
                    Step::Descend(Box::new(inner))
                }
                b'.' => {
                    self.i += 1;
                    self.dotted()?
                }
                b'[' => self.bracket()?,
                _ if in_filter => break,
                _ if steps.is_empty() => self.dotted()?,
                _ => return Err(format!("unexpected '{}' at {}", c as char, self.i)),
            };
            steps.push(step);
        }
        Ok(steps)
    }

    /// `name` or `*` after a dot.
    fn dotted(&mut self) -> Result<Step, String> {
        if self.eat(b'*') {
            return Ok(Step::AllFields);
        }
        let start = self.i;
        while self.peek().is_some_and(|c| {
            !matches!(
                c,
                b'.' | b'[' | b']' | b'(' | b')' | b' ' | b'=' | b'!' | b'<' | b'>' | b'&' | b'|'
            )
        }) {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("expected a property name at {start}"));
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        Ok(Step::Fields(vec![name]))
    }

    fn bracket(&mut self) -> Result<Step, String> {
        self.expect(b'[')?;
        self.skip_spaces();
        let step = match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Step::AllElements
            }
            Some(b'?') => {
                self.i += 1;
                self.expect(b'(')?;
                let f = self.or_filter()?;
                self.skip_spaces();
                self.expect(b')')?;
                Step::Filter(f)
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![self.quoted()?];
                while self.comma() {
                    names.push(self.quoted()?);
                }
                Step::Fields(names)
            }
            _ => self.indexes()?,
        };
        self.skip_spaces();
        self.expect(b']')?;
        Ok(step)
    }

    fn comma(&mut self) -> bool {
        self.skip_spaces();
        let hit = self.eat(b',');
        self.skip_spaces();
        hit
    }

    fn quoted(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek().filter(|c| matches!(c, b'\'' | b'"')) else {
            return Err(format!("expected a quoted name at {}", self.i));
        };
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(b'\\') => {
                    out.extend(self.s.get(self.i + 1));
                    self.i += 2;
                }
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Result<Option<i64>, String> {
        self.skip_spaces();
        let start = self.i;
        self.eat(b'-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
        self.skip_spaces();
        match text {
            "" => Ok(None),
            t => t
                .parse()
                .map(Some)
                .map_err(|_| format!("invalid index \"{t}\"")),
        }
    }

    /// `[i]`, `[i,j]` or `[start:end:step]`.
    fn indexes(&mut self) -> Result<Step, String> {
        let first = self.integer()?;
        if self.eat(b':') {
            let end = self.integer()?;
            let step = if self.eat(b':') {
                self.integer()?
            } else {
                None
            };
            return Ok(Step::Slice(first, end, step));
        }
        let mut ix = vec![first.ok_or_else(|| format!("expected an index at {}", self.i))?];
        while self.comma() {
            ix.push(self.integer()?.ok_or("expected an index after ','")?);
        }
        Ok(Step::Indexes(ix))
    }

    /// Counts one more filter part; `Err` past [`MAX_FILTER_PARTS`].
    fn filter_part(&mut self) -> Result<(), String> {
        self.filter_parts += 1;
        if self.filter_parts > MAX_FILTER_PARTS {
            return Err(format!(
                "more than {MAX_FILTER_PARTS} filters, groups and operators at {}",
                self.i
            ));
        }
        Ok(())
    }

    fn or_filter(&mut self) -> Result<Filter, String> {
        self.filter_part()?;
        let mut f = self.and_filter()?;
        while self.operator("||") {
            self.filter_part()?;
            f = Filter::Or(Box::new(f), Box::new(self.and_filter()?));
        }
        Ok(f)
    }

    fn and_filter(&mut self) -> Result<Filter, String> {
        let mut f = self.comparison()?;
        while self.operator("&&") {
            self.filter_part()?;
            f = Filter::And(Box::new(f), Box::new(self.comparison()?));
        }
        Ok(f)
    }

    fn operator(&mut self, op: &str) -> bool {
        self.skip_spaces();
        let hit = self.s[self.i..].starts_with(op.as_bytes());
        self.i += if hit { op.len() } else { 0 };
        hit
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        if self.eat(b'(') {
            let f = self.or_filter()?;
            self.skip_spaces();
            self.expect(b')')?;
            return Ok(f);
        }
        let left = self.operand()?;
        let ops = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        for (text, op) in ops {
            if self.operator(text) {
                return Ok(Filter::Compare(left, op, self.operand()?));
            }
        }
        Ok(Filter::Exists(left))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_spaces();
        match self.peek() {
            Some(c @ (b'@' | b'$')) => {
                self.i += 1;
                let steps = self.steps(true)?;
                Ok(Operand::Path {
                    from_root: c == b'$',
                    steps,
                })
            }
            Some(b'\'' | b'"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            _ => self.literal(),
        }
    }

    /// A number, `true`, `false` or `null`.
    fn literal(&mut self) -> Result<Operand, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
        match serde_json::from_str::<Value>(text) {
            Ok(v) if !v.is_object() && !v.is_array() && !text.is_empty() => Ok(Operand::Literal(v)),
            _ => Err(format!("invalid value \"{text}\" in filter")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "string": "someVal",
            "array": [1, 2, 3],
            "object": {"nested": "x", "n": 1},
            "products": [
                {"name": "pizza", "price": 5.0},
                {"name": "salad", "price": 3.99},
                {"name": "bread", "price": 2}
            ]
        })
    }

    #[test]
    fn selects_properties_indexes_and_slices() {
        let d = doc();
        assert_eq!(select(&d, ".string").unwrap(), vec![json!("someVal")]);
        assert_eq!(select(&d, "$.object.nested").unwrap(), vec![json!("x")]);
        assert_eq!(select(&d, "object['n']").unwrap(), vec![json!(1)]);
        assert_eq!(select(&d, ".array[0]").unwrap(), vec![json!(1)]);
        assert_eq!(select(&d, ".array[0,2]").unwrap(), vec![json!(1), json!(3)]);
        assert_eq!(select(&d, ".array[-2:]").unwrap(), vec![json!(2), json!(3)]);
        assert_eq!(select(&d, ".array[*]").unwrap().len(), 3);
        assert_eq!(select(&d, "$").unwrap(), vec![d.clone()]);
        assert_eq!(select(&d, "..nested").unwrap(), vec![json!("x")]);
        assert!(select(&d, ".missing").unwrap().is_empty());
        assert!(select(&d, ".array[7]").unwrap().is_empty());
        assert_eq!(
            select(&d, ".array[::-2]").unwrap(),
            vec![json!(3), json!(1)]
        );
        let huge = format!(".array[1::{}]", i64::MAX);
        assert_eq!(select(&d, &huge).unwrap(), vec![json!(2)]);
    }

    #[test]
    fn filters_compare_each_element() {
        let d = doc();
        assert_eq!(
            select(&d, ".products[?(@.price > 3)].name").unwrap(),
            vec![json!("pizza"), json!("salad")]
        );
        assert_eq!(
            select(&d, "$.products[?(@.name == 'bread' || @.price >= 5)].name").unwrap(),
            vec![json!("pizza"), json!("bread")]
        );
        assert_eq!(
            select(&d, ".products[?(@.missing)]").unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn malformed_paths_are_errors() {
        let d = doc();
        assert!(select(&d, ".array[").is_err());
        assert!(select(&d, ".products[?(@.price > )]").is_err());
        assert!(select(&d, "['unterminated]").is_err());
        assert!(select(&d, ".array[x]").is_err());
    }

    #[test]
    fn deeply_nested_or_chained_filters_are_refused_not_followed() {
        let d = doc();
        let nested = format!("[?{}@.a{}]", "(".repeat(100_000), ")".repeat(100_000));
        assert!(select(&d, &nested).unwrap_err().contains("more than 256"));
        let chained = format!("[?(@.a{})]", " && @.a".repeat(100_000));
        assert!(select(&d, &chained).unwrap_err().contains("more than 256"));
        let within = format!("[?(@.a{})]", " && @.a".repeat(200));
        assert!(select(&d, &within).is_ok());
    }
}
