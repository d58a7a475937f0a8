//! Valid baselines the corpus cannot compile because it was shipped without a file
//! they load, compiled with that file as the official baseline folder holds it.

mod common;

use bicep::{MapResolver, compile_source};
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
