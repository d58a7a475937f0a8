//! Scopes, names and resource ids: URL paths the client builds, validated before sending.

use crate::error::ArmError;
use serde::{Deserialize, Serialize};

/// Where a deployment or stack lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentScope {
    ResourceGroup {
        subscription: String,
        resource_group: String,
    },
    /// Subscription-scope deployments need a location for their metadata.
    Subscription {
        subscription: String,
        location: String,
    },
}

impl DeploymentScope {
    pub fn subscription(&self) -> &str {
        match self {
            Self::ResourceGroup { subscription, .. } | Self::Subscription { subscription, .. } => {
                subscription
            }
        }
    }

    /// `/subscriptions/{s}` or `/subscriptions/{s}/resourceGroups/{rg}`.
    pub fn path(&self) -> Result<String, ArmError> {
        match self {
            Self::ResourceGroup {
                subscription,
                resource_group,
            } => Ok(format!(
                "{}/resourceGroups/{}",
                subscription_path(subscription)?,
                validate_resource_group_name(resource_group)?
            )),
            Self::Subscription { subscription, .. } => subscription_path(subscription),
        }
    }

    /// The location a request body must carry at this scope.
    pub fn body_location(&self) -> Option<&str> {
        match self {
            Self::ResourceGroup { .. } => None,
            Self::Subscription { location, .. } => Some(location),
        }
    }
}

/// `/subscriptions/{subscription}`. This checks only that the id cannot change the path
/// (ASCII letters, digits and `-`): whether it is a GUID is the input rule of the callers
/// (`azure_names::is_subscription_id`), and ARM answers for ids it does not know.
pub(crate) fn subscription_path(subscription: &str) -> Result<String, ArmError> {
    let valid = !subscription.is_empty()
        && subscription.len() <= 64
        && subscription
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(format!("/subscriptions/{subscription}"))
    } else {
        Err(ArmError::invalid_input(
            "InvalidSubscriptionId",
            format!("subscription id {subscription:?} is not a GUID-like id"),
        ))
    }
}

/// Resource group names, by Azure's rule ([`azure_names::is_resource_group_name`]).
pub fn validate_resource_group_name(name: &str) -> Result<&str, ArmError> {
    if azure_names::is_resource_group_name(name) {
        Ok(name)
    } else {
        Err(ArmError::invalid_input(
            "InvalidResourceGroupName",
            format!(
                "resource group name {name:?} must be 1-90 letters, digits, '_-.()' and not end with '.'"
            ),
        ))
    }
}

/// Deployment names: [`azure_names::DEPLOYMENT_NAME`], at most 64 characters.
pub fn validate_deployment_name(name: &str) -> Result<&str, ArmError> {
    validate_name(
        name,
        azure_names::DEPLOYMENT_NAME_MAX_LEN,
        "InvalidDeploymentName",
        "deployment",
    )
}

/// Deployment stack names: same characters as deployments, at most 90.
pub fn validate_stack_name(name: &str) -> Result<&str, ArmError> {
    validate_name(
        name,
        azure_names::DEPLOYMENT_STACK_NAME_MAX_LEN,
        "InvalidDeploymentStackName",
        "deployment stack",
    )
}

fn validate_name<'a>(name: &'a str, max: u32, code: &str, what: &str) -> Result<&'a str, ArmError> {
    if azure_names::is_deployment_name(name, max) {
        Ok(name)
    } else {
        Err(ArmError::invalid_input(
            code,
            format!("{what} name {name:?} must be 1-{max} letters, digits or '_-.()'"),
        ))
    }
}

/// The parts of a resource id the client needs: subscription, provider namespace and
/// full type (`Microsoft.Network/virtualNetworks/subnets`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceId {
    /// The id as given, with a leading `/` and no trailing one.
    pub id: String,
    pub subscription: String,
    /// Lowercased for lookups; ARM treats namespaces and types case-insensitively.
    pub namespace: String,
    /// Type below the namespace, e.g. `virtualnetworks/subnets`, lowercased.
    pub resource_type: String,
}

impl ResourceId {
    /// Parses `/subscriptions/{s}[/resourceGroups/{rg}]/providers/{ns}/{type}/{name}[/{type}/{name}]...`.
    /// A resource group id itself parses as `Microsoft.Resources/resourceGroups`. For
    /// extension resources (`.../providers/A/x/y/providers/B/t/n`) the last provider wins.
    pub fn parse(id: &str) -> Result<Self, ArmError> {
        let bad = |why: &str| {
            ArmError::invalid_input("InvalidResourceId", format!("resource id {id:?}: {why}"))
        };
        let trimmed = id.trim().trim_end_matches('/');
        if !trimmed.starts_with('/')
            || trimmed.contains("//")
            || trimmed.contains('?')
            || trimmed.contains('#')
        {
            return Err(bad("must be an absolute ARM path"));
        }
        let segments: Vec<&str> = trimmed[1..].split('/').collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(bad("has empty or relative segments"));
        }
        if segments.len() < 2 || !segments[0].eq_ignore_ascii_case("subscriptions") {
            return Err(bad("must start with /subscriptions/{id}"));
        }
        let subscription = segments[1].to_string();
        subscription_path(&subscription)?;
        let last_provider = segments
            .iter()
            .rposition(|s| s.eq_ignore_ascii_case("providers"));
        let (namespace, resource_type) = match last_provider {
            Some(p) => {
                let rest = &segments[p + 1..];
                if rest.len() < 3 || rest.len().is_multiple_of(2) {
                    return Err(bad("needs {namespace}/{type}/{name} after providers"));
                }
                let types: Vec<&str> = rest[1..].iter().step_by(2).copied().collect();
                (
                    rest[0].to_ascii_lowercase(),
                    types.join("/").to_ascii_lowercase(),
                )
            }
            None if segments.len() == 4 && segments[2].eq_ignore_ascii_case("resourcegroups") => (
                "microsoft.resources".to_string(),
                "resourcegroups".to_string(),
            ),
            None => return Err(bad("is not a resource id")),
        };
        Ok(Self {
            id: trimmed.to_string(),
            subscription,
            namespace,
            resource_type,
        })
    }
}

/// The newest stable api-version, or the newest preview when no stable one exists.
/// ARM versions are `YYYY-MM-DD[-suffix]`, so the date part orders them.
pub fn newest_api_version(versions: &[String]) -> Option<&str> {
    let is_preview = |v: &str| v.len() > 10;
    let newest = |stable: bool| {
        versions
            .iter()
            .filter(|v| is_preview(v) != stable)
            .max_by(|a, b| {
                a[..a.len().min(10)]
                    .cmp(&b[..b.len().min(10)])
                    .then(a.cmp(b))
            })
    };
    newest(true).or_else(|| newest(false)).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_paths() {
        let rg = DeploymentScope::ResourceGroup {
            subscription: "0000-1111".into(),
            resource_group: "my-rg_(1).x".into(),
        };
        assert_eq!(
            rg.path().unwrap(),
            "/subscriptions/0000-1111/resourceGroups/my-rg_(1).x"
        );
        assert_eq!(rg.body_location(), None);
        let sub = DeploymentScope::Subscription {
            subscription: "0000-1111".into(),
            location: "westeurope".into(),
        };
        assert_eq!(sub.path().unwrap(), "/subscriptions/0000-1111");
        assert_eq!(sub.body_location(), Some("westeurope"));
        let evil = DeploymentScope::ResourceGroup {
            subscription: "../x".into(),
            resource_group: "rg".into(),
        };
        assert_eq!(evil.path().unwrap_err().code, "InvalidSubscriptionId");
    }

    #[test]
    fn name_rules() {
        assert!(validate_deployment_name("az-default-web-1a2b3c").is_ok());
        assert!(validate_deployment_name(&"a".repeat(64)).is_ok());
        assert_eq!(
            validate_deployment_name(&"a".repeat(65)).unwrap_err().code,
            "InvalidDeploymentName"
        );
        assert!(validate_deployment_name("a/b").is_err());
        assert!(validate_deployment_name("").is_err());
        assert!(validate_stack_name(&"a".repeat(90)).is_ok());
        assert!(validate_stack_name(&"a".repeat(91)).is_err());
        assert!(validate_resource_group_name("rg.").is_err());
        assert!(validate_resource_group_name("rg?x").is_err());
    }

    #[test]
    fn parses_resource_ids() {
        let id = ResourceId::parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vn/subnets/sn",
        )
        .unwrap();
        assert_eq!(id.subscription, "s1");
        assert_eq!(id.namespace, "microsoft.network");
        assert_eq!(id.resource_type, "virtualnetworks/subnets");

        let ext = ResourceId::parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/providers/Microsoft.Authorization/roleAssignments/ra/",
        )
        .unwrap();
        assert_eq!(ext.namespace, "microsoft.authorization");
        assert_eq!(ext.resource_type, "roleassignments");
        assert!(!ext.id.ends_with('/'));

        let sub_level = ResourceId::parse(
            "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/ra",
        )
        .unwrap();
        assert_eq!(sub_level.namespace, "microsoft.authorization");
        assert_eq!(sub_level.resource_type, "roleassignments");

        let rg = ResourceId::parse("/subscriptions/s1/resourcegroups/rg").unwrap();
        assert_eq!(rg.namespace, "microsoft.resources");
        assert_eq!(rg.resource_type, "resourcegroups");

        for bad in [
            "subscriptions/s1/resourceGroups/rg",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks",
            "/subscriptions/s1/resourceGroups/../providers/A/b/c",
            "/tenants/t/providers/A/b/c",
            "/subscriptions/s1/resourceGroups/rg/providers/A/b/c?api-version=1",
        ] {
            assert_eq!(
                ResourceId::parse(bad).unwrap_err().code,
                "InvalidResourceId",
                "{bad}"
            );
        }
    }

    #[test]
    fn picks_newest_stable_api_version() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            newest_api_version(&v(&[
                "2023-01-01",
                "2024-07-01-preview",
                "2024-05-01",
                "2022-09-01"
            ])),
            Some("2024-05-01")
        );
        assert_eq!(
            newest_api_version(&v(&["2024-01-01-preview", "2024-03-01-preview"])),
            Some("2024-03-01-preview")
        );
        assert_eq!(newest_api_version(&[]), None);
    }
}
