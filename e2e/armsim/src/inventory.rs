//! What exists: every resource (resource groups included) by lower-cased id, with
//! the body a GET returns, and a log of every create, update and delete.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::route::key;

/// One existing resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    pub id: String,
    pub resource_type: String,
    pub body: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InventoryAction {
    Created,
    Updated,
    Deleted,
}

/// One entry of the inventory's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEvent {
    pub id: String,
    pub resource_type: String,
    pub action: InventoryAction,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub(crate) struct Inventory {
    items: BTreeMap<String, InventoryItem>,
    events: Vec<InventoryEvent>,
    created: HashMap<String, usize>,
}

impl Inventory {
    pub fn get(&self, id: &str) -> Option<&InventoryItem> {
        self.items.get(&key(id))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut InventoryItem> {
        self.items.get_mut(&key(id))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.items.contains_key(&key(id))
    }

    /// Creates or replaces a resource and logs which it was.
    pub fn put(&mut self, item: InventoryItem) -> InventoryAction {
        let k = key(&item.id);
        let action = if self.items.contains_key(&k) {
            InventoryAction::Updated
        } else {
            *self.created.entry(k.clone()).or_default() += 1;
            InventoryAction::Created
        };
        self.log(&item.id, &item.resource_type, action);
        self.items.insert(k, item);
        action
    }

    /// Deletes a resource and everything below it (children, or a resource group's
    /// contents), deepest first. Returns the deleted ids.
    pub fn remove_tree(&mut self, id: &str) -> Vec<String> {
        let k = key(id);
        let mut keys: Vec<String> = self.descendant_keys(&k);
        keys.sort_by_key(|k| std::cmp::Reverse(k.matches('/').count()));
        if self.items.contains_key(&k) {
            keys.push(k);
        }
        let mut removed = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(item) = self.items.remove(&k) {
                self.log(&item.id, &item.resource_type, InventoryAction::Deleted);
                removed.push(item.id);
            }
        }
        removed
    }

    /// Keys strictly below `k`: a range scan, since `'/' + 1 == '0'`.
    fn descendant_keys(&self, k: &str) -> Vec<String> {
        self.items
            .range(format!("{k}/")..format!("{k}0"))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Resources below a scope id (e.g. a resource group's contents).
    pub fn under(&self, scope_id: &str) -> Vec<&InventoryItem> {
        let k = key(scope_id);
        self.items
            .range(format!("{k}/")..format!("{k}0"))
            .map(|(_, item)| item)
            .collect()
    }

    pub fn items(&self) -> impl Iterator<Item = &InventoryItem> {
        self.items.values()
    }

    pub fn events(&self) -> &[InventoryEvent] {
        &self.events
    }

    pub fn created_count(&self, id: &str) -> usize {
        self.created.get(&key(id)).copied().unwrap_or(0)
    }

    fn log(&mut self, id: &str, resource_type: &str, action: InventoryAction) {
        self.events.push(InventoryEvent {
            id: id.to_owned(),
            resource_type: resource_type.to_owned(),
            action,
            at: Utc::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: &str, resource_type: &str) -> InventoryItem {
        InventoryItem {
            id: id.into(),
            resource_type: resource_type.into(),
            body: json!({ "id": id }),
        }
    }

    #[test]
    fn put_logs_create_then_update_and_counts_creations() {
        let mut inventory = Inventory::default();
        let id =
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/sa";
        assert_eq!(
            inventory.put(item(id, "Microsoft.Storage/storageAccounts")),
            InventoryAction::Created
        );
        assert_eq!(
            inventory.put(item(
                &id.to_uppercase(),
                "Microsoft.Storage/storageAccounts"
            )),
            InventoryAction::Updated
        );
        assert_eq!(inventory.created_count(&id.to_lowercase()), 1);
        assert!(inventory.contains(id));
        assert_eq!(inventory.remove_tree(id).len(), 1);
        assert_eq!(
            inventory.put(item(id, "Microsoft.Storage/storageAccounts")),
            InventoryAction::Created
        );
        assert_eq!(inventory.created_count(id), 2);
        let actions: Vec<_> = inventory.events().iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [
                InventoryAction::Created,
                InventoryAction::Updated,
                InventoryAction::Deleted,
                InventoryAction::Created
            ]
        );
    }

    #[test]
    fn remove_tree_takes_children_first_and_leaves_siblings() {
        let mut inventory = Inventory::default();
        let rg = "/subscriptions/s/resourceGroups/rg";
        let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/v");
        let subnet = format!("{vnet}/subnets/a");
        let sibling_rg = "/subscriptions/s/resourceGroups/rg2";
        inventory.put(item(rg, "Microsoft.Resources/resourceGroups"));
        inventory.put(item(&vnet, "Microsoft.Network/virtualNetworks"));
        inventory.put(item(&subnet, "Microsoft.Network/virtualNetworks/subnets"));
        inventory.put(item(sibling_rg, "Microsoft.Resources/resourceGroups"));
        assert_eq!(inventory.under(rg).len(), 2);
        assert_eq!(
            inventory.remove_tree(&vnet),
            vec![subnet.clone(), vnet.clone()]
        );
        inventory.put(item(&vnet, "Microsoft.Network/virtualNetworks"));
        assert_eq!(inventory.remove_tree(rg), vec![vnet, rg.to_string()]);
        assert!(inventory.contains(sibling_rg));
    }
}
