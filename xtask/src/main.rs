//! Workspace checks: `cargo xtask arch [--deny]` (an alias of `cargo run -p xtask --`).
//!
//! Per crate it prints module cycles, functions over 80 lines and files over 1,000 lines
//! (lines outside `#[cfg(test)]` items), for the code under each crate's `src/`; tests,
//! benches and examples are not checked. With `--deny` it exits 1 when it finds any.

mod graph;
mod sizes;
mod tree;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const FUNCTION_LIMIT: usize = 80;
const FILE_LIMIT: usize = 1000;

/// Functions that are generated-style data tables rather than logic, exempt from the
/// function limit: `(file, function, why)`.
const LONG_FUNCTION_ALLOWED: &[(&str, &str, &str)] = &[];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("arch") => {
            let deny = args.iter().skip(1).any(|a| a == "--deny");
            arch(&workspace_root(), deny)
        }
        _ => {
            eprintln!("usage: cargo xtask arch [--deny]");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The finding counts of one run.
#[derive(Default)]
struct Totals {
    cycles: usize,
    functions: usize,
    files: usize,
    errors: usize,
}

fn arch(root: &Path, deny: bool) -> ExitCode {
    let mut totals = Totals::default();
    println!(
        "arch: module cycles, functions over {FUNCTION_LIMIT} lines, files over {FILE_LIMIT} \
         lines (non-test code under each crate's src/)"
    );
    for crate_dir in workspace_members(root) {
        report_crate(root, &crate_dir, &mut totals);
    }
    println!(
        "total: {} module cycles, {} long functions, {} long files, {} unreadable files",
        totals.cycles, totals.functions, totals.files, totals.errors
    );
    let found = totals.cycles + totals.functions + totals.files + totals.errors;
    if deny && found > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report_crate(root: &Path, crate_dir: &Path, totals: &mut Totals) {
    let relative = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    println!("crate {}", relative(crate_dir));
    for root_file in unit_roots(&crate_dir.join("src")) {
        let unit = match tree::load_unit(&root_file) {
            Ok(unit) => unit,
            Err(e) => {
                println!("  error: {}: {}", relative(&e.file), e.message);
                totals.errors += 1;
                continue;
            }
        };
        let graph = graph::Graph::build(&unit);
        for cycle in graph.cycles() {
            totals.cycles += 1;
            println!("  cycle in {}:", relative(&unit.root_file));
            for &(from, to) in graph.edges.keys() {
                if cycle.contains(&from) && cycle.contains(&to) {
                    let reference = &graph.edges[&(from, to)];
                    println!(
                        "    {} -> {} ({}:{} `{}`)",
                        module_name(&unit, from),
                        module_name(&unit, to),
                        relative(&unit.modules[from].file),
                        reference.line,
                        reference.path
                    );
                }
            }
        }
        for function in sizes::long_functions(&unit, FUNCTION_LIMIT) {
            let file = relative(&function.file);
            if LONG_FUNCTION_ALLOWED
                .iter()
                .any(|(f, name, _)| *f == file && *name == function.name)
            {
                continue;
            }
            totals.functions += 1;
            println!(
                "  function {}:{} {} ({} lines)",
                file, function.line, function.name, function.lines
            );
        }
        for size in sizes::file_sizes(&unit) {
            if size.code_lines > FILE_LIMIT {
                totals.files += 1;
                println!(
                    "  file {} ({} lines without tests, {} with)",
                    relative(&size.file),
                    size.code_lines,
                    size.total_lines
                );
            }
        }
    }
}

fn module_name(unit: &tree::Unit, index: usize) -> String {
    let path = &unit.modules[index].path;
    if path.is_empty() {
        "crate".to_string()
    } else {
        path.join("::")
    }
}

/// Crate roots under `src/`: `lib.rs`, `main.rs` and `bin/*.rs`.
fn unit_roots(src: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|name| src.join(name))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(entries) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

/// The member directories listed in the workspace `Cargo.toml`.
fn workspace_members(root: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let Some(start) = manifest.find("members") else {
        return Vec::new();
    };
    let list = &manifest[start..];
    let open = list.find('[').unwrap_or(0);
    let close = list.find(']').unwrap_or(list.len());
    list[open + 1..close]
        .split(',')
        .map(|entry| entry.trim().trim_matches('"'))
        .filter(|entry| !entry.is_empty())
        .map(|entry| root.join(entry))
        .collect()
}
