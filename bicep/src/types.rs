//! Resource type spelling.
//!
//! The official compiler emits a resource type as written, unless its type
//! library knows that `type@apiVersion` (compared case-insensitively): then it emits
//! the library's spelling of both
//! (`Microsoft.Web/serverFarms@2019-08-01` becomes `Microsoft.Web/serverfarms`;
//! `Microsoft.Cache/redis@2019-07-01` becomes `Microsoft.Cache/Redis`, while
//! `Microsoft.Cache/Redis@2020-06-01` becomes `Microsoft.Cache/redis`). This
//! compiler ships no type library, only the spellings the official compiler is known
//! to emit (`library_types.txt`); every other type keeps the casing it was written with.

use std::collections::HashMap;
use std::sync::OnceLock;

const LIBRARY: &str = include_str!("library_types.txt");

/// A type reference as the library spells it: `(type, apiVersion)`.
type Spelling = (&'static str, &'static str);

/// `lower-case type@apiVersion` → spelling, built once.
fn library() -> &'static HashMap<String, Spelling> {
    static INDEX: OnceLock<HashMap<String, Spelling>> = OnceLock::new();
    INDEX.get_or_init(|| {
        LIBRARY
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| Some((l.to_ascii_lowercase(), l.split_once('@')?)))
            .collect()
    })
}

/// The type library's spelling of `ty@api_version` (both compared case-insensitively,
/// as the official `ResourceTypeReference` does), when it is known: the official
/// emitter writes `type` and `apiVersion` from the reference the library resolved
/// (`TemplateWriter.EmitResource`, `metadata.TypeReference`).
pub fn library_spelling(ty: &str, api_version: &str) -> Option<Spelling> {
    library()
        .get(&format!("{ty}@{api_version}").to_ascii_lowercase())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_take_the_library_spelling_of_their_api_version() {
        assert_eq!(
            library_spelling("microsoft.storage/STORAGEaccounts", "2019-06-01"),
            Some(("Microsoft.Storage/storageAccounts", "2019-06-01"))
        );
        assert_eq!(
            library_spelling("Microsoft.Cache/redis", "2019-07-01"),
            Some(("Microsoft.Cache/Redis", "2019-07-01"))
        );
        assert_eq!(
            library_spelling("Microsoft.Cache/Redis", "2020-06-01"),
            Some(("Microsoft.Cache/redis", "2020-06-01"))
        );
        // API versions compare case-insensitively too; the library's spelling wins.
        assert_eq!(
            library_spelling("Microsoft.ApiManagement/service", "2020-06-01-PREVIEW"),
            Some(("Microsoft.ApiManagement/service", "2020-06-01-preview"))
        );
    }

    #[test]
    fn unknown_types_and_versions_have_no_library_spelling() {
        assert_eq!(
            library_spelling("Contoso.Widgets/gadgets", "2023-01-01"),
            None
        );
        assert_eq!(
            library_spelling("microsoft.storage/storageAccounts", "2099-01-01"),
            None
        );
    }
}
