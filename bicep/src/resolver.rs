//! Where the text of referred files comes from: the file system, a map of names to
//! contents, and a registry module cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::registry;

/// Supplies the text of files a template refers to (modules, `load*` functions).
pub trait ModuleResolver {
    /// Resolves `relative` against the file `from` and returns the resolved name
    /// (used for nested references and diagnostics) and the file content.
    fn resolve(&self, from: &str, relative: &str) -> Result<(String, String), String>;

    /// Like [`ModuleResolver::resolve`] for binary content (`loadFileAsBase64`).
    fn resolve_bytes(&self, from: &str, relative: &str) -> Result<(String, Vec<u8>), String> {
        self.resolve(from, relative)
            .map(|(name, text)| (name, text.into_bytes()))
    }

    /// The names of the files directly in the directory `relative` (resolved
    /// against the file `from`), for `loadDirectoryFileInfo`.
    fn list_files(&self, _from: &str, relative: &str) -> Result<Vec<String>, String> {
        Err(format!("directory \"{relative}\" cannot be listed"))
    }

    /// The compiled template (ARM JSON) of a restored registry module and where it
    /// was found; `None` when no module cache holds it.
    fn resolve_registry(&self, _reference: &registry::RegistryRef) -> Option<(String, String)> {
        None
    }
}

/// Resolves paths on the local file system, and registry modules from a module
/// cache laid out as the official compiler's (`~/.bicep`) when one is given.
#[derive(Debug, Default, Clone)]
pub struct FsResolver {
    pub module_cache: Option<PathBuf>,
}

impl ModuleResolver for FsResolver {
    fn resolve_registry(&self, reference: &registry::RegistryRef) -> Option<(String, String)> {
        let path = registry::cached_template_path(self.module_cache.as_deref()?, reference);
        let text = std::fs::read_to_string(&path).ok()?;
        Some((path.to_string_lossy().into_owned(), text))
    }

    fn resolve(&self, from: &str, relative: &str) -> Result<(String, String), String> {
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let path: PathBuf = base.join(relative);
        std::fs::read_to_string(&path)
            .map(|c| (path.to_string_lossy().into_owned(), c))
            .map_err(|e| format!("could not read \"{relative}\": {e}"))
    }

    fn resolve_bytes(&self, from: &str, relative: &str) -> Result<(String, Vec<u8>), String> {
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let path: PathBuf = base.join(relative);
        std::fs::read(&path)
            .map(|c| (path.to_string_lossy().into_owned(), c))
            .map_err(|e| format!("could not read \"{relative}\": {e}"))
    }

    fn list_files(&self, from: &str, relative: &str) -> Result<Vec<String>, String> {
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let entries = std::fs::read_dir(base.join(relative))
            .map_err(|e| format!("could not list directory \"{relative}\": {e}"))?;
        Ok(entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}

/// Resolves paths from an in-memory map of file name → content; names are
/// normalised (`./`, `..`, backslashes) relative to the referring file.
#[derive(Debug, Default, Clone)]
pub struct MapResolver {
    pub files: HashMap<String, String>,
}

impl MapResolver {
    pub fn new(files: HashMap<String, String>) -> Self {
        MapResolver { files }
    }
}

fn normalize_path(from: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in relative.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.retain(|p| !p.is_empty() && *p != ".");
    parts.join("/")
}

impl ModuleResolver for MapResolver {
    fn resolve(&self, from: &str, relative: &str) -> Result<(String, String), String> {
        let key = normalize_path(from, relative);
        self.files
            .get(&key)
            .map(|c| (key.clone(), c.clone()))
            .ok_or_else(|| format!("file \"{relative}\" is not available"))
    }

    fn list_files(&self, from: &str, relative: &str) -> Result<Vec<String>, String> {
        let dir = normalize_path(from, relative);
        let prefix = if dir.is_empty() { dir } else { dir + "/" };
        let names: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            return Err(format!("directory \"{relative}\" is not available"));
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_resolver_normalises_relative_paths() {
        assert_eq!(
            normalize_path("dir/main.bicep", "./mods/../x.bicep"),
            "dir/x.bicep"
        );
        assert_eq!(normalize_path("main.bicep", "sub\\y.bicep"), "sub/y.bicep");
    }
}
