//! Template extensions (the `extensions` section, or the older `imports`). Resources of
//! the Azure Resource Manager extension are ARM's own and deploy as any resource; other
//! extensions (Kubernetes, registry extensions) run outside ARM's resource providers,
//! so this simulator refuses a template declaring one rather than pretending to deploy
//! it. A nested deployment's `extensionConfigs` configure such extensions, so they are
//! refused the same way.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::template::model::TemplateError;
use crate::template::run::{Result, section_error};

/// The template-side name of the extension that is ARM itself.
const AZURE_RESOURCE_MANAGER: &str = "AzureResourceManager";

/// The aliases of the template's extensions, each checked to be ARM's own.
pub(super) fn declared(tpl: &Map<String, Value>) -> Result<HashSet<String>> {
    let mut aliases = HashSet::new();
    for (section, name_key) in [("extensions", "name"), ("imports", "provider")] {
        let Some(list) = tpl.get(section) else {
            continue;
        };
        let list = list
            .as_object()
            .ok_or_else(|| section_error(section, "an object"))?;
        for (alias, extension) in list {
            let name = extension.get(name_key).and_then(Value::as_str);
            let version = extension.get("version").and_then(Value::as_str);
            let (Some(name), Some(version)) = (name, version) else {
                return Err(TemplateError::invalid_template(format!(
                    "The extension '{alias}' of the template '{section}' section must have a '{name_key}' and a 'version'."
                )));
            };
            if name != AZURE_RESOURCE_MANAGER {
                return Err(TemplateError::invalid_template(format!(
                    "The template declares the extension '{alias}' ({name} {version}), which this simulator does not implement: only resources of the '{AZURE_RESOURCE_MANAGER}' extension are deployed."
                )));
            }
            aliases.insert(alias.clone());
        }
    }
    Ok(aliases)
}

/// A resource's `extension` (or `import`) must name a declared extension.
pub(super) fn check_resource(
    resource: &Map<String, Value>,
    declared: &HashSet<String>,
    what: &str,
) -> Result<()> {
    for key in ["extension", "import"] {
        let Some(alias) = resource.get(key) else {
            continue;
        };
        let Some(alias) = alias.as_str() else {
            return Err(TemplateError::invalid_template(format!(
                "The '{key}' of {what} must be a string."
            )));
        };
        if !declared.contains(alias) {
            return Err(TemplateError::invalid_template(format!(
                "The {what} names the extension '{alias}', which the template does not declare."
            )));
        }
    }
    Ok(())
}

/// A nested deployment's `extensionConfigs`: none may configure an extension, as
/// only ARM's own (which takes no configuration) is deployed.
pub(super) fn check_configs(properties: &Map<String, Value>, name: &str) -> Result<()> {
    match properties.get("extensionConfigs") {
        None => Ok(()),
        Some(Value::Object(configs)) => match configs.keys().next() {
            None => Ok(()),
            Some(alias) => Err(TemplateError::invalid_template(format!(
                "The nested deployment '{name}' configures the extension '{alias}', which this simulator does not implement."
            ))),
        },
        Some(_) => Err(TemplateError::invalid_template(format!(
            "The 'extensionConfigs' of the nested deployment '{name}' must be an object."
        ))),
    }
}
