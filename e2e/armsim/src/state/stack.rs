//! Deployment stack records and the body ARM renders from them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::{ArmError, ErrorDetail};
use crate::lro::{elapsed, iso_duration};
use crate::route::key;
use crate::state::deployment::id_list;

pub(crate) const STACK_TYPE: &str = "Microsoft.Resources/deploymentStacks";

/// What happens to a resource the stack stops managing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmanage {
    Delete,
    Detach,
}

impl Unmanage {
    pub(crate) fn parse(field: &str, value: Option<&str>) -> Result<Self, ArmError> {
        match value {
            None => Ok(Self::Detach),
            Some(v) if v.eq_ignore_ascii_case("detach") => Ok(Self::Detach),
            Some(v) if v.eq_ignore_ascii_case("delete") => Ok(Self::Delete),
            Some(v) => Err(ArmError::bad_request(
                "InvalidRequestContent",
                format!(
                    "The value '{v}' of '{field}' is invalid. Allowed values are 'delete' and 'detach'."
                ),
            )),
        }
    }
}

/// Actions for plain resources and for resource groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnmanageActions {
    pub resources: Unmanage,
    pub resource_groups: Unmanage,
}

#[derive(Debug, Clone)]
pub(crate) struct StackRecord {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
    pub tags: Option<Value>,
    pub state: &'static str,
    pub generation: u64,
    pub correlation_id: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub action_on_unmanage: Value,
    pub deny_settings: Value,
    pub parameters: Value,
    pub outputs_on_success: Value,
    pub resources: Vec<String>,
    pub detached: Vec<String>,
    pub deleted: Vec<String>,
    pub failed: Vec<(String, ErrorDetail)>,
    /// Managed resources a delete was refused for (`status: deleteFailed`).
    pub delete_failed: Vec<String>,
    pub error: Option<ArmError>,
    pub deployment_id: String,
}

impl StackRecord {
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self.state, "succeeded" | "failed" | "canceled")
    }

    pub(crate) fn finish(&mut self, state: &'static str, error: Option<ArmError>) {
        self.state = state;
        self.ended = Some(Utc::now());
        self.error = error;
    }

    pub(crate) fn body(&self) -> Value {
        let end = self.ended.unwrap_or_else(Utc::now);
        let deny_status = match self.deny_settings["mode"].as_str() {
            Some(mode) if !mode.eq_ignore_ascii_case("none") => mode.to_owned(),
            _ => "none".to_owned(),
        };
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|id| {
                let status = if self.delete_failed.iter().any(|f| key(f) == key(id)) {
                    "deleteFailed"
                } else {
                    "managed"
                };
                json!({ "id": id, "status": status, "denyStatus": deny_status })
            })
            .collect();
        let failed: Vec<Value> = self
            .failed
            .iter()
            .map(|(id, detail)| json!({ "id": id, "error": { "code": detail.code, "message": detail.message } }))
            .collect();
        let mut properties = json!({
            "actionOnUnmanage": self.action_on_unmanage,
            "denySettings": self.deny_settings,
            "parameters": self.parameters,
            "provisioningState": self.state,
            "correlationId": self.correlation_id,
            "duration": iso_duration(elapsed(self.started, end)),
            "deploymentId": self.deployment_id,
            "resources": resources,
            "detachedResources": id_list(&self.detached),
            "deletedResources": id_list(&self.deleted),
            "failedResources": failed,
            "bypassStackOutOfSyncError": false,
        });
        if self.state == "succeeded" {
            properties["outputs"] = self.outputs_on_success.clone();
        }
        if let Some(error) = &self.error {
            properties["error"] = error.body();
        }
        let mut body = json!({
            "id": self.id,
            "name": self.name,
            "type": STACK_TYPE,
            "properties": properties,
        });
        if let Some(location) = &self.location {
            body["location"] = json!(location);
        }
        if let Some(tags) = &self.tags {
            body["tags"] = tags.clone();
        }
        body
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmanage_values_parse_case_insensitively_and_default_to_detach() {
        assert_eq!(Unmanage::parse("f", None).unwrap(), Unmanage::Detach);
        assert_eq!(
            Unmanage::parse("f", Some("Delete")).unwrap(),
            Unmanage::Delete
        );
        assert_eq!(
            Unmanage::parse("f", Some("detach")).unwrap(),
            Unmanage::Detach
        );
        assert_eq!(
            Unmanage::parse("f", Some("purge")).unwrap_err().code,
            "InvalidRequestContent"
        );
    }
}
