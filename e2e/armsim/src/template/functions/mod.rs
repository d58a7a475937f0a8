//! Template function calls: the dispatch from a function name to the pure
//! functions, the ones that read the deployment, and the lazy ones.

mod context;
mod lambda;
pub(super) mod pure;

use serde_json::{Value, json};

use crate::template::expr::Expr;
use crate::template::functions::pure::{arity, arity_error};
use crate::template::model::TemplateError;
use crate::template::run::{Deployment, Frame, Result, UNBOUND_PARAMETER};
use crate::template::runtime;
use crate::template::value::{as_bool, as_str};

impl<'s, 'a> Deployment<'s, 'a> {
    pub(in crate::template) fn call_inner(
        &self,
        name: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        let lower = name.to_lowercase();
        match lower.as_str() {
            "if" => {
                if args.len() != 3 {
                    return Err(arity_error(name, 3, 3, args.len()));
                }
                let cond = as_bool(name, &self.eval(&args[0], frame)?)?;
                self.eval(if cond { &args[1] } else { &args[2] }, frame)
            }
            "and" | "or" => {
                if args.is_empty() {
                    return Err(arity_error(name, 1, usize::MAX, 0));
                }
                let want = lower == "or";
                for a in args {
                    if as_bool(name, &self.eval(a, frame)?)? == want {
                        return Ok(Value::Bool(want));
                    }
                }
                Ok(Value::Bool(!want))
            }
            "parameters" => self.parameter_function(name, args, frame),
            "variables" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                self.variable(as_str(name, &vals[0])?)
            }
            "copyindex" => self.copy_index(name, &self.eval_args(args, frame)?, frame),
            "lambdavariables" => self.lambda_variable(name, args, frame),
            "lambda" => Err(TemplateError::invalid_template(
                "The template function 'lambda' can only be used as an argument of 'filter', 'map', 'reduce', 'sort', 'toObject', 'mapValues' or 'groupBy'.",
            )),
            "map" | "filter" | "reduce" | "sort" | "toobject" | "mapvalues" | "groupby" => {
                self.lambda_function(name, &lower, args, frame)
            }
            "reference" => self.reference_function(name, args, frame),
            l if l.starts_with("list") && l.len() > 4 => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 2, 3)?;
                let target = as_str(name, &vals[0])?;
                let body = self.resolve_resource(name, target)?;
                let id = body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or(target)
                    .to_string();
                Ok(runtime::list_action(name, &id))
            }
            "resourceid"
            | "subscriptionresourceid"
            | "tenantresourceid"
            | "extensionresourceid"
            | "managementgroupresourceid" => {
                let vals = self.eval_args(args, frame)?;
                self.resource_id_function(name, &lower, &vals)
                    .map(Value::from)
            }
            l if l.contains('.') => self.user_function(name, &lower, args, frame),
            _ => self.context_function(name, &lower, args, frame),
        }
    }

    /// `parameters(name)`: a template parameter, or a user function's argument.
    fn parameter_function(&self, name: &str, args: &[Expr], frame: &Frame) -> Result<Value> {
        let vals = self.eval_args(args, frame)?;
        arity(name, &vals, 1, 1)?;
        let key = as_str(name, &vals[0])?;
        if let Some(fn_args) = &frame.fn_args {
            return fn_args.get(&key.to_lowercase()).cloned().ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The function parameter '{key}' is not defined."
                ))
            });
        }
        let declared = self
            .template
            .get("parameters")
            .and_then(Value::as_object)
            .is_some_and(|p| p.keys().any(|k| k.eq_ignore_ascii_case(key)));
        self.params
            .borrow()
            .get(&key.to_lowercase())
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                if declared {
                    return TemplateError::invalid_template(format!(
                        "The template parameter '{key}' {UNBOUND_PARAMETER}."
                    ));
                }
                TemplateError::invalid_template(format!(
                    "The template parameter '{key}' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details."
                ))
            })
    }

    /// `lambdaVariables(name)`: the innermost lambda variable of that name.
    fn lambda_variable(&self, name: &str, args: &[Expr], frame: &Frame) -> Result<Value> {
        let vals = self.eval_args(args, frame)?;
        arity(name, &vals, 1, 1)?;
        let var = as_str(name, &vals[0])?;
        frame
            .lambdas
            .iter()
            .rev()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The lambda variable '{var}' is not defined."
                ))
            })
    }

    /// `reference(id, apiVersion?, 'Full'?)`: a resource's properties, or all of it.
    fn reference_function(&self, name: &str, args: &[Expr], frame: &Frame) -> Result<Value> {
        let vals = self.eval_args(args, frame)?;
        arity(name, &vals, 1, 3)?;
        let full = vals
            .get(2)
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("full"));
        let body = self.resolve_resource(name, as_str(name, &vals[0])?)?;
        if full {
            Ok(body)
        } else {
            Ok(body.get("properties").cloned().unwrap_or_else(|| json!({})))
        }
    }
}
