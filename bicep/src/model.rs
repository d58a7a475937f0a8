//! The symbol table of one file: its declarations by name and kind, built once
//! per compiled file and read by both the checks (`check`) and the emitter.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::diag::Diagnostic;

pub(crate) struct Model<'f> {
    pub file: &'f File,
    /// Declarations of the one namespace that parameters, variables, resources,
    /// modules, types, functions, imports and extensions share, by name (the
    /// first of duplicates); outputs have their own.
    declared: HashMap<&'f str, &'f Decl>,
    /// Names of declarations that did not parse: known, so not undefined.
    unparsed: HashSet<&'f str>,
    pub params: HashMap<&'f str, &'f Decl>,
    pub vars: HashMap<&'f str, &'f Decl>,
    /// User-defined types, by name.
    pub types: HashMap<String, &'f Decl>,
    pub functions: HashSet<&'f str>,
    /// Extension aliases: only a module's `extensionConfigs` may refer to them.
    pub extensions: HashSet<&'f str>,
    /// True when the file imports: the names an import brings are not known
    /// without reading the imported files.
    pub has_imports: bool,
    /// BCP028 for each name declared again.
    pub duplicates: Vec<Diagnostic>,
}

impl<'f> Model<'f> {
    /// Binds every declaration of `file` to its name.
    pub fn bind(file: &'f File) -> Self {
        let mut model = Model {
            file,
            declared: HashMap::new(),
            unparsed: file.unparsed_names.iter().map(String::as_str).collect(),
            params: HashMap::new(),
            vars: HashMap::new(),
            types: HashMap::new(),
            functions: HashSet::new(),
            extensions: HashSet::new(),
            has_imports: false,
            duplicates: Vec::new(),
        };
        let mut outputs: HashSet<&str> = HashSet::new();
        for d in &file.decls {
            model.has_imports |= matches!(d.kind, DeclKind::Import(_));
            let Some((name, span)) = &d.name else {
                continue;
            };
            let duplicate = match d.kind {
                DeclKind::Output { .. } => !outputs.insert(name.as_str()),
                DeclKind::Metadata(_) | DeclKind::Test | DeclKind::Assert(_) => false,
                _ => model.declared.insert(name.as_str(), d).is_some(),
            };
            if duplicate {
                model.duplicates.push(Diagnostic::error(
                    "BCP028",
                    format!("Identifier \"{name}\" is declared multiple times. Remove or rename the duplicates."),
                    *span,
                ));
            }
            model.add_kind(name, d);
        }
        model
    }

    fn add_kind(&mut self, name: &'f str, d: &'f Decl) {
        match d.kind {
            DeclKind::Param { .. } => {
                self.params.insert(name, d);
            }
            DeclKind::Var { .. } => {
                self.vars.insert(name, d);
            }
            DeclKind::Type(_) => {
                self.types.insert(name.to_string(), d);
            }
            DeclKind::Func { .. } => {
                self.functions.insert(name);
            }
            DeclKind::Extension(_) => {
                self.extensions.insert(name);
            }
            _ => {}
        }
    }

    /// True when `name` is declared in the shared namespace (or failed to parse).
    pub fn is_symbol(&self, name: &str) -> bool {
        self.declared.contains_key(name) || self.unparsed.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    #[test]
    fn binds_each_name_to_its_kind_and_reports_duplicates() {
        let parsed = parse(
            "param p int\nvar v = p\ntype t = string\nfunc f() int => 1\noutput v int = 1\nvar p = 2\nvar broken = \n",
        );
        let model = Model::bind(&parsed.file);
        assert!(model.params.contains_key("p") && model.vars.contains_key("v"));
        assert!(model.types.contains_key("t") && model.functions.contains("f"));
        // Outputs have their own namespace; a declaration that did not parse is still known.
        assert!(model.is_symbol("broken") && !model.is_symbol("nope"));
        let duplicates: Vec<&str> = model.duplicates.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(duplicates, ["BCP028"]);
        assert!(!model.has_imports);
    }
}
