//! Helpers shared by the corpus tests: where the corpus is, reading a case, and the
//! official suite's comparison rule.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// `shared/bicep-conformance`, beside the repository unless `AZURE_DRIVER_SHARED_DIR` says.
pub fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("AZURE_DRIVER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("bicep-conformance")
}

/// Every sample folder (`samples/<tier>/<case>`), sorted.
pub fn sample_dirs() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("samples"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|tier| {
            std::fs::read_dir(tier.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|case| case.path())
        .filter(|p| p.join("main.bicep").is_file())
        .collect();
    out.sort();
    out
}

/// Every text file under `dir`, keyed by its path relative to `dir`.
pub fn text_files(dir: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                let rel = p.strip_prefix(dir).unwrap_or(&p);
                out.insert(rel.to_string_lossy().replace('\\', "/"), text);
            }
        }
    }
    out
}

/// Drops `metadata._generator` (it names the compiler), as the official suite does.
pub fn strip_generator(v: &mut Value) {
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
pub fn first_diff(got: &Value, want: &Value, path: &str) -> Option<String> {
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
