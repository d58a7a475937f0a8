//! Valid baselines the corpus cannot compile because it was shipped without a file
//! they load, compiled with that file as the official baseline folder holds it.

mod common;

use std::path::Path;

use base64::Engine;
use bicep::{MapResolver, compile_file, compile_source};
use common::{corpus_dir, first_diff, strip_generator, text_files};
use serde_json::Value;

#[test]
fn functions_baseline_compiles_with_the_file_it_loads() {
    let dir = corpus_dir().join("baselines/valid/Functions_LF");
    let mut files = text_files(&dir);
    // Azure/bicep src/Bicep.Core.Samples/Files/baselines/Functions_LF/repro-data.json
    files.insert("repro-data.json".into(), "{}".into());
    let resolver = MapResolver::new(files.clone());
    let mut got = compile_source("main.bicep", &files["main.bicep"], &resolver)
        .unwrap_or_else(|e| panic!("{e}"))
        .json;
    let mut want: Value =
        serde_json::from_str(files["main.json"].trim_start_matches('\u{feff}')).unwrap();
    strip_generator(&mut got);
    strip_generator(&mut want);
    assert_eq!(first_diff(&got, &want, "$"), None);
}

/// Copies the folder `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn load_functions_baseline_compiles_with_the_binary_file_it_loads() {
    let baseline = corpus_dir().join("baselines/valid/LoadFunctions_CRLF");
    let dir = std::env::temp_dir().join(format!("bicep-load-functions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&baseline, &dir);
    let main_json = std::fs::read_to_string(dir.join("main.json")).unwrap();
    let mut want: Value = serde_json::from_str(main_json.trim_start_matches('\u{feff}')).unwrap();
    // Azure/bicep .../baselines/LoadFunctions_CRLF/Assets/binary and its copy under
    // Assets/path, as the official template embeds them (`loadFileAsBase64`).
    for (file, variable) in [
        ("Assets/binary", "loadedBinary1"),
        (
            "Assets/path/to/deep/file/binary",
            "binaryFileInSubdirectories",
        ),
    ] {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(want["variables"][variable].as_str().unwrap())
            .unwrap();
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    let compiled = compile_file(dir.join("main.bicep"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut got = compiled.unwrap_or_else(|e| panic!("{e}")).json;
    strip_generator(&mut got);
    strip_generator(&mut want);
    assert_eq!(first_diff(&got, &want, "$"), None);
}
