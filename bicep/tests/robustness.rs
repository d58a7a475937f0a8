//! The compiler must never panic: feed it truncated and perturbed versions of
//! every corpus file and check it answers with JSON or diagnostics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bicep::{MapResolver, compile_source};

fn corpus_files() -> Vec<PathBuf> {
    let shared = std::env::var_os("AZURE_DRIVER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let mut out = Vec::new();
    let mut stack = vec![shared.join("bicep-conformance")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "bicep") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }
}

fn char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

#[test]
fn perturbed_inputs_never_panic() {
    let files = corpus_files();
    assert!(!files.is_empty(), "conformance corpus not found");
    let resolver = MapResolver::new(HashMap::new());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let noise = [
        "{", "}", "[", "]", "(", ")", "'", "${", "\n", "::", "!", "?", ".", "@", "for", "if", "=>",
    ];
    let mut runs = 0;
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        if src.is_empty() {
            continue;
        }
        for _ in 0..6 {
            let cut = char_boundary(&src, rng.next(src.len()));
            let _ = compile_source("main.bicep", &src[..cut], &resolver);
            let at = char_boundary(&src, rng.next(src.len()));
            let mut mutated = src.clone();
            mutated.insert_str(at, noise[rng.next(noise.len())]);
            let _ = compile_source("main.bicep", &mutated, &resolver);
            let from = char_boundary(&src, rng.next(src.len()));
            let to = char_boundary(&src, from + rng.next(40));
            let mut deleted = src.clone();
            deleted.replace_range(from..to, "");
            let _ = compile_source("main.bicep", &deleted, &resolver);
            runs += 3;
        }
    }
    assert!(runs > 0);
}

#[test]
fn deeply_nested_input_is_rejected_not_overflowed() {
    let resolver = MapResolver::new(HashMap::new());
    let deep = format!("var x = {}1{}\n", "(".repeat(5000), ")".repeat(5000));
    let err = compile_source("main.bicep", &deep, &resolver).unwrap_err();
    assert!(!err.0.is_empty());
}

#[test]
fn long_operator_chains_are_rejected_not_overflowed() {
    let resolver = MapResolver::new(HashMap::new());
    for src in [
        format!("var x = 1{}\n", "+1".repeat(100_000)),
        format!("var x = {{}}{}\n", ".a".repeat(100_000)),
        format!("var x = {}true\n", "!".repeat(100_000)),
        format!("var x = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!("var x = '{}'\n", "${'".repeat(10_000)),
    ] {
        assert!(compile_source("main.bicep", &src, &resolver).is_err());
    }
}

#[test]
fn doubling_variable_chains_stay_bounded() {
    let resolver = MapResolver::new(HashMap::new());
    let mut src = String::from("resource r 'A.B/c@1' = {\n  name: 'r'\n}\nvar v0 = r.properties\n");
    for i in 1..60 {
        src.push_str(&format!("var v{i} = [v{p}, v{p}]\n", p = i - 1));
    }
    src.push_str("output o array = v59\n");
    assert!(compile_source("main.bicep", &src, &resolver).is_err());
    let plain = src.replace("r.properties", "r.id");
    assert!(compile_source("main.bicep", &plain, &resolver).is_ok());
}

#[test]
fn the_inlining_budget_is_shared_by_the_whole_template() {
    let resolver = MapResolver::new(HashMap::new());
    let with_outputs = |count: usize| {
        let mut src =
            String::from("resource r 'A.B/c@1' = {\n  name: 'r'\n}\nvar v0 = r.properties\n");
        for i in 1..=10 {
            src.push_str(&format!("var v{i} = [v{p}, v{p}]\n", p = i - 1));
        }
        // Each output inlines about 2,000 variables, far below the expression size limit.
        for o in 0..count {
            src.push_str(&format!("output o{o} array = v10\n"));
        }
        compile_source("main.bicep", &src, &resolver)
    };
    assert!(with_outputs(40).is_ok());
    let err = with_outputs(100).unwrap_err();
    assert!(
        err.0.iter().any(|d| d
            .diagnostic
            .message
            .contains("makes the template too large")),
        "{err}"
    );
}
