//! Bicep → ARM JSON with the native compiler, cached by source hash. Only when every
//! diagnostic is an unsupported construct does it fall back to an external `bicep` CLI
//! (if one is on `PATH`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::error::{Error, Result};

/// Compiled templates kept, by their size as JSON text (about a quarter of what they take
/// in memory): thousands of typical templates, and a bound however large they are.
pub const CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Compiled templates by source digest, evicted oldest first beyond a byte budget.
#[derive(Debug)]
pub struct TemplateCache {
    budget: usize,
    bytes: usize,
    templates: HashMap<String, (Arc<Value>, usize)>,
    order: VecDeque<String>,
}

impl TemplateCache {
    pub fn new(budget: usize) -> Self {
        TemplateCache {
            budget,
            bytes: 0,
            templates: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.templates.get(key).map(|(t, _)| t.clone())
    }

    /// Keeps `template` (of `size` bytes) unless it alone exceeds the budget.
    pub fn insert(&mut self, key: String, template: Arc<Value>, size: usize) {
        if size > self.budget || self.templates.contains_key(&key) {
            return;
        }
        while self.bytes + size > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, freed)) = self.templates.remove(&oldest) {
                self.bytes -= freed;
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.templates.insert(key, (template, size));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

pub struct BicepCompiler {
    cache: Mutex<TemplateCache>,
}

impl Default for BicepCompiler {
    fn default() -> Self {
        BicepCompiler {
            cache: Mutex::new(TemplateCache::new(CACHE_BYTES)),
        }
    }
}

impl BicepCompiler {
    pub async fn compile(&self, source: &str) -> Result<Arc<Value>> {
        let key = hex::encode(Sha256::digest(source.as_bytes()));
        if let Some(hit) = self.cache().get(&key) {
            return Ok(hit);
        }
        // Compiling takes milliseconds of CPU per template: off the async workers, so
        // that a burst of new templates does not stall every other reconcile and watch.
        let owned = source.to_owned();
        let native = tokio::task::spawn_blocking(move || {
            bicep::compile_source("main.bicep", &owned, &bicep::MapResolver::default())
                .map(|t| t.json)
        })
        .await
        .map_err(|e| Error::InvalidTemplate(format!("the compiler stopped: {e}")))?;
        let compiled = match native {
            Ok(json) => json,
            Err(d) if d.is_unsupported() => external(source).await.map_err(|reason| {
                Error::InvalidTemplate(format!("{d}; external bicep fallback: {reason}"))
            })?,
            Err(d) => return Err(Error::InvalidTemplate(d.to_string())),
        };
        let size = serde_json::to_vec(&compiled).map_or(usize::MAX, |text| text.len());
        let compiled = Arc::new(compiled);
        self.cache().insert(key, compiled.clone(), size);
        Ok(compiled)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TemplateCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    #[test]
    fn the_cache_is_bounded_by_bytes_and_drops_the_oldest_first() {
        let mut cache = TemplateCache::new(100);
        let template = Arc::new(Value::Null);
        for key in ["a", "b", "c"] {
            cache.insert(key.into(), template.clone(), 40);
        }
        assert_eq!(cache.bytes(), 80);
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some() && cache.get("c").is_some());
        cache.insert("huge".into(), template.clone(), 101);
        assert!(cache.get("huge").is_none());
        assert_eq!(cache.bytes(), 80);
        cache.insert("c".into(), template, 40);
        assert_eq!(cache.bytes(), 80);
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
