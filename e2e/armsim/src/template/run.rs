//! The state of one template run: the scope it targets, its resource instances,
//! copy-loop frames, and the caches shared by a deployment and its nested ones.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::template::expr::Expr;
use crate::template::model::{
    PlannedResource, ResourceGroupInfo, ResourceLookup, TemplateError, TypedValue,
};
use crate::template::value::{get_ci, type_name};

pub(super) type Result<T> = std::result::Result<T, TemplateError>;

/// Nested deployments deeper than this are refused.
pub(super) const MAX_NESTING: usize = 12;

/// What one level of nested deployment costs against [`MAX_CALL_DEPTH`].
pub(super) const NESTED_DEPLOYMENT_WEIGHT: usize = 3;

/// Marks the error of a parameter default that reads a parameter not bound yet.
pub(super) const UNBOUND_PARAMETER: &str = "is read before its value is known";

/// How deep function calls may nest while being evaluated, through expressions,
/// variables, user-defined functions (which ARM forbids to recurse) and nested
/// deployments (each counts as [`NESTED_DEPLOYMENT_WEIGHT`] calls). Bounded so that
/// evaluation fits a 2 MiB thread stack even in debug builds.
pub(super) const MAX_CALL_DEPTH: usize = 40;

/// ARM's limit on `copy` counts.
pub(super) const MAX_COPY: i64 = 800;

pub(super) struct Shared<'a> {
    pub(super) lookup: &'a dyn ResourceLookup,
    pub(super) now: DateTime<Utc>,
    pub(super) parsed: RefCell<HashMap<String, Rc<Expr>>>,
    pub(super) planned: RefCell<Vec<PlannedResource>>,
    /// Function calls currently being evaluated.
    pub(super) depth: std::cell::Cell<usize>,
}

/// The scope one (possibly nested) deployment targets.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) tenant_id: String,
    pub(super) subscription_id: Option<String>,
    pub(super) resource_group: Option<ResourceGroupInfo>,
    pub(super) management_group: Option<String>,
    pub(super) location: Option<String>,
}

impl Target {
    pub(super) fn kind(&self) -> &'static str {
        match (
            &self.resource_group,
            &self.subscription_id,
            &self.management_group,
        ) {
            (Some(_), Some(_), _) => "resourceGroup",
            (None, Some(_), _) => "subscription",
            (_, None, Some(_)) => "managementGroup",
            _ => "tenant",
        }
    }

    /// The id every resource of this scope is prefixed with (`""` at tenant scope).
    pub(super) fn scope_id(&self) -> String {
        match (
            &self.subscription_id,
            &self.resource_group,
            &self.management_group,
        ) {
            (Some(s), Some(rg), _) => format!("/subscriptions/{s}/resourceGroups/{}", rg.name),
            (Some(s), None, _) => format!("/subscriptions/{s}"),
            (None, _, Some(mg)) => mg_id(mg),
            _ => String::new(),
        }
    }
}

pub(super) fn mg_id(name: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{name}")
}

/// Builds `{prefix}/providers/{namespace}/{type}/{name}/...`; names may be given
/// as separate arguments or joined with '/'.
pub(super) fn compose_id(prefix: &str, resource_type: &str, names: &[&str]) -> Result<String> {
    let resource_type = resource_type.trim_end_matches('/');
    let type_segments: Vec<&str> = resource_type.split('/').collect();
    let name_segments: Vec<&str> = names.iter().flat_map(|n| n.split('/')).collect();
    if type_segments.len() < 2
        || type_segments.iter().any(|s| s.is_empty())
        || name_segments.len() != type_segments.len() - 1
    {
        return Err(TemplateError::invalid_template(format!(
            "The resource '{}' of type '{resource_type}' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name: a type with {} segment(s) needs {} name segment(s).",
            names.join("/"),
            type_segments.len(),
            type_segments.len().saturating_sub(1)
        )));
    }
    if type_segments[0].eq_ignore_ascii_case("Microsoft.Resources")
        && type_segments.len() == 2
        && type_segments[1].eq_ignore_ascii_case("resourceGroups")
        && prefix.starts_with("/subscriptions/")
    {
        let sub = prefix.split('/').nth(2).unwrap_or_default();
        return Ok(format!(
            "/subscriptions/{sub}/resourceGroups/{}",
            name_segments[0]
        ));
    }
    let mut id = format!("{prefix}/providers/{}", type_segments[0]);
    for (t, n) in type_segments[1..].iter().zip(&name_segments) {
        id.push('/');
        id.push_str(t);
        id.push('/');
        id.push_str(n);
    }
    Ok(id)
}

/// Where a template's parameters and variables come from.
pub(super) enum Source<'p, 'a> {
    /// Its own `parameters` section, fed from a deployment's parameter values.
    Own(&'p Map<String, Value>),
    /// A nested deployment with outer scope: the enclosing template's.
    Outer(&'p Deployment<'p, 'a>),
}

pub(super) struct RunResult {
    pub(super) outputs: IndexMap<String, TypedValue>,
    pub(super) parameters: IndexMap<String, TypedValue>,
}

#[derive(Clone)]
pub(super) enum VarDef<'a> {
    Plain(&'a Value),
    Copy(&'a Value),
}

#[derive(Clone)]
pub(super) enum Slot {
    Busy,
    Done(Value),
}

#[derive(Clone, Default)]
pub(super) struct Frame {
    /// Named copy loops in scope, innermost last.
    pub(super) loops: Vec<(String, i64)>,
    /// What `copyIndex()` without a loop name returns.
    pub(super) default_index: Option<i64>,
    pub(super) lambdas: Vec<(String, Value)>,
    /// Arguments of the user-defined function being evaluated.
    pub(super) fn_args: Option<Rc<HashMap<String, Value>>>,
    /// `utcNow()` and `newGuid()` are only valid in parameter defaults.
    pub(super) in_parameter_default: bool,
}

pub(super) enum State {
    Pending,
    Busy,
    Done(Value),
}

pub(super) struct Instance<'a> {
    pub(super) raw: &'a Map<String, Value>,
    pub(super) frame: Frame,
    pub(super) symbolic: Option<String>,
    pub(super) loop_name: Option<String>,
    pub(super) resource_type: String,
    pub(super) name: String,
    pub(super) id: String,
    pub(super) api_version: String,
    pub(super) deployed: bool,
    pub(super) existing: bool,
    pub(super) parent: Option<usize>,
    pub(super) deps: Vec<usize>,
    pub(super) state: State,
}

impl Instance<'_> {
    /// True when a languageVersion 2.0 reference names this instance: its symbolic
    /// name (every element of a loop), or `symbol[i]` for element `i` of its loop.
    pub(super) fn names_symbol(&self, target: &str) -> bool {
        let Some(symbolic) = self.symbolic.as_deref() else {
            return false;
        };
        if symbolic == target {
            return true;
        }
        let element = target
            .strip_prefix(symbolic)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|i| i.parse::<i64>().ok());
        let own_index = self.loop_name.as_deref().and_then(|l| {
            self.frame
                .loops
                .iter()
                .rev()
                .find(|(name, _)| name.eq_ignore_ascii_case(l))
                .map(|(_, i)| *i)
        });
        element.is_some() && element == own_index
    }
}

pub(super) struct Deployment<'s, 'a> {
    pub(super) shared: &'s Shared<'a>,
    /// Where the template's resources go.
    pub(super) target: Target,
    /// What `resourceGroup()`, `subscription()`, `resourceId()`, ... see: the same as
    /// `target`, except in a nested deployment with outer scope, whose functions
    /// resolve against the parent template's scope (as ARM documents).
    pub(super) fn_target: Target,
    pub(super) name: String,
    pub(super) template: &'a Value,
    pub(super) depth: usize,
    pub(super) v2: bool,
    pub(super) params: RefCell<IndexMap<String, (String, Value)>>,
    pub(super) variables: HashMap<String, VarDef<'a>>,
    pub(super) var_slots: RefCell<HashMap<String, Slot>>,
    pub(super) functions: HashMap<String, &'a Value>,
    pub(super) definitions: Option<&'a Map<String, Value>>,
    /// Aliases of the template's extensions (all ARM's own; see `extensions`).
    pub(super) extensions: HashSet<String>,
    pub(super) instances: RefCell<Vec<Instance<'a>>>,
}

pub(super) fn section_error(section: &str, shape: &str) -> TemplateError {
    TemplateError::invalid_template(format!("The template '{section}' section must be {shape}."))
}

pub(super) fn is_property_copy(v: &Value) -> bool {
    v.as_array().is_some_and(|specs| {
        !specs.is_empty()
            && specs.iter().all(|s| {
                s.get("name").is_some_and(Value::is_string)
                    && s.get("count").is_some()
                    && s.get("input").is_some()
            })
    })
}

pub(super) fn is_deployment_type(resource_type: &str) -> bool {
    resource_type.eq_ignore_ascii_case("Microsoft.Resources/deployments")
}

pub(super) fn not_found(id: &str) -> TemplateError {
    let mut e = TemplateError::not_found(format!("The Resource '{id}' was not found."));
    e.target = Some(id.to_string());
    e
}

pub(super) fn member(v: &Value, name: &str) -> Result<Value> {
    match v {
        Value::Object(o) => get_ci(o, name).cloned().ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The language expression property '{name}' doesn't exist, available properties are '{}'.",
                o.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        }),
        other => Err(TemplateError::invalid_template(format!(
            "The language expression property '{name}' can't be evaluated, property name must be accessed on an object, not a value of type '{}'.",
            type_name(other)
        ))),
    }
}
