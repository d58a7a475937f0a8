//! Bicep → ARM JSON with the native compiler, cached by source hash. Only when every
//! diagnostic is an unsupported construct does it fall back to an external `bicep` CLI
//! (if one is on `PATH`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::error::{Error, Result};

/// Compiled templates kept; sources are small and few distinct ones are live at a time.
const CACHE_LIMIT: usize = 512;

#[derive(Default)]
pub struct BicepCompiler {
    cache: Mutex<HashMap<String, Arc<Value>>>,
}

impl BicepCompiler {
    pub async fn compile(&self, source: &str) -> Result<Arc<Value>> {
        let key = hex::encode(Sha256::digest(source.as_bytes()));
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let compiled =
            match bicep::compile_source("main.bicep", source, &bicep::MapResolver::default()) {
                Ok(t) => t.json,
                Err(d) if d.is_unsupported() => external(source).await.map_err(|reason| {
                    Error::InvalidTemplate(format!("{d}; external bicep fallback: {reason}"))
                })?,
                Err(d) => return Err(Error::InvalidTemplate(d.to_string())),
            };
        let compiled = Arc::new(compiled);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }

    fn cached(&self, key: &str) -> Option<Arc<Value>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

/// `bicep build <file> --stdout`, the official CLI.
async fn external(source: &str) -> std::result::Result<Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("main.bicep");
    tokio::fs::write(&path, source)
        .await
        .map_err(|e| e.to_string())?;
    let output = Command::new("bicep")
        .arg("build")
        .arg(&path)
        .arg("--stdout")
        .output()
        .await
        .map_err(|e| format!("cannot run bicep: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("bicep printed no JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compiles_and_caches() {
        let compiler = BicepCompiler::default();
        let source = "param name string\noutput greeting string = 'hello ${name}'\n";
        let first = compiler.compile(source).await.unwrap();
        assert!(first["parameters"]["name"].is_object(), "{first}");
        assert!(first["outputs"]["greeting"].is_object(), "{first}");
        let second = compiler.compile(source).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[tokio::test]
    async fn syntax_errors_are_terminal_with_the_diagnostic() {
        let err = BicepCompiler::default()
            .compile("resource x = {")
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.reason(), "InvalidTemplate");
        assert!(err.to_string().contains("main.bicep"), "{err}");
    }
}
