//! The compilation of one file: parse (every syntax error), check, copy imports in,
//! emit; the errors of every stage collected, in source order, each once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::Emitter;
use crate::ModuleResolver;
use crate::arm_imports::{self, ArmVariables};
use crate::check;
use crate::config::Features;
use crate::diag::Diagnostic;
use crate::imports;
use crate::model::Model;
use crate::parser::{Parsed, parse};

/// State shared by the files of one compilation.
#[derive(Default)]
pub(crate) struct Session {
    /// Text of every file read, for locating diagnostics.
    pub sources: HashMap<String, String>,
    /// Files being compiled, outermost first, to detect module cycles.
    pub(super) stack: Vec<String>,
    /// Templates of modules already compiled, by resolved name.
    pub(super) compiled: HashMap<String, Value>,
    /// Warnings of every file compiled.
    pub warnings: Vec<Diagnostic>,
    /// `bicepconfig.json` features by folder: modules of one folder share them.
    features: HashMap<String, Features>,
}

impl Session {
    /// The `bicepconfig.json` features of `file`, read once per folder.
    pub(super) fn features_for(&mut self, file: &str, resolver: &dyn ModuleResolver) -> Features {
        self.features
            .entry(folder_of(file).to_string())
            .or_insert_with(|| Features::for_file(file, resolver))
            .clone()
    }
}

/// Compiles one module (the main file is the outermost module).
pub(crate) fn compile_module(
    name: &str,
    source: &str,
    resolver: &dyn ModuleResolver,
    session: &mut Session,
) -> Result<Value, Vec<Diagnostic>> {
    let Parsed { file, mut errors } = parse(source);
    // Imports are read from a file that parses. When they fail, the file's own
    // declarations are still checked: what the imports bring is unknown to the
    // checks, not undefined.
    let (file, imported_from) = if errors.is_empty() {
        match imports::merge(file.clone(), name, resolver, &mut session.sources) {
            Ok(merged) => merged,
            Err(e) => {
                errors.extend(e);
                (file, HashMap::new())
            }
        }
    } else {
        (file, HashMap::new())
    };
    let arm_variables = if errors.is_empty() {
        arm_imports::import(&file, name, resolver).unwrap_or_else(|e| {
            errors.extend(e);
            ArmVariables::default()
        })
    } else {
        ArmVariables::default()
    };
    let model = Model::bind(&file);
    errors.extend(check::check(&model));
    if !errors.is_empty() {
        return Err(in_source_order(errors, name));
    }
    session
        .warnings
        .extend(check::warnings(&model).into_iter().map(|d| d.in_file(name)));
    session.stack.push(name.to_string());
    let mut emitter = Emitter::new(name, &model, resolver, session);
    emitter.imported_from = imported_from;
    emitter.arm_variables = arm_variables;
    let (json, emit_errors) = emitter.emit();
    session.stack.pop();
    let mut errors = emitter.bind_errors;
    errors.extend(emit_errors);
    if errors.is_empty() {
        return Ok(json);
    }
    let broken = emitter.broken;
    // Names an unimplemented import may bring are unknown, not undefined.
    let (cascades, causes): (Vec<_>, Vec<_>) = errors
        .into_iter()
        .partition(|d| is_cascade(d, &broken, model.has_imports));
    // Only the consequences of a reported error are dropped.
    let errors = if causes.is_empty() { cascades } else { causes };
    Err(in_source_order(errors, name))
}

/// The folder part of a file name (`a/b` of `a/b/main.bicep`).
fn folder_of(file: &str) -> &str {
    file.rfind(['/', '\\']).map_or("", |i| &file[..i])
}

/// Errors sorted by position, each reported once, attributed to `file` unless they
/// belong to another one.
fn in_source_order(mut errors: Vec<Diagnostic>, file: &str) -> Vec<Diagnostic> {
    errors = errors.into_iter().map(|d| d.in_file(file)).collect();
    errors.sort_by(|a, b| a.file.cmp(&b.file).then(a.span.start.cmp(&b.span.start)));
    errors.dedup_by(|a, b| a.file == b.file && a.span == b.span && a.code == b.code);
    // The file's own errors first, as the official compiler lists them.
    errors.sort_by_key(|d| d.file.as_deref() != Some(file));
    errors
}

/// An undefined-name error for a declaration that failed itself (reported
/// already), or for what an unimplemented import may bring.
fn is_cascade(d: &Diagnostic, broken: &HashSet<String>, imports: bool) -> bool {
    let undefined = matches!(d.code.as_str(), "BCP057" | "BCP302");
    undefined
        && (imports
            || broken
                .iter()
                .any(|n| d.message.contains(&format!("\"{n}\""))))
}
