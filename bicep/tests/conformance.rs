//! Runs the compiler over every case of the official test corpus in
//! `shared/bicep-conformance` and fails when a folder's pass count drops below the
//! floor committed in `conformance-floor.txt`.
//!
//! Comparison rule (the official suite's): JSON equality ignoring object key order
//! and `metadata._generator`. Invalid cases must be rejected with a real error (not
//! an unsupported-construct report) that points at a line holding code; the corpus
//! carries no expected diagnostics to compare positions with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("AZURE_DRIVER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("bicep-conformance")
}

fn case_dirs(root: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if depth == 0 {
            out.push(p);
        } else {
            out.extend(case_dirs(&p, depth - 1));
        }
    }
    out.sort();
    out
}

fn strip_generator(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(meta)) = m.get_mut("metadata") {
                meta.remove("_generator");
                if meta.is_empty() {
                    m.remove("metadata");
                }
            }
            m.values_mut().for_each(strip_generator);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_generator),
        _ => {}
    }
}

/// The first place where `got` and `want` differ, as a JSON path.
fn first_diff(got: &Value, want: &Value, path: &str) -> Option<String> {
    match (got, want) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                match a.get(k) {
                    Some(av) => {
                        if let Some(d) = first_diff(av, bv, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k} missing")),
                }
            }
            a.keys()
                .find(|k| !b.contains_key(*k))
                .map(|k| format!("{path}.{k} unexpected"))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{path} has {} items, want {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_diff(x, y, &format!("{path}[{i}]")))
        }
        _ if got == want => None,
        _ => Some(format!("{path}: got {got}, want {want}")),
    }
}

/// Why a valid case failed.
enum Failure {
    /// Compiled, but the JSON differs, or the expected file is unreadable.
    Differs(String),
    /// Rejected as valid Bicep this compiler does not implement.
    Unsupported(String),
    /// Rejected with a real error: the compiler wrongly calls valid Bicep invalid.
    Misrejected(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Differs(m) | Failure::Unsupported(m) | Failure::Misrejected(m) => m,
        }
    }
}

fn run_valid(dir: &Path) -> Result<(), Failure> {
    let expected = std::fs::read_to_string(dir.join("main.json"))
        .map_err(|e| Failure::Differs(format!("no main.json: {e}")))?;
    let mut want: Value =
        serde_json::from_str(&expected).map_err(|e| Failure::Differs(e.to_string()))?;
    let got = bicep::compile_file(dir.join("main.bicep")).map_err(|d| {
        let text =
            d.0.first()
                .map(|x| x.to_string())
                .unwrap_or_else(|| "failed without diagnostics".into());
        if d.is_unsupported() {
            Failure::Unsupported(text)
        } else {
            Failure::Misrejected(text)
        }
    })?;
    let mut got = got.json;
    strip_generator(&mut got);
    strip_generator(&mut want);
    match first_diff(&got, &want, "$") {
        None => Ok(()),
        Some(d) => Err(Failure::Differs(format!("output differs at {d}"))),
    }
}

fn run_invalid(dir: &Path) -> Result<(), String> {
    let path = dir.join("main.bicep");
    let source = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    match bicep::compile_file(&path) {
        Ok(_) => Err("accepted an invalid program".into()),
        Err(d) => {
            let first = d.0.first().ok_or("rejected without a diagnostic")?;
            // "Not implemented" is no proof that the program's error was found.
            if first.diagnostic.is_unsupported() {
                return Err(format!("rejected only as unsupported: {first}"));
            }
            let lines: Vec<&str> = source.lines().collect();
            let line = lines.get(first.line - 1).map(|l| l.trim()).unwrap_or("");
            if line.is_empty() || line.starts_with("//") {
                return Err(format!("diagnostic on a line without code: {first}"));
            }
            Ok(())
        }
    }
}

fn floors() -> BTreeMap<String, usize> {
    let text = include_str!("conformance-floor.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn conformance_corpus() {
    let root = corpus_dir();
    assert!(
        root.is_dir(),
        "conformance corpus not found at {} (set AZURE_DRIVER_SHARED_DIR)",
        root.display()
    );
    let folders: [(&str, Vec<PathBuf>, bool); 3] = [
        ("samples", case_dirs(&root.join("samples"), 1), true),
        (
            "baselines/valid",
            case_dirs(&root.join("baselines/valid"), 0),
            true,
        ),
        (
            "baselines/invalid",
            case_dirs(&root.join("baselines/invalid"), 0),
            false,
        ),
    ];
    let floors = floors();
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for (name, cases, valid) in &folders {
        assert!(!cases.is_empty(), "no cases in {name}");
        let mut passed = 0;
        let mut misrejected = 0;
        for dir in cases {
            let rel = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
            let result = if *valid {
                run_valid(dir)
            } else {
                run_invalid(dir).map_err(Failure::Differs)
            };
            match result {
                Ok(()) => {
                    passed += 1;
                    println!("PASS {rel}");
                }
                Err(e) => {
                    if matches!(e, Failure::Misrejected(_)) {
                        misrejected += 1;
                    }
                    println!("FAIL {rel}: {}", e.message());
                }
            }
        }
        let suffix = if *valid {
            format!(" ({misrejected} valid cases rejected with a real error)")
        } else {
            " rejected on the right line".to_string()
        };
        summary.push(format!("{name}: {passed}/{}{suffix}", cases.len()));
        let floor = floors.get(*name).copied().unwrap_or(0);
        if passed < floor {
            failures.push(format!("{name}: {passed} is below the floor {floor}"));
        }
        // Valid Bicep must never be called invalid: at most "unsupported".
        let ceiling = floors
            .get(&format!("{name} misrejected"))
            .copied()
            .unwrap_or(0);
        if *valid && misrejected > ceiling {
            failures.push(format!(
                "{name}: {misrejected} valid cases rejected with a real error (at most {ceiling})"
            ));
        }
    }
    for s in &summary {
        println!("{s}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
