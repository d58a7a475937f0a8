//! Resource type spelling.
//!
//! The official compiler emits a resource type as written, unless its type
//! library knows that exact `type@apiVersion`: then it emits the library's spelling
//! (`Microsoft.Web/serverFarms@2019-08-01` becomes `Microsoft.Web/serverfarms`;
//! `Microsoft.Cache/redis@2019-07-01` becomes `Microsoft.Cache/Redis`, while
//! `Microsoft.Cache/Redis@2020-06-01` becomes `Microsoft.Cache/redis`). This
//! compiler ships no type library, only the spellings the official compiler is known
//! to emit (`library_types.txt`); every other type keeps the casing it was written with.

use std::collections::HashMap;
use std::sync::OnceLock;

const LIBRARY: &str = include_str!("library_types.txt");

/// `(lower-case type, API version)` → spelling, built once.
fn library() -> &'static HashMap<(String, &'static str), &'static str> {
    static INDEX: OnceLock<HashMap<(String, &'static str), &'static str>> = OnceLock::new();
    INDEX.get_or_init(|| {
        LIBRARY
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('@'))
            .map(|(t, v)| ((t.to_ascii_lowercase(), v), t))
            .collect()
    })
}

/// The type library's spelling of `ty` at `api_version`, when it is known.
pub fn library_spelling(ty: &str, api_version: &str) -> Option<&'static str> {
    library()
        .get(&(ty.to_ascii_lowercase(), api_version))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_take_the_library_spelling_of_their_api_version() {
        assert_eq!(
            library_spelling("microsoft.storage/STORAGEaccounts", "2019-06-01"),
            Some("Microsoft.Storage/storageAccounts")
        );
        assert_eq!(
            library_spelling("Microsoft.Cache/redis", "2019-07-01"),
            Some("Microsoft.Cache/Redis")
        );
        assert_eq!(
            library_spelling("Microsoft.Cache/Redis", "2020-06-01"),
            Some("Microsoft.Cache/redis")
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
