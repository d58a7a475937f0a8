//! Drift, decided purely: from ARM's what-if answer (and the object's policy and last
//! report) to the `status.drift` report and what to do about it.
//!
//! Noise rule (what counts as drift): a what-if `Modify` counts only through its property
//! changes of type `Create` (declared, missing in Azure), `Modify` and `Array`, and
//! `Delete` under `tags` (a tag added out of band: tags are declared whole). Other
//! `Delete` property changes are values Azure sets that the template does not declare
//! (defaults, read-only state) and `NoEffect` is ARM's own mark for read-only
//! properties: neither is drift, and a `Modify` left with no counted change is
//! `NoChange`. `Deploy` (ARM cannot predict the properties) and `Unsupported` are not
//! drift either; `Ignore` is a resource the template does not manage.

use std::collections::BTreeSet;

use crds::{
    DRIFT_MAX_PROPERTIES, DRIFT_MAX_RESOURCES, DRIFT_MAX_VALUE_CHARS, DriftCounts, DriftPolicy,
    DriftStatus, DriftedResource, PropertyDrift,
};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde_json::{Map, Value};

/// Shown in place of any value that holds a secure parameter's value.
pub const REDACTED: &str = "[redacted]";

/// What-if change type of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Create,
    Delete,
    Modify,
    NoChange,
    Ignore,
    Deploy,
    Unsupported,
}

impl ChangeType {
    /// ARM's spelling; unknown words are treated as `Unsupported`.
    pub fn parse(text: &str) -> Self {
        match text {
            "Create" => Self::Create,
            "Delete" => Self::Delete,
            "Modify" => Self::Modify,
            "NoChange" => Self::NoChange,
            "Ignore" => Self::Ignore,
            "Deploy" => Self::Deploy,
            _ => Self::Unsupported,
        }
    }
}

/// One property change as what-if reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyChange {
    pub path: String,
    /// `Create | Delete | Modify | Array | NoEffect`.
    pub change_type: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// One resource of a what-if answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub id: String,
    pub change_type: ChangeType,
    pub delta: Vec<PropertyChange>,
}

/// What a finished drift check leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftVerdict {
    /// Azure matches the template.
    InSync,
    /// Drift to report; `announce` when it differs from the last report (one Event per
    /// new drift).
    Report { announce: bool },
    /// Deploy the template again: resources are missing (under any policy, as before
    /// drift detection), or the policy is `Correct`.
    Redeploy,
}

/// Whether a property change counts as drift (see the module's noise rule).
fn counts_as_drift(change: &PropertyChange) -> bool {
    match change.change_type.as_str() {
        "Create" | "Modify" | "Array" => true,
        "Delete" => change.path.starts_with("tags."),
        _ => false,
    }
}

/// The drift report of a what-if answer. `secrets` are the secure parameter values:
/// any value holding one is shown as [`REDACTED`].
pub fn report(
    changes: &[ResourceChange],
    secrets: &[String],
    check_request: Option<String>,
    now: Timestamp,
) -> DriftStatus {
    let mut counts = DriftCounts::default();
    let mut resources = Vec::new();
    let mut truncated = false;
    for change in changes {
        let properties: Vec<&PropertyChange> =
            change.delta.iter().filter(|p| counts_as_drift(p)).collect();
        let counter = match change.change_type {
            ChangeType::Create => &mut counts.create,
            ChangeType::Delete => &mut counts.delete,
            ChangeType::Modify if !properties.is_empty() => &mut counts.modify,
            ChangeType::Modify | ChangeType::NoChange | ChangeType::Deploy => &mut counts.no_change,
            ChangeType::Ignore | ChangeType::Unsupported => &mut counts.ignore,
        };
        *counter += 1;
        let drifted = matches!(change.change_type, ChangeType::Create | ChangeType::Delete)
            || (change.change_type == ChangeType::Modify && !properties.is_empty());
        if !drifted {
            continue;
        }
        if resources.len() == DRIFT_MAX_RESOURCES {
            truncated = true;
            continue;
        }
        truncated |= properties.len() > DRIFT_MAX_PROPERTIES;
        let properties = properties
            .into_iter()
            .take(DRIFT_MAX_PROPERTIES)
            .map(|p| PropertyDrift {
                path: p.path.clone(),
                change_type: p.change_type.clone(),
                before: p
                    .before
                    .as_ref()
                    .map(|v| bounded(redact(v, secrets), &mut truncated)),
                after: p
                    .after
                    .as_ref()
                    .map(|v| bounded(redact(v, secrets), &mut truncated)),
            })
            .collect();
        resources.push(DriftedResource {
            id: change.id.clone(),
            change_type: format!("{:?}", change.change_type),
            properties,
        });
    }
    DriftStatus {
        last_check_time: Some(Time(now)),
        check_request,
        summary: summary(&counts),
        counts,
        resources,
        truncated,
    }
}

/// `None`, or the drifted resources per change type, such as `Modify=1 Delete=1`.
pub fn summary(counts: &DriftCounts) -> String {
    let parts: Vec<String> = [
        ("Create", counts.create),
        ("Modify", counts.modify),
        ("Delete", counts.delete),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name}={n}"))
    .collect();
    if parts.is_empty() {
        "None".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Whether the report shows any drift.
pub fn is_drifted(report: &DriftStatus) -> bool {
    !report.resources.is_empty() || report.truncated
}

/// What to do after a drift check.
pub fn verdict(
    policy: DriftPolicy,
    report: &DriftStatus,
    previous: Option<&DriftStatus>,
) -> DriftVerdict {
    if report.counts.create > 0 {
        return DriftVerdict::Redeploy;
    }
    if !is_drifted(report) {
        return DriftVerdict::InSync;
    }
    match policy {
        DriftPolicy::Correct => DriftVerdict::Redeploy,
        DriftPolicy::Report | DriftPolicy::Ignore => DriftVerdict::Report {
            announce: previous.is_none_or(|p| p.resources != report.resources),
        },
    }
}

/// One line naming what drifted, for Events: `sku.name of .../storageAccounts/acct1`.
pub fn describe(report: &DriftStatus) -> String {
    let items: Vec<String> = report
        .resources
        .iter()
        .map(|r| {
            let paths: Vec<&str> = r.properties.iter().map(|p| p.path.as_str()).collect();
            if paths.is_empty() {
                format!("{} ({})", r.id, r.change_type)
            } else {
                format!("{} of {}", paths.join(", "), r.id)
            }
        })
        .collect();
    format!("drift {}: {}", report.summary, items.join("; "))
}

/// The values of secure parameters: those the template declares `secureString` or
/// `secureObject` (their default included) and those read from Secrets
/// (`from_secrets`). Every string inside them is a secret.
pub fn secure_values(
    template: &Value,
    parameters: &Map<String, Value>,
    from_secrets: &[&str],
) -> Vec<String> {
    let declared = template.get("parameters").and_then(Value::as_object);
    let secure_type = |name: &str| {
        declared
            .and_then(|d| d.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("secure"))
    };
    let mut names: BTreeSet<&str> = from_secrets.iter().copied().collect();
    names.extend(
        declared
            .into_iter()
            .flat_map(|d| d.keys())
            .map(String::as_str)
            .filter(|n| secure_type(n)),
    );
    let mut values = Vec::new();
    for name in names {
        let value = parameters
            .get(name)
            .and_then(|p| p.get("value"))
            .or_else(|| {
                declared
                    .and_then(|d| d.get(name))
                    .and_then(|p| p.get("defaultValue"))
            });
        if let Some(value) = value {
            strings(value, &mut values);
        }
    }
    values.retain(|v| !v.is_empty());
    values
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// Secrets shorter than this are redacted only where a whole string equals them (a
/// substring match would hide most values).
const MIN_EMBEDDED_SECRET: usize = 4;

/// `value` with every string that holds a secret replaced by [`REDACTED`].
pub fn redact(value: &Value, secrets: &[String]) -> Value {
    let holds_secret = |s: &str| {
        secrets.iter().any(|secret| {
            s == secret || (secret.len() >= MIN_EMBEDDED_SECRET && s.contains(secret.as_str()))
        })
    };
    match value {
        Value::String(s) if holds_secret(s) => Value::String(REDACTED.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, secrets)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact(v, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A value whose JSON text is too long becomes the start of that text.
fn bounded(value: Value, truncated: &mut bool) -> Value {
    let text = value.to_string();
    if text.len() <= DRIFT_MAX_VALUE_CHARS {
        return value;
    }
    *truncated = true;
    let mut end = DRIFT_MAX_VALUE_CHARS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct";

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn property(
        path: &str,
        change_type: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> PropertyChange {
        PropertyChange {
            path: path.into(),
            change_type: change_type.into(),
            before,
            after,
        }
    }

    fn modify(delta: Vec<PropertyChange>) -> ResourceChange {
        ResourceChange {
            id: ACCOUNT.into(),
            change_type: ChangeType::Modify,
            delta,
        }
    }

    #[test]
    fn read_only_and_defaulted_properties_are_not_drift() {
        let noise = modify(vec![
            property(
                "properties.provisioningState",
                "NoEffect",
                Some(json!("Succeeded")),
                None,
            ),
            property(
                "properties.primaryEndpoints",
                "Delete",
                Some(json!({"blob": "x"})),
                None,
            ),
        ]);
        let r = report(&[noise], &[], None, now());
        assert_eq!(r.summary, "None");
        assert_eq!(r.counts.no_change, 1);
        assert!(r.resources.is_empty());
        assert_eq!(verdict(DriftPolicy::Report, &r, None), DriftVerdict::InSync);
    }

    #[test]
    fn a_modified_property_is_reported_with_path_and_values() {
        let change = modify(vec![
            property(
                "sku.name",
                "Modify",
                Some(json!("Standard_GRS")),
                Some(json!("Standard_LRS")),
            ),
            property("tags.owner", "Delete", Some(json!("someone")), None),
            property("properties.creationTime", "Delete", Some(json!("t")), None),
        ]);
        let r = report(&[change], &[], Some("1".into()), now());
        assert_eq!(r.summary, "Modify=1");
        assert_eq!(r.check_request.as_deref(), Some("1"));
        assert_eq!(r.last_check_time, Some(Time(now())));
        let paths: Vec<&str> = r.resources[0]
            .properties
            .iter()
            .map(|p| p.path.as_str())
            .collect();
        assert_eq!(paths, ["sku.name", "tags.owner"]);
        assert_eq!(
            r.resources[0].properties[0].before,
            Some(json!("Standard_GRS"))
        );
        assert_eq!(
            r.resources[0].properties[0].after,
            Some(json!("Standard_LRS"))
        );
        assert_eq!(
            describe(&r),
            format!("drift Modify=1: sku.name, tags.owner of {ACCOUNT}")
        );
    }

    #[test]
    fn report_announces_each_new_drift_once() {
        let first = report(
            &[modify(vec![property(
                "sku.name",
                "Modify",
                Some(json!("a")),
                Some(json!("b")),
            )])],
            &[],
            None,
            now(),
        );
        assert_eq!(
            verdict(DriftPolicy::Report, &first, None),
            DriftVerdict::Report { announce: true }
        );
        assert_eq!(
            verdict(DriftPolicy::Report, &first, Some(&first)),
            DriftVerdict::Report { announce: false }
        );
        let other = report(
            &[modify(vec![property(
                "sku.name",
                "Modify",
                Some(json!("c")),
                Some(json!("b")),
            )])],
            &[],
            None,
            now(),
        );
        assert_eq!(
            verdict(DriftPolicy::Report, &other, Some(&first)),
            DriftVerdict::Report { announce: true }
        );
        assert_eq!(
            verdict(DriftPolicy::Correct, &first, None),
            DriftVerdict::Redeploy
        );
    }

    #[test]
    fn missing_resources_are_recreated_under_every_policy() {
        let gone = ResourceChange {
            id: ACCOUNT.into(),
            change_type: ChangeType::Create,
            delta: vec![],
        };
        let r = report(&[gone], &[], None, now());
        assert_eq!(r.summary, "Create=1");
        assert_eq!(r.resources[0].change_type, "Create");
        for policy in [DriftPolicy::Report, DriftPolicy::Correct] {
            assert_eq!(verdict(policy, &r, None), DriftVerdict::Redeploy);
        }
    }

    #[test]
    fn unmanaged_and_unpredictable_resources_are_not_drift() {
        let changes: Vec<ResourceChange> = [
            ChangeType::Ignore,
            ChangeType::Deploy,
            ChangeType::Unsupported,
            ChangeType::NoChange,
        ]
        .into_iter()
        .map(|change_type| ResourceChange {
            id: ACCOUNT.into(),
            change_type,
            delta: vec![],
        })
        .collect();
        let r = report(&changes, &[], None, now());
        assert_eq!(r.summary, "None");
        assert_eq!(r.counts.ignore, 2);
        assert_eq!(r.counts.no_change, 2);
        assert_eq!(ChangeType::parse("Bogus"), ChangeType::Unsupported);
    }

    #[test]
    fn secure_values_are_redacted() {
        let template = json!({"parameters": {
            "adminPassword": {"type": "secureString"},
            "token": {"type": "SecureString", "defaultValue": "default-t0ken"},
            "name": {"type": "string"}
        }});
        let parameters = serde_json::from_value(json!({
            "adminPassword": {"value": "hunter2"},
            "name": {"value": "acct"},
            "fromSecret": {"value": {"key": "s3cret"}}
        }))
        .unwrap();
        let secrets = secure_values(&template, &parameters, &["fromSecret"]);
        assert_eq!(secrets, ["hunter2", "s3cret", "default-t0ken"]);
        let change = modify(vec![property(
            "properties.settings",
            "Modify",
            Some(json!({"password": "old", "conn": "Server=x;Password=hunter2", "name": "acct"})),
            Some(json!({"password": "s3cret", "conn": "default-t0ken"})),
        )]);
        let r = report(&[change], &secrets, None, now());
        let p = &r.resources[0].properties[0];
        assert_eq!(
            p.before,
            Some(json!({"password": "old", "conn": REDACTED, "name": "acct"}))
        );
        assert_eq!(
            p.after,
            Some(json!({"password": REDACTED, "conn": REDACTED}))
        );
        let text = serde_json::to_string(&r).unwrap();
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
    }

    #[test]
    fn the_report_is_bounded() {
        let many: Vec<ResourceChange> = (0..DRIFT_MAX_RESOURCES + 5)
            .map(|i| ResourceChange {
                id: format!("{ACCOUNT}{i}"),
                change_type: ChangeType::Modify,
                delta: (0..DRIFT_MAX_PROPERTIES + 3)
                    .map(|j| {
                        property(
                            &format!("tags.t{j}"),
                            "Modify",
                            Some(json!("x".repeat(2000))),
                            Some(json!("y")),
                        )
                    })
                    .collect(),
            })
            .collect();
        let r = report(&many, &[], None, now());
        assert!(r.truncated);
        assert_eq!(r.counts.modify as usize, DRIFT_MAX_RESOURCES + 5);
        assert_eq!(r.resources.len(), DRIFT_MAX_RESOURCES);
        assert_eq!(r.resources[0].properties.len(), DRIFT_MAX_PROPERTIES);
        let before = r.resources[0].properties[0].before.as_ref().unwrap();
        assert!(before.as_str().unwrap().chars().count() <= DRIFT_MAX_VALUE_CHARS + 1);
        assert!(serde_json::to_string(&r).unwrap().len() < 300_000);
    }
}
