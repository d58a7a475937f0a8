//! Compile-time benchmark over the conformance samples: prints the median and p99
//! per-sample compile time. Run with `cargo bench -p e2e --bench bicep_compile`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;

fn samples() -> Vec<PathBuf> {
    let shared = std::env::var_os("AZURE_DRIVER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e::repo_root().join("../shared"));
    let root = shared.join("bicep-conformance/samples");
    let mut out = Vec::new();
    for tier in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for case in std::fs::read_dir(tier.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let main = case.path().join("main.bicep");
            if main.is_file() {
                out.push(main);
            }
        }
    }
    out.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let files = samples();
    if files.is_empty() {
        eprintln!("no samples found (set AZURE_DRIVER_SHARED_DIR)");
        std::process::exit(1);
    }
    let mut times = Vec::with_capacity(files.len() * ROUNDS);
    let mut per_file: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); files.len()];
    let mut ok = 0;
    for round in 0..ROUNDS {
        for (i, f) in files.iter().enumerate() {
            let start = Instant::now();
            let result = bicep::compile_file(f);
            let took = start.elapsed();
            times.push(took);
            per_file[i].push(took);
            if round == 0 && result.is_ok() {
                ok += 1;
            }
        }
    }
    let (slowest, slowest_median) = per_file
        .iter_mut()
        .enumerate()
        .map(|(i, t)| {
            t.sort();
            (i, t[t.len() / 2])
        })
        .max_by_key(|(_, m)| *m)
        .unwrap_or((0, Duration::ZERO));
    times.sort();
    let total: Duration = times.iter().sum();
    println!(
        "bicep compile: {} samples ({} compiled) x {} rounds",
        files.len(),
        ok,
        ROUNDS
    );
    println!(
        "median: {:.3} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "p99:    {:.3} ms",
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "max:    {:.3} ms",
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "mean:   {:.3} ms",
        total.as_secs_f64() * 1e3 / times.len() as f64
    );
    println!(
        "slowest sample (median): {:.3} ms {}",
        slowest_median.as_secs_f64() * 1e3,
        files[slowest].display()
    );
}
