//! languageVersion 2.0 (symbolic names): resources and modules are an object keyed
//! by their symbolic names, `existing` resources are emitted (marked so),
//! `dependsOn` names symbols (`'sym'`, one loop element as `format('sym[{0}]', i)`)
//! and runtime state is read with `reference('sym')` instead of a resource id.

use super::{Emitter, R, Sym, quote};

impl Emitter<'_> {
    /// The symbolic name of a resource or module.
    pub(super) fn symbol_name(&self, sym: Sym) -> String {
        match sym {
            Sym::Res(i) => self.resources[i].symbol.clone(),
            Sym::Mod(i) => self.modules[i].decl.name.clone().unwrap_or_default().0,
        }
    }

    /// How `reference()` and `dependsOn` name a symbol or one element of its loop.
    pub(super) fn symbolic_ref(&self, sym: Sym, idx: Option<&str>) -> String {
        let name = self.symbol_name(sym);
        match idx {
            Some(i) => format!("format({}, {i})", quote(&format!("{name}[{{0}}]"))),
            None => quote(&name),
        }
    }

    /// The `dependsOn` entry for a symbol (an element when `idx` names one).
    pub(super) fn symbolic_dep(&self, sym: Sym, idx: Option<&str>) -> String {
        match idx {
            Some(_) => format!("[{}]", self.symbolic_ref(sym, idx)),
            None => self.symbol_name(sym),
        }
    }

    /// `reference('sym')`: the properties of a resource, or a module deployment.
    pub(super) fn symbolic_properties(&self, sym: Sym, idx: Option<&str>) -> String {
        format!("reference({})", self.symbolic_ref(sym, idx))
    }

    /// `reference('sym', apiVersion, 'full')`: the whole resource.
    pub(super) fn symbolic_full(&self, i: usize, idx: Option<&str>) -> R<String> {
        Ok(format!(
            "reference({}, {}, 'full')",
            self.symbolic_ref(Sym::Res(i), idx),
            quote(&self.resources[i].api_version)
        ))
    }
}
