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
    let Options {
        params,
        input,
        stdout,
        outfile,
        resolver,
    } = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
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

/// What the command line asks for.
struct Options {
    /// `build-params` rather than `build`.
    params: bool,
    input: PathBuf,
    stdout: bool,
    outfile: Option<PathBuf>,
    resolver: bicep::FsResolver,
}

/// The options, or the message to print before exiting with status 2.
fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut input = None;
    let mut stdout = false;
    let mut outfile = None;
    let mut resolver = bicep::FsResolver::default();
    let mut it = args.iter();
    let params = match it.next().map(String::as_str) {
        Some("build") => false,
        Some("build-params") => true,
        _ => {
            return Err(USAGE.to_string());
        }
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stdout" => stdout = true,
            "--outfile" => match it.next() {
                Some(f) => outfile = Some(PathBuf::from(f)),
                None => {
                    return Err(format!("--outfile needs a file name\n{USAGE}"));
                }
            },
            "--module-cache" => match it.next() {
                Some(d) => resolver.module_cache = Some(PathBuf::from(d)),
                None => {
                    return Err(format!("--module-cache needs a directory\n{USAGE}"));
                }
            },
            s if s.starts_with("--") => {
                return Err(format!("unknown option {s}\n{USAGE}"));
            }
            s if input.is_none() => input = Some(PathBuf::from(s)),
            s => {
                return Err(format!("unexpected argument {s}\n{USAGE}"));
            }
        }
    }
    let Some(input) = input else {
        return Err(USAGE.to_string());
    };
    Ok(Options {
        params,
        input,
        stdout,
        outfile,
        resolver,
    })
}
