//! Functions that read the deployment: its scope, parameters and variables,
//! `copyIndex`, `resourceId` and friends, environment and dates.

use chrono::{DateTime, Duration, Months, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use crate::template::expr::Expr;
use crate::template::format::format_datetime;
use crate::template::functions::pure::{arity, arity_error, call_pure, invalid_arg, no_args};
use crate::template::model::TemplateError;
use crate::template::run::{Deployment, Frame, Result, compose_id, mg_id};
use crate::template::runtime;
use crate::template::value::{as_int, as_str};

pub(in crate::template) const ZONAL_REGIONS: &[&str] = &[
    "eastus",
    "eastus2",
    "westus2",
    "westus3",
    "centralus",
    "southcentralus",
    "canadacentral",
    "brazilsouth",
    "northeurope",
    "westeurope",
    "uksouth",
    "francecentral",
    "germanywestcentral",
    "swedencentral",
    "switzerlandnorth",
    "norwayeast",
    "italynorth",
    "polandcentral",
    "southeastasia",
    "eastasia",
    "japaneast",
    "koreacentral",
    "australiaeast",
    "centralindia",
    "southafricanorth",
    "uaenorth",
    "qatarcentral",
    "israelcentral",
];

pub(in crate::template) fn environment() -> Value {
    json!({
        "name": "AzureCloud",
        "gallery": "https://gallery.azure.com/",
        "graph": "https://graph.windows.net/",
        "portal": "https://portal.azure.com",
        "graphAudience": "https://graph.windows.net/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "batch": "https://batch.core.windows.net/",
        "media": "https://rest.media.azure.net",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
        "resourceManager": "https://management.azure.com/",
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com/",
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {
            "acrLoginServer": ".azurecr.io",
            "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
            "azureDatalakeStoreFileSystem": "azuredatalakestore.net",
            "azureFrontDoorEndpointSuffix": "azurefd.net",
            "keyvaultDns": ".vault.azure.net",
            "sqlServerHostname": ".database.windows.net",
            "storage": "core.windows.net",
        },
    })
}

pub(in crate::template) fn parse_datetime(function: &str, s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for pattern in [
        "%Y%m%dT%H%M%SZ",
        "%Y-%m-%d %H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, pattern) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(invalid_arg(
        function,
        "the value is not a valid date and time",
    ))
}

/// Adds an ISO 8601 duration (`P1Y2M3DT4H5M6S`, optionally negative).
pub(in crate::template) fn add_duration(
    function: &str,
    base: DateTime<Utc>,
    duration: &str,
) -> Result<DateTime<Utc>> {
    let bad = || invalid_arg(function, "the duration is not a valid ISO 8601 duration");
    let (negative, rest) = match duration.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, duration),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let mut t = base;
    let mut in_time = false;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                let n = if negative { -n } else { n };
                let months = |m: i64| -> Option<DateTime<Utc>> {
                    if m >= 0 {
                        t.checked_add_months(Months::new(u32::try_from(m).ok()?))
                    } else {
                        t.checked_sub_months(Months::new(u32::try_from(-m).ok()?))
                    }
                };
                t = match (in_time, unit) {
                    (false, 'Y') => n.checked_mul(12).and_then(months),
                    (false, 'M') => months(n),
                    (false, 'W') => Duration::try_weeks(n).and_then(|d| t.checked_add_signed(d)),
                    (false, 'D') => Duration::try_days(n).and_then(|d| t.checked_add_signed(d)),
                    (true, 'H') => Duration::try_hours(n).and_then(|d| t.checked_add_signed(d)),
                    (true, 'M') => Duration::try_minutes(n).and_then(|d| t.checked_add_signed(d)),
                    (true, 'S') => Duration::try_seconds(n).and_then(|d| t.checked_add_signed(d)),
                    _ => None,
                }
                .ok_or_else(bad)?;
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(t)
}

impl<'s, 'a> Deployment<'s, 'a> {
    /// Functions of the deployment's scope and the argument-only functions; kept
    /// out of `call_inner` so the recursive evaluation path has a small stack frame.
    #[inline(never)]
    pub(in crate::template) fn context_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        if let Some(value) = self.scope_function(name, lower, args, frame)? {
            return Ok(value);
        }
        if let Some(value) = self.deployment_function(name, lower, args)? {
            return Ok(value);
        }
        if let Some(value) = self.time_function(name, lower, args, frame)? {
            return Ok(value);
        }
        match lower {
            "pickzones" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 3, 5)?;
                let location = as_str(name, &vals[2])?.to_lowercase().replace(' ', "");
                let count = vals
                    .get(3)
                    .map(|v| as_int(name, v))
                    .transpose()?
                    .unwrap_or(1);
                let offset = vals
                    .get(4)
                    .map(|v| as_int(name, v))
                    .transpose()?
                    .unwrap_or(0);
                if !ZONAL_REGIONS.contains(&location.as_str()) {
                    return Ok(json!([]));
                }
                Ok(Value::Array(
                    (0..count.clamp(0, 3))
                        .map(|i| Value::from(((offset + i) % 3 + 1).to_string()))
                        .collect(),
                ))
            }
            "providers" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 2)?;
                let ns = as_str(name, &vals[0])?;
                let resource_type = vals.get(1).map(|t| as_str(name, t)).transpose()?;
                crate::providers::function_value(ns, resource_type).ok_or_else(|| {
                    TemplateError::invalid_template(format!(
                        "The resource namespace '{ns}' or its type is not registered."
                    ))
                })
            }
            _ => {
                let vals = self.eval_args(args, frame)?;
                call_pure(lower, name, &vals).unwrap_or_else(|| {
                    Err(TemplateError::invalid_template(format!(
                        "The template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details."
                    )))
                })
            }
        }
    }

    /// `resourceGroup()`, `subscription()`, `tenant()` and `managementGroup()`;
    /// `None` for other names.
    fn scope_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Option<Value>> {
        let value = match lower {
            "resourcegroup" => {
                no_args(name, args)?;
                let rg = self.fn_target.resource_group.as_ref().ok_or_else(|| {
                    TemplateError::invalid_template(
                        "The template function 'resourceGroup' is not expected at this location: the deployment is not at resource group scope.",
                    )
                })?;
                Ok(json!({
                    "id": self.fn_target.scope_id(),
                    "name": rg.name,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": rg.location,
                    "tags": rg.tags,
                    "properties": {"provisioningState": "Succeeded"},
                }))
            }
            "subscription" => {
                no_args(name, args)?;
                let sub = self.fn_target.subscription_id.as_ref().ok_or_else(|| {
                    TemplateError::invalid_template(
                        "The template function 'subscription' is not expected at this location: the deployment is not at subscription or resource group scope.",
                    )
                })?;
                Ok(json!({
                    "id": format!("/subscriptions/{sub}"),
                    "subscriptionId": sub,
                    "tenantId": self.fn_target.tenant_id,
                    "displayName": "Simulated subscription",
                }))
            }
            "tenant" => {
                no_args(name, args)?;
                Ok(json!({
                    "countryCode": "US",
                    "displayName": "Simulated tenant",
                    "id": format!("/tenants/{}", self.fn_target.tenant_id),
                    "tenantId": self.fn_target.tenant_id,
                }))
            }
            "managementgroup" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 0, 1)?;
                let mg = match vals.first() {
                    Some(v) => as_str(name, v)?.to_string(),
                    None => self.fn_target.management_group.clone().ok_or_else(|| {
                        TemplateError::invalid_template(
                            "The template function 'managementGroup' is not expected at this location: the deployment is not at management group scope.",
                        )
                    })?,
                };
                Ok(json!({
                    "id": mg_id(&mg),
                    "name": mg,
                    "type": "Microsoft.Management/managementGroups",
                    "properties": {
                        "displayName": mg,
                        "tenantId": self.fn_target.tenant_id,
                        "details": {"parent": {
                            "id": mg_id(&self.fn_target.tenant_id),
                            "name": self.fn_target.tenant_id,
                            "displayName": "Tenant Root Group",
                        }},
                    },
                }))
            }
            _ => return Ok(None),
        };
        value.map(Some)
    }

    /// `deployment()`, `deployer()` and `environment()`; `None` for other names.
    fn deployment_function(&self, name: &str, lower: &str, args: &[Expr]) -> Result<Option<Value>> {
        let value = match lower {
            "deployment" => {
                no_args(name, args)?;
                let mut template = Map::new();
                for key in ["$schema", "contentVersion", "metadata", "languageVersion"] {
                    if let Some(v) = self.template.get(key) {
                        template.insert(key.to_string(), v.clone());
                    }
                }
                let mut out = json!({
                    "name": self.name,
                    "properties": {
                        "template": template,
                        "templateHash": runtime::seeded_guid(&self.name, "templateHash"),
                        "parameters": {},
                        "mode": "Incremental",
                        "provisioningState": "Accepted",
                    },
                });
                if let Some(loc) = &self.fn_target.location {
                    out["location"] = json!(loc);
                }
                Ok(out)
            }
            "deployer" => {
                no_args(name, args)?;
                Ok(json!({
                    "objectId": runtime::seeded_guid(&self.fn_target.tenant_id, "deployer"),
                    "tenantId": self.fn_target.tenant_id,
                    "userPrincipalName": "deployer@simulated.example",
                }))
            }
            "environment" => {
                no_args(name, args)?;
                Ok(environment())
            }
            _ => return Ok(None),
        };
        value.map(Some)
    }

    /// `utcNow()`, `newGuid()` and the `dateTime*` functions; `None` for other names.
    fn time_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Option<Value>> {
        let value = match lower {
            "utcnow" | "newguid" => {
                if !frame.in_parameter_default {
                    return Err(TemplateError::invalid_template(format!(
                        "The template function '{name}' is not expected at this location. It can only be used in the default value of a parameter."
                    )));
                }
                let vals = self.eval_args(args, frame)?;
                if lower == "newguid" {
                    arity(name, &vals, 0, 0)?;
                    return Ok(Some(Value::from(uuid::Uuid::new_v4().to_string())));
                }
                arity(name, &vals, 0, 1)?;
                let fmt = match vals.first() {
                    Some(v) => as_str(name, v)?,
                    None => "yyyyMMddTHHmmssZ",
                };
                Ok(Value::from(format_datetime(&self.shared.now, fmt)))
            }
            "datetimeadd" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 2, 3)?;
                let base = parse_datetime(name, as_str(name, &vals[0])?)?;
                let t = add_duration(name, base, as_str(name, &vals[1])?)?;
                Ok(Value::from(match vals.get(2) {
                    Some(f) => format_datetime(&t, as_str(name, f)?),
                    None => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }))
            }
            "datetimefromepoch" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                let t = DateTime::<Utc>::from_timestamp(as_int(name, &vals[0])?, 0)
                    .ok_or_else(|| invalid_arg(name, "the epoch value is out of range"))?;
                Ok(Value::from(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            }
            "datetimetoepoch" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                Ok(Value::from(
                    parse_datetime(name, as_str(name, &vals[0])?)?.timestamp(),
                ))
            }
            _ => return Ok(None),
        };
        value.map(Some)
    }

    pub(in crate::template) fn copy_index(
        &self,
        name: &str,
        vals: &[Value],
        frame: &Frame,
    ) -> Result<Value> {
        arity(name, vals, 0, 2)?;
        let (loop_name, offset) = match vals {
            [] => (None, 0),
            [Value::String(l)] => (Some(l.as_str()), 0),
            [other] => (None, as_int(name, other)?),
            [l, o] => (Some(as_str(name, l)?), as_int(name, o)?),
            _ => unreachable!("arity checked"),
        };
        let index = match loop_name {
            Some(l) => frame
                .loops
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(l))
                .map(|(_, i)| *i)
                .ok_or_else(|| {
                    TemplateError::invalid_template(format!(
                        "The template function 'copyIndex' refers to the copy loop '{l}', which is not in scope here."
                    ))
                })?,
            None => frame.default_index.ok_or_else(|| {
                TemplateError::invalid_template(
                    "The template function 'copyIndex' is not expected at this location: it is only valid inside a 'copy' loop.",
                )
            })?,
        };
        Ok(Value::from(index + offset))
    }

    pub(in crate::template) fn resource_id_function(
        &self,
        name: &str,
        lower: &str,
        vals: &[Value],
    ) -> Result<String> {
        let strings = vals
            .iter()
            .map(|v| as_str(name, v))
            .collect::<Result<Vec<&str>>>()?;
        let need = |min: usize| -> Result<()> {
            if strings.len() < min {
                Err(arity_error(name, min, usize::MAX, strings.len()))
            } else {
                Ok(())
            }
        };
        match lower {
            "resourceid" => {
                need(2)?;
                self.resource_id(name, &strings)
            }
            "subscriptionresourceid" => {
                need(2)?;
                let (sub, rest) = if strings[0].contains('/') {
                    let sub = self.fn_target.subscription_id.clone().ok_or_else(|| {
                        invalid_arg(
                            name,
                            "the deployment is not within a subscription; pass the subscription id",
                        )
                    })?;
                    (sub, &strings[..])
                } else {
                    (strings[0].to_string(), &strings[1..])
                };
                if rest.len() < 2 {
                    return Err(arity_error(name, 2, usize::MAX, strings.len()));
                }
                compose_id(&format!("/subscriptions/{sub}"), rest[0], &rest[1..])
            }
            "tenantresourceid" => {
                need(2)?;
                compose_id("", strings[0], &strings[1..])
            }
            "extensionresourceid" => {
                need(3)?;
                compose_id(strings[0].trim_end_matches('/'), strings[1], &strings[2..])
            }
            _ => {
                need(2)?;
                let (mg, rest) = if strings[0].contains('/') {
                    let mg = self.fn_target.management_group.clone().ok_or_else(|| {
                        invalid_arg(name, "the deployment is not at management group scope; pass the management group name")
                    })?;
                    (mg, &strings[..])
                } else {
                    (strings[0].to_string(), &strings[1..])
                };
                if rest.len() < 2 {
                    return Err(arity_error(name, 2, usize::MAX, strings.len()));
                }
                compose_id(&mg_id(&mg), rest[0], &rest[1..])
            }
        }
    }

    /// `resourceId([subscriptionId], [resourceGroupName], type, names...)` at or
    /// below the resource group the arguments (or the deployment) name.
    fn resource_id(&self, name: &str, strings: &[&str]) -> Result<String> {
        let type_at = strings
            .iter()
            .position(|s| s.contains('/'))
            .filter(|p| *p <= 2)
            .ok_or_else(|| {
                invalid_arg(name, "no argument is a resource type ('Namespace/type')")
            })?;
        // ARM reads the first argument containing '/' as the type, so a full
        // id such as `subscription().id` passed as the subscription lands there.
        if strings[type_at].starts_with('/') {
            return Err(invalid_arg(
                name,
                &format!(
                    "argument {} '{}' is a resource id where a subscription id, resource group name or resource type ('Namespace/type') goes (use subscription().subscriptionId, not subscription().id)",
                    type_at + 1,
                    strings[type_at]
                ),
            ));
        }
        let prefix = match type_at {
            0 => self.fn_target.scope_id(),
            1 => {
                let sub = self.fn_target.subscription_id.as_deref().ok_or_else(|| {
                    invalid_arg(name, "a resource group was named outside a subscription")
                })?;
                format!("/subscriptions/{sub}/resourceGroups/{}", strings[0])
            }
            _ => format!(
                "/subscriptions/{}/resourceGroups/{}",
                strings[0], strings[1]
            ),
        };
        compose_id(&prefix, strings[type_at], &strings[type_at + 1..])
    }
}
