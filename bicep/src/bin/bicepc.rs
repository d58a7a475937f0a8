//! `bicepc build FILE [--stdout | --outfile F] [--module-cache DIR]`: compiles Bicep to ARM
//! JSON like `bicep build`; `bicepc build-params FILE.bicepparam [...]` writes the ARM
//! parameters file. Registry modules come only from the module cache `DIR` (the official
//! compiler's layout, default `~/.bicep`, filled by `bicep restore`).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: bicepc build <file.bicep> [--stdout | --outfile <file.json>] [--module-cache <dir>]\n       bicepc build-params <file.bicepparam> [--stdout | --outfile <file.json>] [--module-cache <dir>]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mut input = None;
    let mut stdout = false;
    let mut outfile = None;
    let mut resolver = bicep::FsResolver::default();
    let mut it = args.iter();
    let params = match it.next().map(String::as_str) {
        Some("build") => false,
        Some("build-params") => true,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stdout" => stdout = true,
            "--outfile" => match it.next() {
                Some(f) => outfile = Some(PathBuf::from(f)),
                None => {
                    eprintln!("--outfile needs a file name\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--module-cache" => match it.next() {
                Some(d) => resolver.module_cache = Some(PathBuf::from(d)),
                None => {
                    eprintln!("--module-cache needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            s if s.starts_with("--") => {
                eprintln!("unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            s if input.is_none() => input = Some(PathBuf::from(s)),
            s => {
                eprintln!("unexpected argument {s}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(input) = input else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let compiled = if params {
        bicep::compile_params_file_with(&input, &resolver)
    } else {
        bicep::compile_file_with(&input, &resolver)
    };
    match compiled {
        Ok(t) => {
            for w in &t.diagnostics {
                eprintln!("{w}");
            }
            let text = t.to_json_string();
            if stdout {
                println!("{text}");
                return ExitCode::SUCCESS;
            }
            let out = outfile.unwrap_or_else(|| input.with_extension("json"));
            match std::fs::write(&out, text + "\n") {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("could not write {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
        Err(diags) => {
            eprintln!("{diags}");
            ExitCode::FAILURE
        }
    }
}
