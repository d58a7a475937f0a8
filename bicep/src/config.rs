//! The `bicepconfig.json` settings that change what the official compiler emits:
//! experimental features. Features that use experimental ARM engine features
//! switch the template to an experimental language version and are named in its
//! metadata.

use serde_json::Value;

use crate::ModuleResolver;

/// How far up from a file `bicepconfig.json` is looked for.
const MAX_CONFIG_DEPTH: usize = 16;

/// Features that need the experimental ARM engine: (config key, name in metadata),
/// in the official compiler's order.
const EXPERIMENTAL_ENGINE_FEATURES: &[(&str, &str)] = &[
    ("resourceInfoCodegen", "Resource info code generation"),
    ("assertions", "Asserts"),
    (
        "waitUntil",
        "Enable waitUntil feature on resource bicep types",
    ),
    ("localDeploy", "Enable local deploy"),
    (
        "moduleExtensionConfigs",
        "Enable defining extension configs for modules",
    ),
    ("userDefinedConstraints", "Enable @validate() decorator"),
    ("deployCommands", "Enable deploy commands"),
    (
        "runtimeValuesInTagsAndSku",
        "Enable runtime values in tags and SKU",
    ),
    (
        "azExtensionConfig",
        "Enable configuration for the built-in 'az' extension",
    ),
];

/// The experimental features a file's nearest `bicepconfig.json` enables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    enabled: Vec<String>,
    /// Names the `extensions` section declares (`extension <name>` refers to them).
    configured_extensions: Vec<String>,
}

impl Features {
    /// Reads the `bicepconfig.json` nearest to `file` (its folder, then upwards).
    pub fn for_file(file: &str, resolver: &dyn ModuleResolver) -> Features {
        // An absolute path says how far up the file system root is.
        let path = std::path::Path::new(file);
        let depth = if path.is_absolute() {
            path.components().count().saturating_sub(1)
        } else {
            MAX_CONFIG_DEPTH
        };
        let config = (0..depth.min(MAX_CONFIG_DEPTH)).find_map(|up| {
            let relative = format!("{}bicepconfig.json", "../".repeat(up));
            resolver.resolve(file, &relative).ok()
        });
        let Some((_, text)) = config else {
            return Features::default();
        };
        let Ok(json) = serde_json::from_str::<Value>(&text) else {
            return Features::default();
        };
        let enabled = json["experimentalFeaturesEnabled"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.as_bool() == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let configured_extensions = json["extensions"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        Features {
            enabled,
            configured_extensions,
        }
    }

    pub fn is_enabled(&self, key: &str) -> bool {
        self.enabled.iter().any(|k| k == key)
    }

    /// True when the config's `extensions` section names `name`.
    pub fn configures_extension(&self, name: &str) -> bool {
        self.configured_extensions.iter().any(|k| k == name)
    }

    /// Metadata names of the enabled features that need the experimental ARM engine.
    pub fn experimental_engine_features(&self) -> Vec<&'static str> {
        EXPERIMENTAL_ENGINE_FEATURES
            .iter()
            .filter(|(key, _)| self.is_enabled(key))
            .map(|(_, name)| *name)
            .collect()
    }

    /// The experimental language version these features need, if any.
    pub fn experimental_language_version(&self) -> Option<&'static str> {
        if self.experimental_engine_features().is_empty() {
            None
        } else if self.is_enabled("moduleExtensionConfigs") {
            Some("2.2-experimental")
        } else {
            Some("2.1-experimental")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapResolver;

    #[test]
    fn the_nearest_config_names_the_experimental_features() {
        let files = MapResolver::new(
            [(
                "bicepconfig.json".to_string(),
                r#"{"experimentalFeaturesEnabled": {"testFramework": true, "assertions": true, "waitUntil": false}}"#
                    .to_string(),
            )]
            .into(),
        );
        let f = Features::for_file("a/b/main.bicep", &files);
        assert!(f.is_enabled("testFramework") && !f.is_enabled("waitUntil"));
        assert_eq!(f.experimental_engine_features(), ["Asserts"]);
        assert_eq!(f.experimental_language_version(), Some("2.1-experimental"));
        let none = Features::for_file("main.bicep", &MapResolver::default());
        assert_eq!(none.experimental_language_version(), None);
    }
}
