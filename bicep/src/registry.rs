//! Registry module references (`br:registry/repository:tag`, `br/alias:path:tag`)
//! and where the official compiler's local cache keeps a restored module: this
//! compiler never downloads, it only reads a cache `bicep restore` filled.

use std::path::{Path, PathBuf};

/// The alias every Bicep installation knows: the public module registry.
const PUBLIC_ALIAS: (&str, &str) = ("public", "mcr.microsoft.com/bicep");

/// A parsed `br:` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// True when a module path names a registry or template-spec module.
pub fn is_external(path: &str) -> bool {
    ["br:", "br/", "ts:", "ts/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Parses `br:registry/repo[:tag|@digest]` or `br/public:repo[:tag|@digest]`.
/// `None` for template specs, other aliases (they live in a `bicepconfig.json`)
/// and malformed references.
pub fn parse(path: &str) -> Option<RegistryRef> {
    let (registry_prefix, rest) = if let Some(rest) = path.strip_prefix("br:") {
        let (registry, rest) = rest.split_once('/')?;
        (registry.to_string(), rest)
    } else {
        let rest = path.strip_prefix("br/")?;
        let (alias, rest) = rest.split_once(':')?;
        if alias != PUBLIC_ALIAS.0 {
            return None;
        }
        let (registry, base) = PUBLIC_ALIAS.1.split_once('/')?;
        return with_registry(registry.to_string(), &format!("{base}/{rest}"));
    };
    with_registry(registry_prefix, rest)
}

fn with_registry(registry: String, rest: &str) -> Option<RegistryRef> {
    let (repository, tag, digest) = if let Some((repo, digest)) = rest.split_once('@') {
        (repo, None, Some(digest.to_string()))
    } else {
        let (repo, tag) = rest.rsplit_once(':')?;
        (repo, Some(tag.to_string()), None)
    };
    if registry.is_empty() || repository.is_empty() {
        return None;
    }
    Some(RegistryRef {
        registry,
        repository: repository.to_string(),
        tag,
        digest,
    })
}

/// The compiled template of a restored module under the cache root `cache`
/// (the official default is `~/.bicep`): `br/<registry>/<repo$path>/<tag>/main.json`.
pub fn cached_template_path(cache: &Path, r: &RegistryRef) -> PathBuf {
    let registry = r.registry.replace(':', "$").to_lowercase();
    let repository = r.repository.replace('/', "$");
    let version = match (&r.tag, &r.digest) {
        (Some(tag), _) => encode_tag(tag),
        (None, Some(digest)) => digest.replace(':', "#"),
        (None, None) => String::new(),
    };
    cache
        .join("br")
        .join(registry)
        .join(repository)
        .join(version)
        .join("main.json")
}

/// Tags are case-sensitive but file systems may not be: the tag is followed by `$`
/// and a hexadecimal mask of its upper-case letters (bit i for character i).
fn encode_tag(tag: &str) -> String {
    let mut nibbles = vec![0u8; tag.chars().count().div_ceil(4)];
    for (i, c) in tag.chars().enumerate() {
        if c.is_uppercase() {
            nibbles[i / 4] |= 1 << (i % 4);
        }
    }
    let hex: String = nibbles
        .iter()
        .rev()
        .skip_while(|n| **n == 0)
        .map(|n| char::from_digit(u32::from(*n), 16).unwrap_or('0'))
        .collect();
    format!("{tag}${hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_encode_their_upper_case_letters() {
        assert_eq!(encode_tag(""), "$");
        assert_eq!(encode_tag("v1"), "v1$");
        assert_eq!(encode_tag("V1"), "V1$1");
        assert_eq!(encode_tag("AbCd"), "AbCd$5");
        assert_eq!(encode_tag("ABCDABCDABCDABCDAB"), "ABCDABCDABCDABCDAB$3ffff");
        assert_eq!(
            encode_tag("ABCDABCDABCDABCDABCDABCDABCDABCDAbC"),
            "ABCDABCDABCDABCDABCDABCDABCDABCDAbC$5ffffffff"
        );
    }

    #[test]
    fn references_map_to_the_official_cache_layout() {
        let r = parse("br:Example.azurecr.io:443/infra/storage:V2").unwrap();
        assert_eq!(
            cached_template_path(Path::new("/c"), &r),
            Path::new("/c/br/example.azurecr.io$443/infra$storage/V2$1/main.json")
        );
        let public = parse("br/public:avm/res/storage/storage-account:0.9.0").unwrap();
        assert_eq!(public.registry, "mcr.microsoft.com");
        assert_eq!(public.repository, "bicep/avm/res/storage/storage-account");
        let digest = parse("br:r.io/m@sha256:abc").unwrap();
        assert_eq!(
            cached_template_path(Path::new("/c"), &digest),
            Path::new("/c/br/r.io/m/sha256#abc/main.json")
        );
        assert_eq!(parse("br/contoso:m:1"), None);
        assert!(is_external("ts:sub/rg/spec:1") && !is_external("./m.bicep"));
    }
}
