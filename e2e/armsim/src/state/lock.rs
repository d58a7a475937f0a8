//! Management locks (`Microsoft.Authorization/locks`): extension resources on a
//! subscription, resource group or resource. A lock applies to its scope and
//! everything below it: `CanNotDelete` refuses deletes, `ReadOnly` deletes and writes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{ArmError, ErrorDetail};
use crate::route::key;

pub(crate) const LOCK_TYPE: &str = "Microsoft.Authorization/locks";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockLevel {
    CanNotDelete,
    ReadOnly,
}

impl LockLevel {
    pub(crate) fn parse(value: Option<&Value>) -> Result<Self, ArmError> {
        match value.and_then(Value::as_str) {
            Some(v) if v.eq_ignore_ascii_case("CanNotDelete") => Ok(Self::CanNotDelete),
            Some(v) if v.eq_ignore_ascii_case("ReadOnly") => Ok(Self::ReadOnly),
            _ => Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid: 'properties.level' is required and must be 'CanNotDelete' or 'ReadOnly'.",
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::CanNotDelete => "CanNotDelete",
            Self::ReadOnly => "ReadOnly",
        }
    }

    fn refuses(self, operation: LockedOperation) -> bool {
        match operation {
            LockedOperation::Delete => true,
            LockedOperation::Write => self == Self::ReadOnly,
        }
    }
}

/// What a lock may refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockedOperation {
    Delete,
    Write,
}

impl LockedOperation {
    fn name(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Write => "write",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LockRecord {
    pub id: String,
    pub name: String,
    /// Canonical id of the locked scope.
    pub scope: String,
    pub level: LockLevel,
    pub notes: Option<String>,
}

impl LockRecord {
    pub fn body(&self) -> Value {
        let mut properties = json!({ "level": self.level.name() });
        if let Some(notes) = &self.notes {
            properties["notes"] = json!(notes);
        }
        json!({
            "id": self.id,
            "name": self.name,
            "type": LOCK_TYPE,
            "properties": properties,
        })
    }
}

/// Whether `id` is `scope` itself or below it: case-insensitive, and a prefix
/// counts only at a segment boundary (`.../rg1` does not cover `.../rg10`).
pub(crate) fn is_at_or_below(id: &str, scope: &str) -> bool {
    let id = key(id);
    let scope = key(scope);
    id.strip_prefix(&scope)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Every lock, by lower-cased lock id.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    by_id: BTreeMap<String, LockRecord>,
}

impl Locks {
    /// Adds or replaces a lock; whether one with its id existed.
    pub fn put(&mut self, lock: LockRecord) -> bool {
        self.by_id.insert(key(&lock.id), lock).is_some()
    }

    pub fn get(&self, id: &str) -> Option<&LockRecord> {
        self.by_id.get(&key(id))
    }

    pub fn remove(&mut self, id: &str) -> Option<LockRecord> {
        self.by_id.remove(&key(id))
    }

    /// Scope ids of the locks refusing `operation` on `id`. A delete takes
    /// everything below `id` with it, so locks below `id` refuse it too.
    pub fn blocking(&self, operation: LockedOperation, id: &str) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for lock in self.by_id.values() {
            let applies = is_at_or_below(id, &lock.scope)
                || (operation == LockedOperation::Delete && is_at_or_below(&lock.scope, id));
            if applies
                && lock.level.refuses(operation)
                && !scopes.iter().any(|s| key(s) == key(&lock.scope))
            {
                scopes.push(lock.scope.clone());
            }
        }
        scopes
    }

    /// ARM's 409 `ScopeLocked` when a lock refuses `operation` on `id`.
    pub fn check(&self, operation: LockedOperation, id: &str) -> Result<(), ArmError> {
        match self.refusal(operation, id) {
            None => Ok(()),
            Some(detail) => Err(ArmError::conflict(detail.code, detail.message)),
        }
    }

    /// The `ScopeLocked` detail a deployment reports for a refused resource.
    pub fn refusal(&self, operation: LockedOperation, id: &str) -> Option<ErrorDetail> {
        let scopes = self.blocking(operation, id);
        (!scopes.is_empty()).then(|| scope_locked(operation, id, &scopes))
    }

    /// Locks at or below `scope`, by id.
    pub fn at_or_below(&self, scope: &str) -> Vec<&LockRecord> {
        self.by_id
            .values()
            .filter(|lock| is_at_or_below(&lock.scope, scope))
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &LockRecord> {
        self.by_id.values()
    }

    /// Drops the locks of a deleted scope and of everything below it.
    pub fn remove_at_or_below(&mut self, scope: &str) {
        self.by_id
            .retain(|_, lock| !is_at_or_below(&lock.scope, scope));
    }
}

pub(crate) fn lock_id(scope: &str, name: &str) -> String {
    format!("{scope}/providers/{LOCK_TYPE}/{name}")
}

fn scope_locked(operation: LockedOperation, id: &str, scopes: &[String]) -> ErrorDetail {
    let scopes = scopes
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    ErrorDetail {
        code: "ScopeLocked".into(),
        message: format!(
            "The scope '{id}' cannot perform {} operation because following scope(s) are locked: {scopes}. Please remove the lock and try again.",
            operation.name()
        ),
        target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RG1: &str = "/subscriptions/s/resourceGroups/rg1";

    fn locks(entries: &[(&str, LockLevel)]) -> Locks {
        let mut locks = Locks::default();
        for (i, (scope, level)) in entries.iter().enumerate() {
            let lock = LockRecord {
                id: lock_id(scope, &format!("l{i}")),
                name: format!("l{i}"),
                scope: (*scope).to_owned(),
                level: *level,
                notes: None,
            };
            locks.by_id.insert(key(&lock.id), lock);
        }
        locks
    }

    #[test]
    fn scopes_match_case_insensitively_at_segment_boundaries() {
        assert!(is_at_or_below(RG1, RG1));
        assert!(is_at_or_below(
            "/SUBSCRIPTIONS/s/resourcegroups/RG1/providers/A.B/c/d",
            RG1
        ));
        assert!(is_at_or_below(&format!("{RG1}/"), RG1));
        assert!(!is_at_or_below("/subscriptions/s/resourceGroups/rg10", RG1));
        assert!(!is_at_or_below(
            "/subscriptions/s/resourceGroups/rg10/providers/A.B/c/d",
            RG1
        ));
        assert!(!is_at_or_below("/subscriptions/s", RG1));
        assert!(is_at_or_below(RG1, "/subscriptions/s"));
    }

    #[test]
    fn deletes_are_refused_at_below_and_above_a_lock() {
        let vnet = format!("{RG1}/providers/Microsoft.Network/virtualNetworks/v");
        let locks = locks(&[(&vnet, LockLevel::CanNotDelete)]);
        let subnet = format!("{vnet}/subnets/a");
        for id in [vnet.as_str(), subnet.as_str(), RG1, "/subscriptions/s"] {
            assert_eq!(
                locks.blocking(LockedOperation::Delete, id),
                vec![vnet.clone()],
                "{id}"
            );
        }
        let sibling = format!("{RG1}/providers/Microsoft.Network/virtualNetworks/v2");
        assert!(locks.blocking(LockedOperation::Delete, &sibling).is_empty());
        assert!(
            locks
                .blocking(
                    LockedOperation::Delete,
                    "/subscriptions/s/resourceGroups/rg10"
                )
                .is_empty()
        );
        assert!(locks.blocking(LockedOperation::Write, &vnet).is_empty());
    }

    #[test]
    fn read_only_refuses_writes_at_and_below_only() {
        let vnet = format!("{RG1}/providers/Microsoft.Network/virtualNetworks/v");
        let locks = locks(&[(RG1, LockLevel::ReadOnly), (RG1, LockLevel::CanNotDelete)]);
        assert_eq!(locks.blocking(LockedOperation::Write, &vnet), vec![RG1]);
        assert_eq!(locks.blocking(LockedOperation::Delete, &vnet), vec![RG1]);
        assert!(
            locks
                .blocking(LockedOperation::Write, "/subscriptions/s")
                .is_empty()
        );
        let error = locks.check(LockedOperation::Write, &vnet).unwrap_err();
        assert_eq!(error.status, 409);
        assert_eq!(error.code, "ScopeLocked");
        assert_eq!(
            error.message,
            format!(
                "The scope '{vnet}' cannot perform write operation because following scope(s) are locked: '{RG1}'. Please remove the lock and try again."
            )
        );
    }

    #[test]
    fn levels_parse_case_insensitively_and_refuse_anything_else() {
        assert_eq!(
            LockLevel::parse(Some(&json!("readonly"))).unwrap(),
            LockLevel::ReadOnly
        );
        assert_eq!(
            LockLevel::parse(Some(&json!("CanNotDelete"))).unwrap(),
            LockLevel::CanNotDelete
        );
        for bad in [None, Some(json!("NotSpecified")), Some(json!(1))] {
            assert_eq!(
                LockLevel::parse(bad.as_ref()).unwrap_err().code,
                "InvalidRequestContent"
            );
        }
    }
}
