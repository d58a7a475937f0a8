//! `extension` declarations: the template's `extensions` section (`imports` without
//! the `moduleExtensionConfigs` feature), the extension each Azure resource names, and
//! a module's `extensionConfigs`, as the official compiler emits them.

use serde_json::{Map, Value, json};

use super::{
    Cx, Emitter, Module, R, Trace, expr_value, object_items, property, quote, value_to_expr,
};
use crate::ast::*;
use crate::diag::{Diagnostic, Span};

/// The feature that turns `imports` into `extensions` and allows module configs.
const MODULE_CONFIGS_FEATURE: &str = "moduleExtensionConfigs";

/// The template-side name and version of a built-in extension.
fn builtin(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "az" => Some(("AzureResourceManager", "0.2.896")),
        "kubernetes" => Some(("Kubernetes", "1.0.0")),
        _ => None,
    }
}

/// Name and version of a registry extension `br:registry/path/name[/vN]:version`: the
/// last repository segment that is not a major-version segment, and the tag.
fn registry_name_version(reference: &str) -> Option<(String, String)> {
    let target = reference.strip_prefix("br:")?;
    let (repository, version) = target.rsplit_once(':')?;
    // The first segment is the registry.
    let (_, path) = repository.split_once('/')?;
    let mut segments = path.split('/').rev();
    let is_major = |s: &str| {
        s.strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    let name = segments.find(|s| !s.is_empty() && !is_major(s))?;
    if version.is_empty() || version.contains('/') {
        return None;
    }
    Some((name.to_string(), version.to_string()))
}

/// The declared extensions of a file, with their aliases, in declaration order.
fn declared(file: &File) -> impl Iterator<Item = (&Decl, &ExtensionSpec)> {
    file.decls.iter().filter_map(|d| match &d.kind {
        DeclKind::Extension(Some(spec)) => Some((d, spec)),
        _ => None,
    })
}

impl Emitter<'_> {
    fn module_configs_enabled(&self) -> bool {
        self.features.is_enabled(MODULE_CONFIGS_FEATURE)
    }

    /// The alias of the built-in `az` extension, when the file declares it: every
    /// Azure resource then names it.
    pub(super) fn az_extension_alias(&self) -> Option<&str> {
        declared(self.model.file).find_map(|(d, spec)| match &spec.source {
            ExtensionSource::Builtin(n) if n == "az" => d.name.as_ref().map(|(a, _)| a.as_str()),
            _ => None,
        })
    }

    /// Adds `"extension": alias` (`"import"` without module configs) to a resource.
    pub(super) fn resource_extension(&self, out: &mut Map<String, Value>) {
        if let Some(alias) = self.az_extension_alias() {
            let key = if self.module_configs_enabled() {
                "extension"
            } else {
                "import"
            };
            out.insert(key.into(), json!(alias));
        }
    }

    /// The `extensions` (or `imports`) section and its key; `None` without extensions.
    pub(super) fn extensions_section(
        &self,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<(&'static str, Value)> {
        let mut section = Map::new();
        for (d, spec) in declared(self.model.file) {
            let Some((alias, _)) = &d.name else { continue };
            match self.extension_entry(spec) {
                Ok(entry) => {
                    section.insert(alias.clone(), entry);
                }
                Err(e) => errors.push(self.in_origin(d, e)),
            }
        }
        if section.is_empty() {
            return None;
        }
        let key = if self.module_configs_enabled() {
            "extensions"
        } else {
            "imports"
        };
        Some((key, Value::Object(section)))
    }

    /// One extension: its name and version, and the defaults of its configuration.
    fn extension_entry(&self, spec: &ExtensionSpec) -> R<Value> {
        let (name, version) = match &spec.source {
            ExtensionSource::Builtin(n) => match builtin(n) {
                Some((name, version)) => (name.to_string(), version.to_string()),
                None => return Err(self.unknown_builtin(n, spec.source_span)),
            },
            ExtensionSource::Reference(r) => registry_name_version(r).ok_or_else(|| {
                Diagnostic::unsupported(
                    format!(
                        "The extension reference \"{r}\" (only \"br:<registry>/<repository>:<version>\")"
                    ),
                    spec.source_span,
                )
            })?,
        };
        let modern = self.module_configs_enabled();
        let mut entry = Map::new();
        entry.insert(if modern { "name" } else { "provider" }.into(), json!(name));
        entry.insert("version".into(), json!(version));
        if let Some(config) = &spec.config {
            if matches!(&spec.source, ExtensionSource::Builtin(n) if n == "az")
                && !self.features.is_enabled("azExtensionConfig")
            {
                return Err(Diagnostic::error(
                    "BCP205",
                    "Extension \"az\" does not support configuration.",
                    config.span,
                ));
            }
            // Configuration defaults are evaluated before any resource deploys: no
            // `dependsOn` can hold them, so their dependencies are not recorded.
            let tr = &mut Trace::default();
            let value = if modern {
                self.config_defaults(tr, config)?
            } else {
                self.val(tr, config, &Cx::default())?
            };
            entry.insert("config".into(), value);
        }
        Ok(Value::Object(entry))
    }

    /// The error for `extension <n>` naming no built-in extension.
    fn unknown_builtin(&self, n: &str, span: Span) -> Diagnostic {
        if n == "microsoftGraph" {
            Diagnostic::error(
                "BCP407",
                "Built-in extension \"microsoftGraph\" is retired. Use dynamic types instead. See https://aka.ms/graphbicep/dynamictypes",
                span,
            )
        } else if self.features.configures_extension(n) {
            Diagnostic::unsupported(
                format!("The extension \"{n}\" of the bicepconfig.json \"extensions\" section"),
                span,
            )
        } else {
            Diagnostic::error(
                "BCP204",
                format!("Extension \"{n}\" is not recognized."),
                span,
            )
        }
    }

    /// `{"<property>": {"defaultValue": ...}}` for each property of a `with` object.
    fn config_defaults(&self, tr: &mut Trace, config: &Expr) -> R<Value> {
        let mut out = Map::new();
        for item in object_items(config).unwrap_or_default() {
            let ObjectItem::Property { key, value, .. } = item else {
                return Err(Diagnostic::unsupported(
                    "An extension configuration entry that is not a property",
                    config.span,
                ));
            };
            let Some(k) = &key.name else {
                return Err(Diagnostic::unsupported(
                    "An interpolated extension configuration name",
                    key.span,
                ));
            };
            let default = self.val(tr, value, &Cx::default())?;
            out.insert(k.clone(), json!({ "defaultValue": default }));
        }
        Ok(Value::Object(out))
    }

    /// `alias.config` of a declared extension: `extensions('alias').config`.
    pub(super) fn extension_config_access(
        &self,
        base: &Expr,
        name: &str,
        cx: &Cx,
    ) -> R<Option<String>> {
        let ExprKind::Ident(alias) = &base.kind else {
            return Ok(None);
        };
        if cx.get(alias).is_some() || !self.model.extensions.contains(alias.as_str()) {
            return Ok(None);
        }
        if name != "config" {
            return Err(Diagnostic::error(
                "BCP052",
                format!("The type \"{alias}\" does not contain property \"{name}\"."),
                base.span,
            ));
        }
        Ok(Some(format!("extensions({}).config", quote(alias))))
    }

    /// The module's `extensionConfigs`, checked against the extensions its template
    /// declares; `None` when it has none.
    pub(super) fn module_extension_configs(
        &self,
        tr: &mut Trace,
        m: &Module,
        cx: &Cx,
    ) -> R<Option<Value>> {
        let Some(configs) = property(m.body, "extensionConfigs") else {
            return Ok(None);
        };
        if !self.module_configs_enabled() {
            return Err(Diagnostic::error(
                "BCP037",
                format!(
                    "The property \"extensionConfigs\" is not allowed on objects of type \"module\" unless the experimental feature \"{MODULE_CONFIGS_FEATURE}\" is enabled."
                ),
                configs.span,
            ));
        }
        let Some(items) = object_items(configs) else {
            return Err(invalid_config_expression("extensionConfigs", configs.span));
        };
        let declared = m.template["extensions"].as_object();
        let mut out = Map::new();
        for item in items {
            let (k, key_span, value) = named_property(item, configs.span)?;
            if !declared.is_some_and(|d| d.contains_key(k)) {
                return Err(Diagnostic::error(
                    "BCP037",
                    format!(
                        "The property \"{k}\" is not allowed on objects of type \"extensionConfigs\": the module declares no extension with that alias."
                    ),
                    key_span,
                ));
            }
            let entry = match &value.kind {
                ExprKind::Object(props) => {
                    self.extension_config_object(tr, props, value.span, cx)?
                }
                ExprKind::Member { .. } | ExprKind::Ternary { .. } => {
                    expr_value(self.ex(tr, value, cx)?)
                }
                _ => return Err(invalid_config_expression(k, value.span)),
            };
            out.insert(k.to_string(), entry);
        }
        Ok(Some(Value::Object(out)))
    }

    /// One extension's configuration in a module: each property a value or reference.
    fn extension_config_object(
        &self,
        tr: &mut Trace,
        props: &[ObjectItem],
        span: Span,
        cx: &Cx,
    ) -> R<Value> {
        let mut out = Map::new();
        for item in props {
            let (k, _, value) = named_property(item, span)?;
            let entry = match &value.kind {
                ExprKind::For { .. } => self.module_param(tr, value, cx)?,
                _ => self.config_entry(tr, value, cx)?,
            };
            out.insert(k.to_string(), entry);
        }
        Ok(Value::Object(out))
    }

    /// A configuration property: `{"value": ...}`, a Key Vault reference for
    /// `kv.getSecret(...)`, or an expression yielding one (an inherited
    /// `alias.config.x`, a condition choosing between entries).
    fn config_entry(&self, tr: &mut Trace, value: &Expr, cx: &Cx) -> R<Value> {
        let inner = strip_parens(value);
        if matches!(inner.kind, ExprKind::Ternary { .. }) || self.is_inherited(inner, cx) {
            return Ok(expr_value(self.config_expression(tr, inner, cx)?));
        }
        if let Some(reference) = self.key_vault_reference(tr, inner, cx, "keyVaultReference")? {
            return Ok(reference);
        }
        Ok(json!({ "value": self.val(tr, value, cx)? }))
    }

    /// A configuration property as an expression yielding its entry.
    fn config_expression(&self, tr: &mut Trace, value: &Expr, cx: &Cx) -> R<String> {
        let value = strip_parens(value);
        if let ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } = &value.kind
        {
            return Ok(format!(
                "if({}, {}, {})",
                self.ex(tr, cond, cx)?,
                self.config_expression(tr, then, cx)?,
                self.config_expression(tr, otherwise, cx)?
            ));
        }
        if self.is_inherited(value, cx) {
            return self.ex(tr, value, cx);
        }
        if let Some(reference) = self.key_vault_reference(tr, value, cx, "keyVaultReference")? {
            return Ok(value_to_expr(&reference));
        }
        Ok(format!(
            "createObject({}, {})",
            quote("value"),
            self.ex(tr, value, cx)?
        ))
    }

    /// True for `alias.config.x`: a property of a declared extension's configuration,
    /// already an entry.
    fn is_inherited(&self, e: &Expr, cx: &Cx) -> bool {
        let ExprKind::Member {
            base, safe: false, ..
        } = &e.kind
        else {
            return false;
        };
        matches!(&base.kind, ExprKind::Member { base: alias, name, safe: false }
            if name == "config"
                && matches!(&alias.kind, ExprKind::Ident(a)
                    if cx.get(a).is_none() && self.model.extensions.contains(a.as_str())))
    }
}

fn strip_parens(e: &Expr) -> &Expr {
    match &e.kind {
        ExprKind::Paren(x) => strip_parens(x),
        _ => e,
    }
}

/// A property's literal name, its span, and its value.
fn named_property(item: &ObjectItem, span: Span) -> R<(&str, Span, &Expr)> {
    match item {
        ObjectItem::Property { key, value, .. } => match &key.name {
            Some(k) => Ok((k.as_str(), key.span, value)),
            None => Err(Diagnostic::unsupported(
                "An interpolated key in \"extensionConfigs\"",
                key.span,
            )),
        },
        _ => Err(invalid_config_expression("extensionConfigs", span)),
    }
}

fn invalid_config_expression(property: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP431",
        format!(
            "The value of the \"{property}\" property must be an object literal or a valid extension config inheritance expression."
        ),
        span,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Diagnostics, MapResolver, compile_source};

    const WITH_MODULE_CONFIGS: &str =
        r#"{"experimentalFeaturesEnabled": {"moduleExtensionConfigs": true}}"#;

    fn compile(main: &str, entries: &[(&str, &str)]) -> Result<Value, Diagnostics> {
        let files = MapResolver::new(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        compile_source("main.bicep", main, &files).map(|t| t.json)
    }

    /// The code and line of every error of a rejected file.
    fn errors(main: &str, entries: &[(&str, &str)]) -> Vec<(String, usize)> {
        let err = compile(main, entries).expect_err("the file must be rejected");
        err.0
            .iter()
            .map(|d| (d.diagnostic.code.clone(), d.line))
            .collect()
    }

    #[test]
    fn declarations_emit_the_extensions_section_and_resources_name_az() {
        let main = "param ns string\nextension az\nextension kubernetes with {\n  namespace: ns\n} as k8s\nextension 'br:example.azurecr.io/ext/widgets/v2:0.3.1' as w\nresource sa 'az:Microsoft.Storage/storageAccounts@2023-01-01' = {\n  name: 'sa'\n  location: az.resourceGroup().location\n}\n";
        let t = compile(main, &[("bicepconfig.json", WITH_MODULE_CONFIGS)]).unwrap();
        assert_eq!(t["languageVersion"], "2.2-experimental");
        assert_eq!(
            t["metadata"]["_EXPERIMENTAL_FEATURES_ENABLED"],
            json!(["Enable defining extension configs for modules"])
        );
        assert_eq!(
            t["extensions"],
            json!({
                "az": {"name": "AzureResourceManager", "version": "0.2.896"},
                "k8s": {"name": "Kubernetes", "version": "1.0.0",
                        "config": {"namespace": {"defaultValue": "[parameters('ns')]"}}},
                "w": {"name": "widgets", "version": "0.3.1"}
            })
        );
        let sa = &t["resources"]["sa"];
        assert_eq!(sa["extension"], "az");
        assert_eq!(sa["type"], "Microsoft.Storage/storageAccounts");
        assert_eq!(sa["location"], "[resourceGroup().location]");
    }

    #[test]
    fn without_module_configs_extensions_are_imports() {
        let main = "extension az\nresource sa 'Microsoft.Storage/storageAccounts@2023-01-01' = {\n  name: 'sa'\n}\n";
        let t = compile(main, &[]).unwrap();
        assert_eq!(t["languageVersion"], "2.0");
        assert_eq!(
            t["imports"],
            json!({"az": {"provider": "AzureResourceManager", "version": "0.2.896"}})
        );
        assert_eq!(t["resources"]["sa"]["import"], "az");
        assert!(t.get("extensions").is_none());
    }

    #[test]
    fn module_extension_configs_wrap_values_and_keep_inherited_entries() {
        let child = "extension kubernetes as k8s\n";
        let main = "param c bool\nextension kubernetes as k8s\nresource kv 'Microsoft.KeyVault/vaults@2019-09-01' existing = {\n  name: 'kv'\n}\nmodule m 'child.bicep' = {\n  name: 'm'\n  extensionConfigs: {\n    k8s: {\n      kubeConfig: kv.getSecret('cfg')\n      namespace: c ? 'ns' : k8s.config.namespace\n      context: (k8s.config.context)\n    }\n  }\n}\nmodule whole 'child.bicep' = {\n  name: 'whole'\n  extensionConfigs: {\n    k8s: c ? k8s.config : k8s.config\n  }\n}\n";
        let t = compile(
            main,
            &[
                ("bicepconfig.json", WITH_MODULE_CONFIGS),
                ("child.bicep", child),
            ],
        )
        .unwrap();
        let props = &t["resources"]["m"]["properties"];
        assert_eq!(
            props["extensionConfigs"]["k8s"],
            json!({
                "kubeConfig": {"keyVaultReference": {
                    "keyVault": {"id": "[resourceId('Microsoft.KeyVault/vaults', 'kv')]"},
                    "secretName": "cfg"
                }},
                "namespace": "[if(parameters('c'), createObject('value', 'ns'), extensions('k8s').config.namespace)]",
                "context": "[extensions('k8s').config.context]"
            })
        );
        assert_eq!(
            props["template"]["extensions"],
            json!({"k8s": {"name": "Kubernetes", "version": "1.0.0"}})
        );
        assert_eq!(
            t["resources"]["whole"]["properties"]["extensionConfigs"]["k8s"],
            "[if(parameters('c'), extensions('k8s').config, extensions('k8s').config)]"
        );
    }

    #[test]
    fn invalid_extensions_are_reported_with_their_lines() {
        let config = [("bicepconfig.json", WITH_MODULE_CONFIGS)];
        assert_eq!(errors("extension nope\n", &config), [("BCP204".into(), 1)]);
        assert_eq!(
            errors("extension microsoftGraph\n", &config),
            [("BCP407".into(), 1)]
        );
        let aliased = [(
            "bicepconfig.json",
            r#"{"extensions": {"graph": "br:example.azurecr.io/ext/graph:1.0.0"}}"#,
        )];
        let err = compile("extension graph\n", &aliased).unwrap_err();
        assert!(err.is_unsupported(), "{err}");
        assert_eq!(
            errors(
                "\nextension 'br:example.azurecr.io/ext/widgets:1.0.0'\n",
                &config
            ),
            [("BCP423".into(), 2)]
        );
        assert_eq!(
            errors("extension az with {\n  a: 'b'\n}\n", &config),
            [("BCP205".into(), 1)]
        );
        let child = [
            ("bicepconfig.json", WITH_MODULE_CONFIGS),
            ("child.bicep", "extension kubernetes as k8s\n"),
        ];
        let main = "module m 'child.bicep' = {\n  name: 'm'\n  extensionConfigs: {\n    other: {}\n  }\n}\n";
        assert_eq!(errors(main, &child), [("BCP037".into(), 4)]);
        let main = "extension kubernetes as k8s\nmodule m 'child.bicep' = {\n  name: 'm'\n  extensionConfigs: {\n    k8s: 'text'\n  }\n}\n";
        assert_eq!(errors(main, &child), [("BCP431".into(), 5)]);
        let main = "extension kubernetes as k8s\nvar v = k8s.config\n";
        assert_eq!(errors(main, &child), [("BCP418".into(), 2)]);
        let main = "extension kubernetes as k8s\nmodule m 'child.bicep' = {\n  name: 'm'\n  extensionConfigs: {\n    k8s: {}\n  }\n}\n";
        assert_eq!(
            errors(main, &[("child.bicep", "extension kubernetes as k8s\n")]).len(),
            1
        );
    }

    #[test]
    fn registry_references_name_the_extension_and_its_version() {
        assert_eq!(
            registry_name_version("br:mcr.microsoft.com/bicep/extensions/hasconfig/v1:1.2.3"),
            Some(("hasconfig".into(), "1.2.3".into()))
        );
        assert_eq!(
            registry_name_version("br:example.azurecr.io/ext/widgets:0.1.0-preview"),
            Some(("widgets".into(), "0.1.0-preview".into()))
        );
        assert_eq!(
            registry_name_version("br:example.azurecr.io/v1:1.0.0"),
            None
        );
        assert_eq!(registry_name_version("br:example.azurecr.io/ext"), None);
        assert_eq!(registry_name_version("ts:sub/rg/spec:1"), None);
    }
}
