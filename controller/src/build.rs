//! Pure construction of the ARM deployment request from an object and its resolved
//! inputs: validation, the stable deployment name and the applied hash.

use std::fmt;

use crds::{
    AdoptedId, AdoptedKind, AzureResource, AzureResourceSpec, DeletionPolicy, DeploymentMode,
    Scope, deployment_name,
};
use kube::ResourceExt;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::azure::{
    DeploymentRequest, DeploymentScope, Engine, Mode, Parameters, Target, UnmanageAction,
};
use crate::decide::Removal;
use crate::error::{Error, Result};

/// What the object refers to, read from the cluster. `Debug` hides parameter values.
#[derive(Clone, PartialEq)]
pub struct ResolvedInputs {
    /// The ARM template, compiled from Bicep when needed.
    pub template: Value,
    /// `parametersFrom` values in spec order.
    pub parameters_from: Vec<(String, Value)>,
    /// `subscriptionId` of the credentials, the fallback for `spec.subscriptionId`.
    pub credential_subscription_id: Option<String>,
}

impl fmt::Debug for ResolvedInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedInputs")
            .field(
                "parameters_from",
                &self
                    .parameters_from
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .field(
                "credential_subscription_id",
                &self.credential_subscription_id,
            )
            .finish_non_exhaustive()
    }
}

/// A `parametersFrom` value: JSON when it parses as JSON, else the string itself.
pub fn parameter_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The ARM target of an object, without resolving its inputs (deletion needs only this).
pub fn target(object: &AzureResource, credential_subscription_id: Option<&str>) -> Result<Target> {
    let spec = &object.spec;
    let subscription_id = spec
        .subscription_id
        .as_deref()
        .or(credential_subscription_id)
        .ok_or_else(|| {
            Error::InvalidSpec(
                "no subscription: set spec.subscriptionId or subscriptionId in the credentials"
                    .into(),
            )
        })?
        .to_owned();
    let scope = match spec.scope {
        Scope::ResourceGroup => DeploymentScope::ResourceGroup {
            subscription_id,
            resource_group: spec.resource_group.clone().ok_or_else(|| {
                Error::InvalidSpec("spec.resourceGroup is required for scope ResourceGroup".into())
            })?,
        },
        Scope::Subscription => DeploymentScope::Subscription {
            subscription_id,
            location: spec.location.clone().ok_or_else(|| {
                Error::InvalidSpec("spec.location is required for scope Subscription".into())
            })?,
        },
    };
    let engine = spec.engine;
    let uid = object
        .uid()
        .ok_or_else(|| Error::InvalidSpec("object has no uid".into()))?;
    Ok(Target {
        scope,
        engine,
        name: deployment_name(
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
            &uid,
        ),
    })
}

/// The Azure object an object stands for: what is observed and, on deletion, removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// A deployment or deployment stack (deployed from the template, or adopted).
    Deployment(Target),
    /// An adopted resource group or other resource, removed by id.
    Resource(String),
}

/// What the object owns in Azure: its own deployment, or the adopted id.
pub fn owned(object: &AzureResource, credential_subscription_id: Option<&str>) -> Result<Owned> {
    let Some(adopt) = &object.spec.adopt else {
        return target(object, credential_subscription_id).map(Owned::Deployment);
    };
    let adopted = AdoptedId::parse(&adopt.id).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let scope = match adopted.resource_group {
        Some(resource_group) => DeploymentScope::ResourceGroup {
            subscription_id: adopted.subscription_id,
            resource_group,
        },
        // Reads and deletes of a subscription-level deployment do not use its location.
        None => DeploymentScope::Subscription {
            subscription_id: adopted.subscription_id,
            location: object.spec.location.clone().unwrap_or_default(),
        },
    };
    Ok(match adopted.kind {
        AdoptedKind::Stack { name } => Owned::Deployment(Target {
            scope,
            engine: Engine::Stack,
            name,
        }),
        AdoptedKind::Deployment { name } => Owned::Deployment(Target {
            scope,
            engine: Engine::Deployment,
            name,
        }),
        AdoptedKind::ResourceGroup | AdoptedKind::Resource => Owned::Resource(adopted.id),
    })
}

/// How deleting the object removes its Azure side (read from the spec alone, so that an
/// orphaning delete needs no credentials).
pub fn removal(spec: &AzureResourceSpec) -> Result<Removal> {
    let Some(adopt) = &spec.adopt else {
        return Ok(match spec.engine {
            crds::Engine::Stack => Removal::Stack,
            crds::Engine::Deployment => Removal::Deployment,
        });
    };
    let adopted = AdoptedId::parse(&adopt.id).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    Ok(match adopted.kind {
        AdoptedKind::Stack { .. } => Removal::Stack,
        AdoptedKind::Deployment { .. } => Removal::Deployment,
        AdoptedKind::ResourceGroup | AdoptedKind::Resource => Removal::Resource,
    })
}

/// What a stack does with its resources on deletion, per `deletionPolicy`.
pub fn unmanage_action(policy: DeletionPolicy) -> UnmanageAction {
    match policy {
        DeletionPolicy::Delete => UnmanageAction::Delete,
        DeletionPolicy::Orphan => UnmanageAction::Detach,
    }
}

/// Builds the deployment request. Fails with a terminal error on an inconsistent spec.
pub fn build(object: &AzureResource, inputs: &ResolvedInputs) -> Result<DeploymentRequest> {
    let spec = &object.spec;
    let target = target(object, inputs.credential_subscription_id.as_deref())?;
    if !inputs.template.is_object() {
        return Err(Error::InvalidTemplate(
            "the template is not a JSON object".into(),
        ));
    }
    let mut parameters = Map::new();
    for (name, value) in &spec.parameters {
        parameters.insert(name.clone(), json!({ "value": value }));
    }
    for (name, value) in &inputs.parameters_from {
        parameters.insert(name.clone(), json!({ "value": value }));
    }

    let mode = match (spec.engine, spec.mode) {
        (crds::Engine::Deployment, DeploymentMode::Complete) => Mode::Complete,
        _ => Mode::Incremental,
    };
    // Without a location the group cannot be created; it must then exist already.
    let ensure_resource_group = match spec.scope {
        Scope::ResourceGroup if spec.create_resource_group => spec.location.clone(),
        _ => None,
    };
    let on_unmanage = unmanage_action(spec.deletion_policy);

    let mut hashed = vec![
        json!(format!("{target:?}")),
        inputs.template.clone(),
        Value::Object(parameters.clone()),
        json!(format!(
            "{mode:?}/{ensure_resource_group:?}/{on_unmanage:?}"
        )),
    ];
    // Only when set: objects without a token keep the hash they were deployed with.
    if let Some(token) = &spec.redeploy_token {
        hashed.push(json!(token));
    }
    let applied_hash = applied_hash(&hashed);
    Ok(DeploymentRequest {
        target,
        template: inputs.template.clone(),
        parameters: Parameters(parameters),
        mode,
        ensure_resource_group,
        on_unmanage,
        applied_hash,
    })
}

/// SHA-256 over the parts' JSON text; only the digest is ever stored.
fn applied_hash(parts: &[Value]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.to_string().as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
apiVersion: azure-driver.io/v1alpha1
kind: AzureResource
metadata:
  name: storage
  namespace: team-a
  uid: 6f1c2a4e-0000-4000-8000-000000000001
  generation: 1
spec:
  subscriptionId: 00000000-0000-0000-0000-000000000001
  resourceGroup: rg-a
  location: westeurope
  template:
    json:
      $schema: https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#
      contentVersion: 1.0.0.0
      parameters:
        name: {type: string}
      resources: []
  parameters:
    name: acct1
"#;

    fn object(yaml: &str) -> AzureResource {
        // Through JSON: serde_yaml wants YAML tags for enums, the API server sends JSON.
        let value: Value = serde_yaml::from_str(yaml).expect("fixture is YAML");
        serde_json::from_value(value).expect("fixture is an AzureResource")
    }

    fn inputs(object: &AzureResource) -> ResolvedInputs {
        let template = match &object.spec.template {
            Some(crds::TemplateSource::Json(t)) => Value::Object(t.clone()),
            _ => json!({}),
        };
        ResolvedInputs {
            template,
            parameters_from: vec![],
            credential_subscription_id: None,
        }
    }

    #[test]
    fn builds_a_resource_group_stack_request() {
        let o = object(BASE);
        let r = build(&o, &inputs(&o)).unwrap();
        assert_eq!(r.target.engine, Engine::Stack);
        assert_eq!(
            r.target.scope,
            DeploymentScope::ResourceGroup {
                subscription_id: "00000000-0000-0000-0000-000000000001".into(),
                resource_group: "rg-a".into()
            }
        );
        assert_eq!(r.parameters.0["name"], json!({"value": "acct1"}));
        assert_eq!(r.ensure_resource_group.as_deref(), Some("westeurope"));
        assert_eq!(r.on_unmanage, UnmanageAction::Delete);
        assert_eq!(r.mode, Mode::Incremental);
        assert_eq!(r.applied_hash.len(), 64);
    }

    #[test]
    fn hash_is_stable_and_follows_every_input() {
        let o = object(BASE);
        let i = inputs(&o);
        let h = build(&o, &i).unwrap().applied_hash;
        assert_eq!(build(&o, &i).unwrap().applied_hash, h);

        let mut changed = o.clone();
        changed
            .spec
            .parameters
            .insert("name".into(), json!("acct2"));
        assert_ne!(build(&changed, &i).unwrap().applied_hash, h);

        let mut from = i.clone();
        from.parameters_from.push(("extra".into(), json!("s3cret")));
        assert_ne!(build(&o, &from).unwrap().applied_hash, h);

        let mut orphan = o.clone();
        orphan.spec.deletion_policy = DeletionPolicy::Orphan;
        assert_ne!(build(&orphan, &i).unwrap().applied_hash, h);

        let mut interval = o.clone();
        interval.spec.sync_interval = "5m".into();
        assert_eq!(build(&interval, &i).unwrap().applied_hash, h);
    }

    #[test]
    fn parameters_from_win_and_never_show_in_debug() {
        let o = object(BASE);
        let mut i = inputs(&o);
        i.parameters_from.push(("name".into(), json!("s3cret")));
        let r = build(&o, &i).unwrap();
        assert_eq!(r.parameters.0["name"], json!({"value": "s3cret"}));
        assert!(!format!("{r:?}").contains("s3cret"));
        assert!(!format!("{i:?}").contains("s3cret"));
    }

    #[test]
    fn subscription_falls_back_to_the_credentials() {
        let mut o = object(BASE);
        o.spec.subscription_id = None;
        let mut i = inputs(&o);
        assert!(matches!(build(&o, &i), Err(Error::InvalidSpec(_))));
        i.credential_subscription_id = Some("sub-from-secret".into());
        let r = build(&o, &i).unwrap();
        assert_eq!(r.target.scope.subscription_id(), "sub-from-secret");
    }

    #[test]
    fn inconsistent_specs_are_terminal() {
        let mut no_rg = object(BASE);
        no_rg.spec.resource_group = None;
        let err = build(&no_rg, &inputs(&no_rg)).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("resourceGroup"));

        let mut sub = object(BASE);
        sub.spec.scope = Scope::Subscription;
        sub.spec.location = None;
        assert!(matches!(
            build(&sub, &inputs(&sub)),
            Err(Error::InvalidSpec(_))
        ));

        let o = object(BASE);
        let mut not_object = inputs(&o);
        not_object.template = json!([1]);
        assert!(matches!(
            build(&o, &not_object),
            Err(Error::InvalidTemplate(_))
        ));
    }

    #[test]
    fn subscription_scope_carries_the_location() {
        let mut o = object(BASE);
        o.spec.scope = Scope::Subscription;
        let r = build(&o, &inputs(&o)).unwrap();
        assert_eq!(
            r.target.scope,
            DeploymentScope::Subscription {
                subscription_id: "00000000-0000-0000-0000-000000000001".into(),
                location: "westeurope".into()
            }
        );
        assert_eq!(r.ensure_resource_group, None);
    }

    #[test]
    fn complete_mode_only_for_the_deployment_engine() {
        let mut o = object(BASE);
        o.spec.mode = DeploymentMode::Complete;
        assert_eq!(build(&o, &inputs(&o)).unwrap().mode, Mode::Incremental);
        o.spec.engine = crds::Engine::Deployment;
        assert_eq!(build(&o, &inputs(&o)).unwrap().mode, Mode::Complete);
    }

    #[test]
    fn a_new_redeploy_token_changes_the_hash() {
        let mut o = object(BASE);
        let plain = build(&o, &inputs(&o)).unwrap().applied_hash;
        o.spec.redeploy_token = Some("request-1".into());
        let first = build(&o, &inputs(&o)).unwrap().applied_hash;
        o.spec.redeploy_token = Some("request-2".into());
        let second = build(&o, &inputs(&o)).unwrap().applied_hash;
        assert_ne!(plain, first);
        assert_ne!(first, second);
        o.spec.redeploy_token = None;
        assert_eq!(build(&o, &inputs(&o)).unwrap().applied_hash, plain);
    }

    #[test]
    fn parameter_values_parse_as_json_else_string() {
        assert_eq!(parameter_value("3"), json!(3));
        assert_eq!(parameter_value("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(parameter_value("plain text"), json!("plain text"));
    }

    const ADOPT_YAML: &str = r#"
apiVersion: azure-driver.io/v1alpha1
kind: AzureResource
metadata:
  name: legacy
  namespace: brent
  uid: 0b8c1f7e-0000-4000-8000-000000000002
spec:
  adopt:
    id: ID
"#;

    fn adopting(id: &str) -> Result<Owned> {
        owned(&object(&ADOPT_YAML.replace("ID", id)), None)
    }

    #[test]
    fn adopted_ids_own_what_they_name() {
        let sub = "00000000-0000-0000-0000-000000000001";
        let group = DeploymentScope::ResourceGroup {
            subscription_id: sub.into(),
            resource_group: "rg-a".into(),
        };
        assert_eq!(
            adopting(&format!(
                "/subscriptions/{sub}/resourceGroups/rg-a/providers/Microsoft.Resources/deployments/vnet1"
            ))
            .unwrap(),
            Owned::Deployment(Target {
                scope: group.clone(),
                engine: Engine::Deployment,
                name: "vnet1".into()
            })
        );
        assert_eq!(
            adopting(&format!(
                "/subscriptions/{sub}/resourceGroups/rg-a/providers/Microsoft.Resources/deploymentStacks/s"
            ))
            .unwrap(),
            Owned::Deployment(Target {
                scope: group,
                engine: Engine::Stack,
                name: "s".into()
            })
        );
        let rg = format!("/subscriptions/{sub}/resourceGroups/rg-a");
        assert_eq!(adopting(&rg).unwrap(), Owned::Resource(rg.clone()));
        assert!(matches!(
            adopting("/subscriptions/x/locations/y"),
            Err(Error::InvalidSpec(_))
        ));
        let stack = object(&ADOPT_YAML.replace(
            "ID",
            &format!("/subscriptions/{sub}/providers/Microsoft.Resources/deploymentStacks/s"),
        ));
        assert_eq!(removal(&stack.spec).unwrap(), Removal::Stack);
        let group = object(&ADOPT_YAML.replace("ID", &rg));
        assert_eq!(removal(&group.spec).unwrap(), Removal::Resource);
    }

    #[test]
    fn objects_with_a_template_own_their_deployment() {
        let o = object(BASE);
        assert_eq!(
            owned(&o, None).unwrap(),
            Owned::Deployment(target(&o, None).unwrap())
        );
        assert_eq!(removal(&o.spec).unwrap(), Removal::Stack);
    }
}
