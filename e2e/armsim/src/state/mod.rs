//! Everything the simulator remembers besides tokens and counters: the inventory,
//! deployment and stack records, locks, and long-running operations.

pub(crate) mod deployment;
pub(crate) mod lock;
pub(crate) mod operations;
pub(crate) mod stack;

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::error::ArmError;
use crate::inventory::{Inventory, InventoryItem};
use crate::route::{Route, Scope};
use crate::template::PlannedResource;
use deployment::{DEPLOYMENT_TYPE, DeploymentRecord};
use lock::Locks;
use operations::Operations;
use stack::StackRecord;

pub(crate) const RESOURCE_GROUP_TYPE: &str = "Microsoft.Resources/resourceGroups";

#[derive(Debug, Default)]
pub(crate) struct State {
    pub inventory: Inventory,
    /// Deployment records by scope key, then lower-cased name, oldest first.
    pub deployments: HashMap<String, IndexMap<String, DeploymentRecord>>,
    /// Stacks by lower-cased stack id.
    pub stacks: HashMap<String, StackRecord>,
    pub operations: Operations,
    pub locks: Locks,
    generation: u64,
}

impl State {
    /// A number no other record has, so drivers notice their record was replaced.
    pub fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    pub fn start_operation(&mut self, status: &str, done_status: u16) -> String {
        self.operations.start(status, done_status)
    }

    pub fn set_operation(&mut self, id: &str, status: &str, error: Option<ArmError>) {
        self.operations.update(id, status, error);
    }

    pub fn deployment_mut(
        &mut self,
        scope_key: &str,
        name: &str,
        generation: u64,
    ) -> Option<&mut DeploymentRecord> {
        self.deployments
            .get_mut(scope_key)?
            .get_mut(&name.to_ascii_lowercase())
            .filter(|record| record.generation == generation)
    }

    /// Deletes a resource with everything below it, locks included; for a
    /// resource group that includes its deployment history and stacks.
    pub fn remove(&mut self, id: &str) -> Vec<String> {
        let removed = self.inventory.remove_tree(id);
        self.locks.remove_at_or_below(id);
        if let Route::ResourceGroup { subscription, name } = crate::route::parse(id) {
            let scope = Scope {
                subscription,
                resource_group: Some(name),
            };
            let scope_key = scope.key();
            self.deployments.remove(&scope_key);
            let prefix = format!("{scope_key}/");
            self.stacks
                .retain(|stack_key, _| !stack_key.starts_with(&prefix));
        }
        removed
    }

    /// Creates or updates one planned resource. Nested deployments become
    /// deployment records rather than inventory entries. Returns whether it is a
    /// resource that belongs in `outputResources`.
    pub fn apply(&mut self, resource: &PlannedResource, correlation_id: &str) -> bool {
        if resource.resource_type.eq_ignore_ascii_case(DEPLOYMENT_TYPE) {
            if let Route::Deployment { scope, name, .. } = crate::route::parse(&resource.id) {
                let generation = self.next_generation();
                let record = DeploymentRecord::nested(
                    &scope,
                    &name,
                    generation,
                    correlation_id,
                    resource.body.get("properties").unwrap_or(&Value::Null),
                );
                let records = self.deployments.entry(scope.key()).or_default();
                records.shift_remove(&name.to_ascii_lowercase());
                records.insert(name.to_ascii_lowercase(), record);
            }
            return false;
        }
        let mut body = resource.body.clone();
        if let Some(object) = body.as_object_mut() {
            object.entry("id").or_insert_with(|| json!(resource.id));
            object.entry("name").or_insert_with(|| json!(resource.name));
            object
                .entry("type")
                .or_insert_with(|| json!(resource.resource_type));
            let properties = object.entry("properties").or_insert_with(|| json!({}));
            if let Some(properties) = properties.as_object_mut() {
                properties
                    .entry("provisioningState")
                    .or_insert_with(|| json!("Succeeded"));
            }
        }
        self.inventory.put(InventoryItem {
            id: resource.id.clone(),
            resource_type: resource.resource_type.clone(),
            body,
        });
        true
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_deployments_become_records_not_resources() {
        let mut state = State::default();
        let nested = PlannedResource {
            id:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/inner"
                    .into(),
            resource_type: DEPLOYMENT_TYPE.into(),
            name: "inner".into(),
            api_version: "2025-04-01".into(),
            body: json!({ "properties": {
                "outputs": {
                    "o": { "type": "String", "value": "v" },
                    "key": { "type": "SecureString", "value": "hidden" }
                },
                "outputResources": [{ "id": "/subscriptions/s/resourceGroups/rg/providers/A.B/c/d" }]
            } }),
            depends_on: vec![],
        };
        assert!(!state.apply(&nested, "c"));
        let record = &state.deployments["/subscriptions/s/resourcegroups/rg"]["inner"];
        let body = record.body();
        assert_eq!(body["properties"]["outputs"]["o"]["value"], "v");
        assert_eq!(
            body["properties"]["outputs"]["key"],
            json!({ "type": "SecureString" })
        );
        assert_eq!(
            body["properties"]["outputResources"][0]["id"],
            "/subscriptions/s/resourceGroups/rg/providers/A.B/c/d"
        );
        assert_eq!(state.inventory.items().count(), 0);
        let account = PlannedResource {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"
                .into(),
            resource_type: "Microsoft.Storage/storageAccounts".into(),
            name: "sa".into(),
            api_version: "2023-01-01".into(),
            body: json!({ "location": "westeurope" }),
            depends_on: vec![],
        };
        assert!(state.apply(&account, "c"));
        let body = &state.inventory.get(&account.id).unwrap().body;
        assert_eq!(body["properties"]["provisioningState"], "Succeeded");
        assert_eq!(body["name"], "sa");
    }
}
