//! The package's `Lifecycle/azure/` folder, read from a bounded ZIP archive into memory.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use crate::error::ApiError;
use crate::request::Lifecycle;

/// Bounds on what a driver-files archive may expand to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_archive_bytes: usize,
    pub max_entries: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio accepted for entries over 64 KiB.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_archive_bytes: 8 * 1024 * 1024,
            max_entries: 512,
            max_file_bytes: 4 * 1024 * 1024,
            max_total_bytes: 16 * 1024 * 1024,
            max_ratio: 100,
        }
    }
}

/// A template found in the driver files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    Bicep(String),
    Json(String),
}

/// Files of the package, keyed by normalised relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverFiles {
    files: BTreeMap<String, Vec<u8>>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// Rejects absolute paths, drive letters and `..`; returns the path with `/` separators
/// and no `.` segments.
fn normalise_entry_path(raw: &str) -> Result<String, ApiError> {
    let unified = raw.replace('\\', "/");
    let escapes = unified.starts_with('/')
        || unified.as_bytes().get(1) == Some(&b':')
        || unified.split('/').any(|segment| segment == "..")
        || unified.contains('\0');
    if escapes {
        return Err(bad(format!(
            "driverFiles entry \"{raw}\" escapes the package folder"
        )));
    }
    Ok(unified
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect::<Vec<_>>()
        .join("/"))
}

impl DriverFiles {
    /// Reads a ZIP archive. Empty input is an empty package.
    pub fn from_zip(bytes: &[u8], limits: &Limits) -> Result<Self, ApiError> {
        Self::from_zip_charged(bytes, limits, &mut |_| Ok(()))
    }

    /// [`DriverFiles::from_zip`], calling `charge` with the bytes each entry will take
    /// before inflating it (its declared size), and again should it inflate to more.
    pub fn from_zip_charged(
        bytes: &[u8],
        limits: &Limits,
        charge: &mut dyn FnMut(u64) -> Result<(), ApiError>,
    ) -> Result<Self, ApiError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        if bytes.len() > limits.max_archive_bytes {
            return Err(bad(format!(
                "driverFiles archive is larger than {} bytes",
                limits.max_archive_bytes
            )));
        }
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|_| bad("'driverFiles' is not a valid zip archive"))?;
        if archive.len() > limits.max_entries {
            return Err(bad(format!(
                "driverFiles archive has more than {} entries",
                limits.max_entries
            )));
        }
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        for index in 0..archive.len() {
            let mut entry = archive
                .by_index(index)
                .map_err(|_| bad("'driverFiles' is not a valid zip archive"))?;
            let path = normalise_entry_path(&String::from_utf8_lossy(entry.name_raw()))?;
            if entry.is_dir() || path.is_empty() {
                continue;
            }
            let compressed = entry.compressed_size().max(1);
            if entry.size() > 64 * 1024 && entry.size() / compressed > limits.max_ratio {
                return Err(bad(format!(
                    "driverFiles entry \"{path}\" has a suspicious compression ratio"
                )));
            }
            // Header sizes can lie: count the bytes actually inflated.
            let budget = limits.max_file_bytes.min(limits.max_total_bytes - total);
            let declared = entry.size().min(budget);
            charge(declared)?;
            let mut content = Vec::new();
            (&mut entry)
                .take(budget + 1)
                .read_to_end(&mut content)
                .map_err(|_| bad(format!("driverFiles entry \"{path}\" is corrupt")))?;
            if content.len() as u64 > budget {
                return Err(bad(format!(
                    "driverFiles expand beyond the size limit at entry \"{path}\""
                )));
            }
            charge((content.len() as u64).saturating_sub(declared))?;
            total += content.len() as u64;
            files.insert(path, content);
        }
        Ok(Self { files })
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    fn find(&self, file_name: &str) -> Option<(&str, &[u8])> {
        // Prefer the shallowest match: `Create.bicep` over `templates/Create.bicep`.
        self.files
            .iter()
            .filter(|(path, _)| {
                path.rsplit('/')
                    .next()
                    .is_some_and(|base| base.eq_ignore_ascii_case(file_name))
            })
            .min_by_key(|(path, _)| (path.matches('/').count(), path.len()))
            .map(|(path, content)| (path.as_str(), content.as_slice()))
    }

    /// The template for a lifecycle: `<Lifecycle>.bicep|.json`, else for Create
    /// `main.bicep` / `azuredeploy.json`.
    pub fn template_for(&self, lifecycle: &Lifecycle) -> Result<Option<Template>, ApiError> {
        let mut candidates: Vec<String> = Vec::new();
        for stem in lifecycle.template_stems() {
            candidates.push(format!("{stem}.bicep"));
            candidates.push(format!("{stem}.json"));
        }
        if *lifecycle == Lifecycle::Create {
            candidates.push("main.bicep".into());
            candidates.push("azuredeploy.json".into());
        }
        for candidate in candidates {
            if let Some((path, content)) = self.find(&candidate) {
                let text = String::from_utf8(content.to_vec())
                    .map_err(|_| bad(format!("driverFiles template \"{path}\" is not UTF-8")))?;
                return Ok(Some(if candidate.ends_with(".bicep") {
                    Template::Bicep(text)
                } else {
                    serde_json::from_str::<serde_json::Value>(&text).map_err(|err| {
                        bad(format!(
                            "driverFiles template \"{path}\" is not valid JSON: {err}"
                        ))
                    })?;
                    Template::Json(text)
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            writer
                .start_file(*name, SimpleFileOptions::default())
                .unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_templates_by_lifecycle() {
        let zip = zip_of(&[
            ("templates/Create.bicep", b"param a string"),
            ("Create.bicep", b"param b string"),
            ("configure.json", br#"{"resources": []}"#),
        ]);
        let files = DriverFiles::from_zip(&zip, &Limits::default()).unwrap();
        assert_eq!(
            files.template_for(&Lifecycle::Create).unwrap(),
            Some(Template::Bicep("param b string".into()))
        );
        assert_eq!(
            files
                .template_for(&Lifecycle::Operation("Configure".into()))
                .unwrap(),
            Some(Template::Json(r#"{"resources": []}"#.into()))
        );
        assert_eq!(
            files
                .template_for(&Lifecycle::Operation("Start".into()))
                .unwrap(),
            None
        );
    }

    #[test]
    fn falls_back_to_main_bicep_for_create_only() {
        let zip = zip_of(&[("main.bicep", b"param a string")]);
        let files = DriverFiles::from_zip(&zip, &Limits::default()).unwrap();
        assert!(files.template_for(&Lifecycle::Create).unwrap().is_some());
        assert!(
            files
                .template_for(&Lifecycle::Operation("Stop".into()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn rejects_escaping_entries() {
        for name in [
            "../evil.bicep",
            "a/../../evil",
            "/etc/passwd",
            "C:/x",
            "a\\..\\b",
        ] {
            let zip = zip_of(&[(name, b"x")]);
            let err = DriverFiles::from_zip(&zip, &Limits::default()).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(
                err.message.contains("escapes the package folder"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn rejects_non_zip_and_bombs() {
        let err = DriverFiles::from_zip(b"plain text", &Limits::default()).unwrap_err();
        assert_eq!(err.message, "'driverFiles' is not a valid zip archive");

        let zeros = vec![0u8; 8 * 1024 * 1024];
        let bomb = zip_of(&[("big.json", &zeros)]);
        assert!(bomb.len() < 100 * 1024, "deflate should shrink zeros");
        let err = DriverFiles::from_zip(&bomb, &Limits::default()).unwrap_err();
        assert!(
            err.message.contains("suspicious compression ratio"),
            "{err}"
        );

        let limits = Limits {
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let err = DriverFiles::from_zip(&bomb, &limits).unwrap_err();
        assert!(err.message.contains("beyond the size limit"), "{err}");
    }

    #[test]
    fn rejects_too_many_entries() {
        let names: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let limits = Limits {
            max_entries: 4,
            ..Limits::default()
        };
        let err = DriverFiles::from_zip(&zip_of(&entries), &limits).unwrap_err();
        assert_eq!(err.message, "driverFiles archive has more than 4 entries");
    }

    #[test]
    fn invalid_json_template_is_a_bad_request() {
        let zip = zip_of(&[("azuredeploy.json", b"{oops")]);
        let files = DriverFiles::from_zip(&zip, &Limits::default()).unwrap();
        let err = files.template_for(&Lifecycle::Create).unwrap_err();
        assert!(
            err.message
                .starts_with("driverFiles template \"azuredeploy.json\" is not valid JSON")
        );
    }
}
