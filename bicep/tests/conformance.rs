//! Runs the compiler over every case of the official test corpus in
//! `shared/bicep-conformance` and fails when a folder's pass count drops below the
//! floor committed in `conformance-floor.txt`.
//!
//! Comparison rule (the official suite's): JSON equality ignoring object key order
//! and `metadata._generator`. Invalid cases must be rejected with a real error (not
//! an unsupported-construct report), and at least one of our errors must sit on a
//! line where the official compiler also reports an error.
//!
//! The corpus ships no expected diagnostics, so `invalid-expected-lines.json` holds
//! them: transcribed from the `main.diagnostics.bicep` baselines of the Azure/bicep
//! repository (`src/Bicep.Core.Samples/Files/baselines/<case>/`), errors only
//! (warnings and infos dropped), each matched to this corpus's `main.bicep` by the
//! annotated source line's text. Cases marked `partial` list only the errors of the
//! part of the official file that was transcribed: a subset of the official lines.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{corpus_dir, first_diff, strip_generator};
use serde_json::Value;

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

/// Why a valid case failed.
enum Failure {
    /// Compiled, but the JSON differs, or the expected file is unreadable.
    Differs(String),
    /// Rejected as valid Bicep this compiler does not implement.
    Unsupported(String),
    /// Rejected with a real error: the compiler wrongly calls valid Bicep invalid.
    Misrejected(String),
    /// An invalid case rejected, but with no error on an official error line.
    WrongLine(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Differs(m)
            | Failure::Unsupported(m)
            | Failure::Misrejected(m)
            | Failure::WrongLine(m) => m,
        }
    }
}

/// The file named by a BCP091 "could not read" error when it is indeed absent from
/// the case's folder: the corpus was shipped without it (binary assets), so the
/// rejection is right and no misrejection.
fn missing_corpus_file(dir: &Path, d: &bicep::Diagnostics) -> Option<String> {
    let first = d.0.first()?;
    if first.diagnostic.code != "BCP091" {
        return None;
    }
    let named = first.diagnostic.message.split("could not read \"").nth(1)?;
    let path = named.split('"').next()?;
    (!dir.join(path).exists()).then(|| path.to_string())
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
        } else if let Some(missing) = missing_corpus_file(dir, &d) {
            Failure::Differs(format!("the corpus lacks {missing}, which this case loads"))
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

/// The official compiler's error lines for one invalid case.
struct OfficialErrors {
    lines: Vec<usize>,
    partial: bool,
}

fn official_errors() -> BTreeMap<String, OfficialErrors> {
    let data: Value = serde_json::from_str(include_str!("invalid-expected-lines.json"))
        .expect("invalid-expected-lines.json is valid JSON");
    let Value::Object(cases) = data else {
        panic!("invalid-expected-lines.json must be an object");
    };
    cases
        .into_iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .map(|(name, case)| {
            let lines = case["errorLines"]
                .as_array()
                .expect("errorLines is an array")
                .iter()
                .map(|l| l.as_u64().expect("line numbers are integers") as usize)
                .collect();
            let partial = case["partial"].as_bool().unwrap_or(false);
            (name, OfficialErrors { lines, partial })
        })
        .collect()
}

/// Rejects with a real error on one of the official error lines; prints both sets.
/// Counts in `precise` the cases where every line we report an error on is an
/// official error line.
fn run_invalid(
    dir: &Path,
    official: Option<&OfficialErrors>,
    precise: &mut usize,
) -> Result<(), Failure> {
    let ours: Vec<usize> = match bicep::compile_file(dir.join("main.bicep")) {
        Ok(_) => return Err(Failure::Differs("accepted an invalid program".into())),
        Err(d) => {
            let Some(first) = d.0.first() else {
                return Err(Failure::Differs("rejected without a diagnostic".into()));
            };
            // "Not implemented" is no proof that the program's error was found.
            if d.is_unsupported() {
                return Err(Failure::Differs(format!(
                    "rejected only as unsupported: {first}"
                )));
            }
            let mut lines: Vec<usize> =
                d.0.iter()
                    .filter(|x| !x.diagnostic.is_unsupported() && x.path.ends_with("main.bicep"))
                    .map(|x| x.line)
                    .collect();
            lines.dedup();
            lines
        }
    };
    let Some(official) = official else {
        return Err(Failure::WrongLine(format!(
            "no official diagnostics recorded for this case (ours: {ours:?})"
        )));
    };
    let matched = ours.iter().any(|l| official.lines.contains(l));
    let stray: Vec<usize> = ours
        .iter()
        .copied()
        .filter(|l| !official.lines.contains(l))
        .collect();
    if stray.is_empty() {
        *precise += 1;
    }
    println!(
        "  official error lines{}: {:?}\n  ours: {:?}\n  match: {}\n  ours not official: {:?}",
        if official.partial { " (partial)" } else { "" },
        official.lines,
        ours,
        if matched { "yes" } else { "no" },
        stray
    );
    if matched {
        Ok(())
    } else {
        Err(Failure::WrongLine(format!(
            "no error on an official error line (ours: {ours:?})"
        )))
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
    let official = official_errors();
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for (name, cases, valid) in &folders {
        assert!(!cases.is_empty(), "no cases in {name}");
        let mut passed = 0;
        let mut misrejected = 0;
        let mut wrong_line = 0;
        let mut precise = 0;
        for dir in cases {
            let rel = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
            let result = if *valid {
                run_valid(dir)
            } else {
                let case = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
                println!("CASE {rel}");
                run_invalid(dir, official.get(case), &mut precise)
            };
            match result {
                Ok(()) => {
                    passed += 1;
                    println!("PASS {rel}");
                }
                Err(e) => {
                    match e {
                        Failure::Misrejected(_) => misrejected += 1,
                        Failure::WrongLine(_) => wrong_line += 1,
                        _ => {}
                    }
                    println!("FAIL {rel}: {}", e.message());
                }
            }
        }
        let suffix = if *valid {
            format!(" ({misrejected} valid cases rejected with a real error)")
        } else {
            format!(
                " rejected with an error on an official error line ({} rejected, {precise} with every error on an official error line)",
                passed + wrong_line
            )
        };
        summary.push(format!("{name}: {passed}/{}{suffix}", cases.len()));
        let floor = floors.get(*name).copied().unwrap_or(0);
        if passed < floor {
            failures.push(format!("{name}: {passed} is below the floor {floor}"));
        }
        let precise_floor = floors.get(&format!("{name} precise")).copied();
        if let Some(f) = precise_floor.filter(|f| !*valid && precise < *f) {
            failures.push(format!(
                "{name}: {precise} cases with every error on an official error line, below the floor {f}"
            ));
        }
        let rejected_floor = floors.get(&format!("{name} rejected")).copied();
        if let Some(f) = rejected_floor.filter(|f| passed + wrong_line < *f) {
            failures.push(format!(
                "{name}: {} rejected is below the floor {f}",
                passed + wrong_line
            ));
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
