//! Lambdas (`filter`, `map`, `reduce`, ...) and user-defined functions.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value, json};

use crate::template::expr::Expr;
use crate::template::functions::pure::{arity_error, invalid_arg};
use crate::template::model::TemplateError;
use crate::template::run::{Deployment, Frame, Result};
use crate::template::value::{as_array, as_bool, as_object, as_str};

impl<'s, 'a> Deployment<'s, 'a> {
    pub(in crate::template) fn lambda_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        let (min, max) = match lower {
            "reduce" => (3, 3),
            "toobject" => (2, 3),
            _ => (2, 2),
        };
        if args.len() < min || args.len() > max {
            return Err(arity_error(name, min, max, args.len()));
        }
        let collection = self.eval(&args[0], frame)?;
        match lower {
            "map" | "filter" | "sort" | "toobject" | "groupby" | "reduce" => {
                let items = as_array(name, &collection)?.clone();
                match lower {
                    "map" => {
                        let f = self.lambda(name, &args[1])?;
                        let out = items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| self.apply(&f, &[v.clone(), Value::from(i)], frame))
                            .collect::<Result<Vec<_>>>()?;
                        Ok(Value::Array(out))
                    }
                    "filter" => {
                        let f = self.lambda(name, &args[1])?;
                        let mut out = Vec::new();
                        for (i, v) in items.iter().enumerate() {
                            if as_bool(name, &self.apply(&f, &[v.clone(), Value::from(i)], frame)?)?
                            {
                                out.push(v.clone());
                            }
                        }
                        Ok(Value::Array(out))
                    }
                    "reduce" => {
                        let mut acc = self.eval(&args[1], frame)?;
                        let f = self.lambda(name, &args[2])?;
                        for (i, v) in items.iter().enumerate() {
                            acc = self.apply(&f, &[acc, v.clone(), Value::from(i)], frame)?;
                        }
                        Ok(acc)
                    }
                    "sort" => self.sort_with(name, &args[1], items, frame),
                    "toobject" => self.to_object(name, args, &items, frame),
                    _ => self.group_by(name, &args[1], &items, frame),
                }
            }
            _ => {
                let object = as_object(name, &collection)?.clone();
                let f = self.lambda(name, &args[1])?;
                let mut out = Map::new();
                for (k, v) in object {
                    out.insert(k, self.apply(&f, &[v], frame)?);
                }
                Ok(Value::Object(out))
            }
        }
    }

    pub(in crate::template) fn lambda<'e>(
        &self,
        function: &str,
        e: &'e Expr,
    ) -> Result<(Vec<String>, &'e Expr)> {
        let Expr::Call { name, args } = e else {
            return Err(invalid_arg(
                function,
                "the argument must be a lambda expression",
            ));
        };
        if !name.eq_ignore_ascii_case("lambda") || args.is_empty() {
            return Err(invalid_arg(
                function,
                "the argument must be a lambda expression",
            ));
        }
        let mut params = Vec::new();
        for p in &args[..args.len() - 1] {
            match p {
                Expr::Str(s) => params.push(s.clone()),
                _ => {
                    return Err(invalid_arg(
                        "lambda",
                        "lambda parameter names must be string literals",
                    ));
                }
            }
        }
        Ok((params, &args[args.len() - 1]))
    }

    pub(in crate::template) fn apply(
        &self,
        f: &(Vec<String>, &Expr),
        values: &[Value],
        frame: &Frame,
    ) -> Result<Value> {
        let mut inner = frame.clone();
        for (p, v) in f.0.iter().zip(values) {
            inner.lambdas.push((p.clone(), v.clone()));
        }
        self.eval(f.1, &inner)
    }

    pub(in crate::template) fn user_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        let def = *self.functions.get(lower).ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details."
            ))
        })?;
        let declared: Vec<&str> = def
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let vals = self.eval_args(args, frame)?;
        if vals.len() != declared.len() {
            return Err(arity_error(
                name,
                declared.len(),
                declared.len(),
                vals.len(),
            ));
        }
        let bound: HashMap<String, Value> = declared
            .iter()
            .map(|d| d.to_lowercase())
            .zip(vals)
            .collect();
        let body = def.pointer("/output/value").ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The user-defined function '{name}' has no 'output.value'."
            ))
        })?;
        let inner = Frame {
            fn_args: Some(Rc::new(bound)),
            ..Frame::default()
        };
        self.eval_value(body, &inner)
    }

    /// `sort(array, lambda)`: a stable insertion sort by the lambda's "less than".
    fn sort_with(
        &self,
        name: &str,
        lambda: &Expr,
        items: Vec<Value>,
        frame: &Frame,
    ) -> Result<Value> {
        let f = self.lambda(name, lambda)?;
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            let mut pos = out.len();
            while pos > 0
                && as_bool(
                    name,
                    &self.apply(&f, &[item.clone(), out[pos - 1].clone()], frame)?,
                )?
            {
                pos -= 1;
            }
            out.insert(pos, item);
        }
        Ok(Value::Array(out))
    }

    /// `toObject(array, keyLambda, valueLambda?)`.
    fn to_object(
        &self,
        name: &str,
        args: &[Expr],
        items: &[Value],
        frame: &Frame,
    ) -> Result<Value> {
        let key_fn = self.lambda(name, &args[1])?;
        let value_fn = args.get(2).map(|a| self.lambda(name, a)).transpose()?;
        let mut out = Map::new();
        for v in items {
            let key = self.apply(&key_fn, std::slice::from_ref(v), frame)?;
            let value = match &value_fn {
                Some(f) => self.apply(f, std::slice::from_ref(v), frame)?,
                None => v.clone(),
            };
            out.insert(as_str(name, &key)?.to_string(), value);
        }
        Ok(Value::Object(out))
    }

    /// `groupBy(array, keyLambda)`: the elements under each key, in order.
    fn group_by(&self, name: &str, lambda: &Expr, items: &[Value], frame: &Frame) -> Result<Value> {
        let f = self.lambda(name, lambda)?;
        let mut out = Map::new();
        for v in items {
            let key = self.apply(&f, std::slice::from_ref(v), frame)?;
            let key = as_str(name, &key)?.to_string();
            match out.entry(key).or_insert_with(|| json!([])) {
                Value::Array(group) => group.push(v.clone()),
                _ => unreachable!("groups are arrays"),
            }
        }
        Ok(Value::Object(out))
    }
}
