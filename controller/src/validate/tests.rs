use serde_json::{Value, json};

use super::*;
use crate::azure::DeploymentScope;

fn object(yaml: &str) -> AzureResource {
    // Through JSON: serde_yaml wants YAML tags for enums, the API server sends JSON.
    let value: Value = serde_yaml::from_str(yaml).expect("fixture is YAML");
    serde_json::from_value(value).expect("fixture is an AzureResource")
}

const BASE: &str = r#"
apiVersion: azure-driver.io/v1alpha1
kind: AzureResource
metadata:
  name: storage
  namespace: team-a
  uid: 6f1c2a4e-0000-4000-8000-000000000001
spec:
  subscriptionId: 00000000-0000-0000-0000-000000000001
  resourceGroup: rg-a
  location: westeurope
  template:
    json: {resources: []}
"#;

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

fn adopting(id: &str) -> crate::error::Result<Owned> {
    Ok(owned(&object(&ADOPT_YAML.replace("ID", id)), None)?)
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

#[test]
fn a_valid_object_is_derived_once() {
    let o = object(BASE);
    let valid = validate(&o, None, Some(&json!({"resources": []}))).unwrap();
    assert_eq!(valid.owned, Owned::Deployment(target(&o, None).unwrap()));
    assert_eq!(valid.sync_interval, Some(Duration::from_secs(3600)));

    let mut never = o.clone();
    never.spec.sync_interval = "0".into();
    assert_eq!(validate(&never, None, None).unwrap().sync_interval, None);
}

#[test]
fn refusals_carry_their_reason() {
    let o = object(BASE);
    let not_object = validate(&o, None, Some(&json!([1]))).unwrap_err();
    assert_eq!(not_object.category, Category::Template);
    assert_eq!(Error::from(not_object).reason(), "InvalidTemplate");

    let mut too_often = o.clone();
    too_often.spec.sync_interval = "500ms".into();
    let refused = validate(&too_often, None, None).unwrap_err();
    assert_eq!(refused.category, Category::Spec);
    assert!(refused.message.contains("500ms"), "{refused}");
    assert_eq!(Error::from(refused).reason(), "InvalidSpec");

    let mut no_subscription = o;
    no_subscription.spec.subscription_id = None;
    let refused = validate(&no_subscription, None, None).unwrap_err();
    assert_eq!(refused.category.reason(), "InvalidSpec");
    assert!(refused.message.contains("subscriptionId"), "{refused}");
    let valid = validate(&no_subscription, Some("from-credentials"), None).unwrap();
    match valid.owned {
        Owned::Deployment(t) => assert_eq!(t.scope.subscription_id(), "from-credentials"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deletion_needs_only_the_removal() {
    let mut o = object(BASE);
    o.spec.sync_interval = "500ms".into();
    o.spec.resource_group = None;
    assert_eq!(removal(&o.spec).unwrap(), Removal::Stack);
    o.spec.engine = crds::Engine::Deployment;
    assert_eq!(removal(&o.spec).unwrap(), Removal::Deployment);
    assert_eq!(Removal::from(Engine::Stack), Removal::Stack);
    assert_eq!(Removal::from(Engine::Deployment), Removal::Deployment);
    assert_eq!(
        unmanage_action(DeletionPolicy::Delete),
        UnmanageAction::Delete
    );
    assert_eq!(
        unmanage_action(DeletionPolicy::Orphan),
        UnmanageAction::Detach
    );
}
