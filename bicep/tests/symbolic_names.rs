//! languageVersion 2.0 resources: every sample compiled with symbolic names
//! (`symbolicNameCodegen` in its `bicepconfig.json`) equals what the official
//! compiler emits for it, `symbolic-names/<tier>/<case>.json` (the
//! `main.symbolicnames.json` baselines of Azure/bicep, `src/Bicep.Core.Samples/Files/user_submitted`,
//! commit 9beb0fee60): resources keyed by symbol, `existing` resources emitted,
//! symbolic `dependsOn`, `reference('symbol')`.

mod common;

use std::path::Path;

use bicep::{MapResolver, compile_source};
use common::{corpus_dir, first_diff, sample_dirs, strip_generator, text_files};
use serde_json::Value;

const SYMBOLIC_NAMES_CONFIG: &str =
    r#"{"experimentalFeaturesEnabled": {"symbolicNameCodegen": true}}"#;

#[test]
fn samples_compile_with_symbolic_names_like_the_official_compiler() {
    let expected_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/symbolic-names");
    let samples = corpus_dir().join("samples");
    let mut failures = Vec::new();
    let dirs = sample_dirs();
    assert_eq!(
        dirs.len(),
        95,
        "samples missing (set AZURE_DRIVER_SHARED_DIR)"
    );
    for dir in &dirs {
        let case = dir
            .strip_prefix(&samples)
            .unwrap_or(dir)
            .display()
            .to_string();
        let text = std::fs::read_to_string(expected_root.join(format!("{case}.json")))
            .unwrap_or_else(|e| panic!("{case}: no official symbolic-names output: {e}"));
        let mut want: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let mut files = text_files(dir);
        files.insert("bicepconfig.json".into(), SYMBOLIC_NAMES_CONFIG.into());
        let resolver = MapResolver::new(files.clone());
        match compile_source("main.bicep", &files["main.bicep"], &resolver) {
            Ok(t) => {
                let mut got = t.json;
                strip_generator(&mut got);
                strip_generator(&mut want);
                if let Some(d) = first_diff(&got, &want, "$") {
                    failures.push(format!("{case}: {d}"));
                }
            }
            Err(e) => failures.push(format!("{case}: {}", e.0[0])),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
