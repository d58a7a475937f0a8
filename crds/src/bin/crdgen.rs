//! Prints the `AzureResource` CRD as YAML; `--check` fails when the committed
//! `deploy/crds/azureresources.yaml` differs from it.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: crdgen [--check]\n\n\
Prints the AzureResource CustomResourceDefinition as YAML.\n\
  --check   compare with deploy/crds/azureresources.yaml and fail if it differs";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            print!("{}", crds::crd_yaml());
            ExitCode::SUCCESS
        }
        [flag] if flag == "--check" => check(),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check() -> ExitCode {
    let path = committed_crd_path();
    match std::fs::read_to_string(&path) {
        Ok(committed) if committed == crds::crd_yaml() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!(
                "{} is out of date: run `cargo run -p crds --bin crdgen > deploy/crds/azureresources.yaml`",
                path.display()
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("cannot read {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn committed_crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds/azureresources.yaml")
}
