//! Native Bicep → ARM JSON compiler.
//!
//! [`compile_file`] compiles a file on disk (modules resolved relative to it);
//! [`compile_source`] compiles in-memory content with modules from any
//! [`ModuleResolver`], e.g. a [`MapResolver`] over ConfigMap keys. Anything this
//! compiler does not implement is reported as an error whose
//! [`Diagnostic::is_unsupported`] is true; it never emits JSON it is unsure of.

mod arm_imports;
pub mod ast;
mod check;
mod config;
pub mod diag;
mod emit;
mod functions;
mod imports;
mod language_version;
pub mod lexer;
mod model;
mod module_name;
mod params;
pub mod parser;
mod recovery;
pub mod registry;
mod resolver;
mod resource_derived;
mod type_schema;
pub mod types;

use std::fmt;
use std::path::Path;

pub use diag::{Diagnostic, Severity, Span, UNSUPPORTED};
pub use resolver::{FsResolver, MapResolver, ModuleResolver};

/// A successfully compiled template.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    pub json: serde_json::Value,
    /// Warnings (e.g. unused parameters and variables); they do not affect the JSON.
    pub diagnostics: Vec<LocatedDiagnostic>,
}

impl CompiledTemplate {
    /// The template as pretty-printed JSON, as `bicep build` writes it.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(&self.json).unwrap_or_default()
    }
}

/// One located diagnostic: the file it is in and its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedDiagnostic {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub diagnostic: Diagnostic,
}

impl fmt::Display for LocatedDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({},{}) : {} {}: {}",
            self.path,
            self.line,
            self.col,
            self.diagnostic.severity,
            self.diagnostic.code,
            self.diagnostic.message
        )
    }
}

/// The errors that stopped a compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<LocatedDiagnostic>);

impl Diagnostics {
    /// True when every error is an unsupported construct (a fallback compiler may succeed).
    pub fn is_unsupported(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|d| d.diagnostic.is_unsupported())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Compiles the Bicep file at `path`.
pub fn compile_file(path: impl AsRef<Path>) -> Result<CompiledTemplate, Diagnostics> {
    compile_file_with(path, &FsResolver::default())
}

/// Compiles the Bicep file at `path` with modules and loaded files from `resolver`
/// (e.g. an [`FsResolver`] with a module cache).
pub fn compile_file_with(
    path: impl AsRef<Path>,
    resolver: &dyn ModuleResolver,
) -> Result<CompiledTemplate, Diagnostics> {
    let path = path.as_ref();
    let display = path.to_string_lossy().into_owned();
    let source = read_input(path, &display)?;
    compile_source(&display, &source, resolver)
}

fn read_input(path: &Path, display: &str) -> Result<String, Diagnostics> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![LocatedDiagnostic {
            path: display.to_string(),
            line: 1,
            col: 1,
            diagnostic: Diagnostic::error(
                "BCP091",
                format!("An error occurred reading file. {e}"),
                Span::default(),
            ),
        }])
    })
}

/// Compiles in-memory Bicep `source` named `name`; modules come from `resolver`.
pub fn compile_source(
    name: &str,
    source: &str,
    resolver: &dyn ModuleResolver,
) -> Result<CompiledTemplate, Diagnostics> {
    run(name, source, resolver, emit::compile_module)
}

/// Compiles the `.bicepparam` file at `path` into an ARM parameters file.
pub fn compile_params_file(path: impl AsRef<Path>) -> Result<CompiledTemplate, Diagnostics> {
    compile_params_file_with(path, &FsResolver::default())
}

/// Like [`compile_params_file`], with files from `resolver`.
pub fn compile_params_file_with(
    path: impl AsRef<Path>,
    resolver: &dyn ModuleResolver,
) -> Result<CompiledTemplate, Diagnostics> {
    let path = path.as_ref();
    let display = path.to_string_lossy().into_owned();
    let source = read_input(path, &display)?;
    compile_params_source(&display, &source, resolver)
}

/// Compiles in-memory `.bicepparam` content; its `using` template comes from `resolver`.
pub fn compile_params_source(
    name: &str,
    source: &str,
    resolver: &dyn ModuleResolver,
) -> Result<CompiledTemplate, Diagnostics> {
    run(name, source, resolver, params::compile_params)
}

type Compiler = fn(
    &str,
    &str,
    &dyn ModuleResolver,
    &mut emit::Session,
) -> Result<serde_json::Value, Vec<Diagnostic>>;

fn run(
    name: &str,
    source: &str,
    resolver: &dyn ModuleResolver,
    compile: Compiler,
) -> Result<CompiledTemplate, Diagnostics> {
    let mut session = emit::Session::default();
    session.sources.insert(name.to_string(), source.to_string());
    let result = compile(name, source, resolver, &mut session);
    let sources = session.sources;
    let locate = |d: Diagnostic| {
        let file = d.file.clone().unwrap_or_else(|| name.to_string());
        let text = sources.get(&file).map(String::as_str).unwrap_or("");
        let (line, col) = d.line_col(text);
        LocatedDiagnostic {
            path: file,
            line,
            col,
            diagnostic: d,
        }
    };
    match result {
        Ok(json) => Ok(CompiledTemplate {
            json,
            diagnostics: session.warnings.into_iter().map(locate).collect(),
        }),
        Err(errs) => Err(Diagnostics(errs.into_iter().map(locate).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> MapResolver {
        MapResolver::new(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn compiles_modules_and_loaded_files_from_memory() {
        let resolver = files(&[
            ("mods/store.bicep", "param n string\noutput id string = n\n"),
            ("script.sh", "echo hi\n"),
        ]);
        let main = "var script = loadTextContent('script.sh')\nmodule m './mods/store.bicep' = {\n  name: 'deploy'\n  params: {\n    n: script\n  }\n}\noutput o string = m.outputs.id\n";
        let t = compile_source("main.bicep", main, &resolver).unwrap();
        assert_eq!(t.json["variables"]["script"], "echo hi\n");
        let m = &t.json["resources"][0];
        assert_eq!(m["type"], "Microsoft.Resources/deployments");
        assert_eq!(
            m["properties"]["template"]["outputs"]["id"]["value"],
            "[parameters('n')]"
        );
        assert_eq!(
            t.json["outputs"]["o"]["value"],
            "[reference(resourceId('Microsoft.Resources/deployments', 'deploy'), '2025-04-01').outputs.id.value]"
        );
    }

    #[test]
    fn user_defined_types_and_typed_variables_emit_language_version_2() {
        let main = "type Pair = {\n  a: string\n  b: int\n}\n@export()\nvar p Pair = {\n  a: 'x'\n  b: 1\n}\n";
        let t = compile_source("main.bicep", main, &files(&[])).unwrap();
        assert_eq!(t.json["languageVersion"], "2.0");
        assert_eq!(
            t.json["definitions"]["Pair"]["properties"]["b"]["type"],
            "int"
        );
        assert_eq!(
            t.json["metadata"]["__bicep_exported_variables!"][0]["type"]["$ref"],
            "#/definitions/Pair"
        );
        assert_eq!(t.json["resources"], serde_json::json!({}));
        // Resources of a 2.0 template are named by their symbols.
        let with_resource = format!(
            "{main}resource r 'A.B/c@2020-01-01' = {{\n  name: 'x'\n}}\nresource e 'A.B/c@2020-01-01' existing = {{\n  name: 'y'\n}}\noutput o object = {{\n  a: r.properties\n  b: e.properties\n}}\n"
        );
        let t = compile_source("main.bicep", &with_resource, &files(&[])).unwrap();
        assert_eq!(t.json["resources"]["r"]["type"], "A.B/c");
        assert_eq!(t.json["resources"]["e"]["existing"], true);
        assert_eq!(t.json["outputs"]["o"]["value"]["a"], "[reference('r')]");
    }

    #[test]
    fn imported_symbols_are_copied_with_what_they_need() {
        let resolver = files(&[
            (
                "modules/mod.bicep",
                "@export()\nvar foo = bar\nvar bar = baz\nvar baz = 'quux'\n@export()\ntype fizz = buzz[]\ntype buzz = {\n  property: pop?\n}\n@minLength(3)\n@export()\ntype pop = string\n@export()\n@description('Say hi')\nfunc greet(name string) string => 'Hi, ${name}!'\n",
            ),
            (
                "modules/mod2.bicep",
                "@export()\nvar foo = 'bar'\n@export()\ntype fizz = 'buzz'\n",
            ),
        ]);
        let main = "import {foo, fizz, pop, greet} from 'modules/mod.bicep'\nimport * as mod2 from 'modules/mod2.bicep'\nvar aliasedBar = mod2.foo\ntype fizzes = fizz[]\nparam p mod2.fizz\noutput o string = '${foo}${aliasedBar}${greet('x')}${p}'\n";
        let t = compile_source("main.bicep", main, &resolver).unwrap();
        let v = &t.json["variables"];
        assert_eq!(v["foo"], "[variables('_1.bar')]");
        assert_eq!(v["_1.bar"], "[variables('_1.baz')]");
        assert_eq!(v["aliasedBar"], "[variables('_2.foo')]");
        let d = &t.json["definitions"];
        assert_eq!(d["fizz"]["items"]["$ref"], "#/definitions/_1.buzz");
        assert_eq!(
            d["_1.buzz"]["properties"]["property"]["$ref"],
            "#/definitions/pop"
        );
        assert_eq!(
            d["pop"]["metadata"]["__bicep_imported_from!"]["sourceTemplate"],
            "modules/mod.bicep"
        );
        assert_eq!(t.json["parameters"]["p"]["$ref"], "#/definitions/_2.fizz");
        let greet = &t.json["functions"][0]["members"]["greet"];
        assert_eq!(greet["metadata"]["description"], "Say hi");
    }

    #[test]
    fn errors_of_imported_files_name_those_files() {
        let resolver = files(&[(
            "lib/types.bicep",
            "@export()\nvar x = nope\n@export()\nvar y = 1\n",
        )]);
        let err = compile_source(
            "main.bicep",
            "import {x, y} from 'lib/types.bicep'\nvar z = y\n",
            &resolver,
        )
        .unwrap_err();
        assert_eq!(
            (
                err.0[0].path.as_str(),
                err.0[0].line,
                err.0[0].diagnostic.code.as_str()
            ),
            ("lib/types.bicep", 2, "BCP057")
        );
    }

    #[test]
    fn imports_of_files_that_import_are_reported() {
        let resolver = files(&[
            (
                "a.bicep",
                "import {x} from 'b.bicep'\n@export()\nvar y = x\n",
            ),
            ("b.bicep", "@export()\nvar x = 1\n"),
        ]);
        let err = compile_source(
            "main.bicep",
            "import {y} from 'a.bicep'\nvar z = y\n",
            &resolver,
        )
        .unwrap_err();
        assert!(err.is_unsupported());
        assert_eq!(err.0[0].line, 1);
    }

    #[test]
    fn modules_without_a_name_get_the_official_generated_name() {
        let resolver = files(&[("m.bicep", "param n string = 'x'\n")]);
        let t = compile_source(
            "main.bicep",
            "module store 'm.bicep' = {}\nmodule each 'm.bicep' = [for i in range(0, 2): {}]\n",
            &resolver,
        )
        .unwrap();
        assert_eq!(t.json["languageVersion"], "2.0");
        assert_eq!(
            t.json["resources"]["store"]["name"],
            "[format('store-{0}', uniqueString('store', deployment().name))]"
        );
        assert_eq!(
            t.json["resources"]["each"]["name"],
            "[format('each-{0}-{1}', copyIndex(), uniqueString('each', deployment().name))]"
        );
    }

    #[test]
    fn secure_outputs_emit_language_version_2_with_secure_types() {
        let t = compile_source(
            "main.bicep",
            "@secure()\noutput s string = 'x'\n@secure()\noutput o object = {}\n",
            &files(&[]),
        )
        .unwrap();
        assert_eq!(t.json["languageVersion"], "2.0");
        assert_eq!(t.json["outputs"]["s"]["type"], "securestring");
        assert_eq!(t.json["outputs"]["o"]["type"], "secureObject");
    }

    #[test]
    fn loop_variables_may_index_resources_with_keys_known_to_be_deploy_time() {
        let res = "param c bool\nresource s 'Microsoft.Storage/storageAccounts@2022-09-01' = {\n  name: 's'\n}\nvar keys = ['id', 'properties']\n";
        let ok = format!(
            "{res}var v = [for i in range(0, 2): {{\n  a: s[c ? 'id' : 'name']\n  b: s[first(keys)]\n}}]\n"
        );
        assert!(compile_source("main.bicep", &ok, &files(&[])).is_ok());
        let bad =
            format!("{res}var v = [for i in range(0, 2): {{\n  a: s[c ? 'id' : keys[1]]\n}}]\n");
        let err = compile_source("main.bicep", &bad, &files(&[])).unwrap_err();
        assert_eq!(
            (err.0[0].diagnostic.code.as_str(), err.0[0].line),
            ("BCP182", 7)
        );
    }

    #[test]
    fn unsupported_constructs_are_flagged_for_fallback() {
        let err =
            compile_source("main.bicep", "import * as x from 'x.json'\n", &files(&[])).unwrap_err();
        assert!(err.is_unsupported());
        assert_eq!(err.0[0].line, 1);
        let err = compile_source(
            "main.bicep",
            "var v = {\n  resource r 'A.B/c@1' = {\n    name: 'x'\n  }\n}\n",
            &files(&[]),
        )
        .unwrap_err();
        assert_eq!(
            (err.0[0].diagnostic.code.as_str(), err.0[0].line),
            ("BCP156", 2)
        );
        let err = compile_source("main.bicep", "param p int = 'a'\n", &files(&[])).unwrap_err();
        assert_eq!(err.0[0].diagnostic.code, "BCP033");
        let err = compile_source("main.bicep", "var a = nope\n", &files(&[])).unwrap_err();
        assert!(!err.is_unsupported());
        assert_eq!(
            err.to_string(),
            "main.bicep(1,9) : Error BCP057: The name \"nope\" does not exist in the current context."
        );
    }

    #[test]
    fn module_parameters_outputs_and_scope_are_checked() {
        let resolver = files(&[
            (
                "m.bicep",
                "param req string\nparam opt int = 1\noutput o string = req\n",
            ),
            ("sub.bicep", "targetScope = 'subscription'\n"),
        ]);
        let code = |main: &str| {
            compile_source("main.bicep", main, &resolver).unwrap_err().0[0]
                .diagnostic
                .code
                .clone()
        };
        assert_eq!(code("module m 'm.bicep' = {\n  name: 'a'\n}\n"), "BCP035");
        assert_eq!(
            code(
                "module m 'm.bicep' = {\n  name: 'a'\n  params: {\n    req: 'x'\n    typo: 1\n  }\n}\n"
            ),
            "BCP037"
        );
        assert_eq!(
            code(
                "module m 'm.bicep' = {\n  name: 'a'\n  params: {\n    req: 'x'\n  }\n}\noutput x string = m.outputs.nope\n"
            ),
            "BCP053"
        );
        assert_eq!(code("module s 'sub.bicep' = {\n  name: 'a'\n}\n"), "BCP134");
        assert!(
            compile_source(
                "main.bicep",
                "module s 'sub.bicep' = {\n  name: 'a'\n  scope: subscription()\n}\n",
                &resolver
            )
            .is_ok()
        );
    }

    #[test]
    fn bicepparam_files_become_parameter_files() {
        let resolver = files(&[(
            "main.bicep",
            "param name string\nparam tags object = {}\nparam count int\n",
        )]);
        let ok = compile_params_source(
            "main.bicepparam",
            "using './main.bicep'\nparam name = 'x'\nparam count = -2\nparam tags = {\n  a: [true, null]\n}\n",
            &resolver,
        )
        .unwrap();
        assert_eq!(ok.json["parameters"]["count"]["value"], -2);
        assert_eq!(ok.json["parameters"]["tags"]["value"]["a"][0], true);
        let missing = compile_params_source(
            "main.bicepparam",
            "using './main.bicep'\nparam name = 'x'\n",
            &resolver,
        )
        .unwrap_err();
        assert_eq!(missing.0[0].diagnostic.code, "BCP258");
        let unknown = compile_params_source(
            "main.bicepparam",
            "using './main.bicep'\nparam name = 'x'\nparam count = 1\nparam nope = 1\n",
            &resolver,
        )
        .unwrap_err();
        assert_eq!(
            (unknown.0[0].diagnostic.code.as_str(), unknown.0[0].line),
            ("BCP259", 4)
        );
        let expr = compile_params_source(
            "main.bicepparam",
            "using './main.bicep'\nparam name = toLower('X')\nparam count = 1\n",
            &resolver,
        )
        .unwrap_err();
        assert!(expr.is_unsupported());
        // Every error of a parameters file in one run, in source order.
        let several = compile_params_source(
            "main.bicepparam",
            "using './main.bicep'\nparam nope = 1\nparam name = 'x'\nparam name = 'y'\n",
            &resolver,
        )
        .unwrap_err();
        let found: Vec<(usize, &str)> = several
            .0
            .iter()
            .map(|d| (d.line, d.diagnostic.code.as_str()))
            .collect();
        assert_eq!(found, [(1, "BCP258"), (2, "BCP259"), (4, "BCP028")]);
    }

    #[test]
    fn every_error_of_a_file_is_reported_in_one_run() {
        let main =
            "param a int = 'x'\nvar b = \nparam c bool = 1\nvar d = nope\noutput o string = b\n";
        let err = compile_source("main.bicep", main, &files(&[])).unwrap_err();
        let found: Vec<(usize, &str)> = err
            .0
            .iter()
            .map(|d| (d.line, d.diagnostic.code.as_str()))
            .collect();
        // `b` did not parse, so `output o` refers to a declared name: no error there.
        assert_eq!(found, [(2, "BCP009"), (4, "BCP057")]);
        let semantic = compile_source(
            "main.bicep",
            "param a int = 'x'\nparam c bool = 1\nvar d = 1\n",
            &files(&[]),
        )
        .unwrap_err();
        let lines: Vec<usize> = semantic.0.iter().map(|d| d.line).collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn a_failed_import_does_not_hide_the_other_errors() {
        let resolver = files(&[("lib.bicep", "var x = \nvar y = \n")]);
        let lines_and_codes = |main: &str| -> Vec<(String, usize, String)> {
            compile_source("main.bicep", main, &resolver)
                .unwrap_err()
                .0
                .into_iter()
                .map(|d| (d.path, d.line, d.diagnostic.code))
                .collect()
        };
        let missing = lines_and_codes("import {x} from 'gone.bicep'\nvar b = b\n");
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert_eq!(
            missing[1],
            ("main.bicep".to_string(), 2, "BCP079".to_string())
        );
        // Every syntax error of an imported file, in that file.
        let broken = lines_and_codes("import {x} from 'lib.bicep'\n");
        let in_lib: Vec<usize> = broken
            .iter()
            .filter(|(path, ..)| path == "lib.bicep")
            .map(|(_, line, _)| *line)
            .collect();
        assert_eq!(in_lib, [1, 2], "{broken:?}");
    }

    /// Serves one restored registry module, as a module cache would.
    struct OneCachedModule;

    impl ModuleResolver for OneCachedModule {
        fn resolve(&self, _: &str, relative: &str) -> Result<(String, String), String> {
            Err(format!("no file {relative}"))
        }

        fn resolve_registry(&self, r: &registry::RegistryRef) -> Option<(String, String)> {
            let template = r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "parameters": {"n": {"type": "string"}}, "resources": []}"#;
            (r.repository == "infra/store").then(|| ("cache".to_string(), template.to_string()))
        }
    }

    #[test]
    fn registry_modules_come_from_the_module_cache_or_are_named_as_missing() {
        let module = |path: &str| {
            format!("module m '{path}' = {{\n  name: 'm'\n  params: {{\n    n: 'x'\n  }}\n}}\n")
        };
        let t = compile_source(
            "main.bicep",
            &module("br:contoso.azurecr.io/infra/store:v1"),
            &OneCachedModule,
        )
        .unwrap();
        assert_eq!(
            t.json["resources"][0]["properties"]["template"]["parameters"]["n"]["type"],
            "string"
        );
        let missing = compile_source(
            "main.bicep",
            &module("br:contoso.azurecr.io/infra/other:v1"),
            &OneCachedModule,
        )
        .unwrap_err();
        assert!(missing.is_unsupported());
        assert!(
            missing.0[0]
                .diagnostic
                .message
                .contains("\"br:contoso.azurecr.io/infra/other:v1\" is not in the module cache")
        );
    }

    #[test]
    fn missing_module_is_an_error_in_the_referring_file() {
        let err = compile_source(
            "main.bicep",
            "module m 'gone.bicep' = {\n  name: 'x'\n}\n",
            &files(&[]),
        )
        .unwrap_err();
        assert_eq!(err.0[0].diagnostic.code, "BCP091");
        assert_eq!((err.0[0].line, err.0[0].col), (1, 10));
    }
}
