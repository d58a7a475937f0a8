//! What an adopted ARM id names, so that the controller knows how to observe and delete
//! it and the shim can check it before writing anything.

use std::fmt;

/// The kind of Azure object an adopted id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptedKind {
    /// `Microsoft.Resources/deploymentStacks`: deleting it deletes what it manages.
    Stack { name: String },
    /// `Microsoft.Resources/deployments`: deleting it removes its output resources.
    Deployment { name: String },
    /// A resource group: deleting it deletes everything in it.
    ResourceGroup,
    /// Any other resource, deleted by id.
    Resource,
}

/// A parsed adopted id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedId {
    /// The id as given.
    pub id: String,
    pub subscription_id: String,
    /// `None` for subscription-level objects.
    pub resource_group: Option<String>,
    pub kind: AdoptedKind,
}

/// Why an id cannot be adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAdoptedId(pub String);

impl fmt::Display for InvalidAdoptedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an Azure resource id (/subscriptions/{{id}}/resourceGroups/{{name}}/...)",
            self.0
        )
    }
}

impl std::error::Error for InvalidAdoptedId {}

impl AdoptedId {
    pub fn parse(id: &str) -> Result<Self, InvalidAdoptedId> {
        let invalid = || InvalidAdoptedId(id.to_owned());
        let segments: Vec<&str> = id
            .strip_prefix('/')
            .ok_or_else(invalid)?
            .split('/')
            .collect();
        if segments.len() < 4
            || !segments.len().is_multiple_of(2)
            || segments.iter().any(|s| s.is_empty())
            || !segments[0].eq_ignore_ascii_case("subscriptions")
        {
            return Err(invalid());
        }
        let subscription_id = segments[1].to_owned();
        let (resource_group, rest) = if segments[2].eq_ignore_ascii_case("resourceGroups") {
            (Some(segments[3].to_owned()), &segments[4..])
        } else {
            (None, &segments[2..])
        };
        let kind = match rest {
            // Nothing after the group; without a group `rest` has at least two segments.
            [] => AdoptedKind::ResourceGroup,
            [providers, namespace, kind, name]
                if providers.eq_ignore_ascii_case("providers")
                    && namespace.eq_ignore_ascii_case("Microsoft.Resources") =>
            {
                if kind.eq_ignore_ascii_case("deploymentStacks") {
                    AdoptedKind::Stack {
                        name: (*name).to_owned(),
                    }
                } else if kind.eq_ignore_ascii_case("deployments") {
                    AdoptedKind::Deployment {
                        name: (*name).to_owned(),
                    }
                } else {
                    AdoptedKind::Resource
                }
            }
            // A resource id names at least a namespace, a type and a name after `providers`.
            [providers, _namespace, _kind, _name, ..]
                if providers.eq_ignore_ascii_case("providers") =>
            {
                AdoptedKind::Resource
            }
            _ => return Err(invalid()),
        };
        Ok(AdoptedId {
            id: id.to_owned(),
            subscription_id,
            resource_group,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-0000-0000-0000-000000000001";

    fn parse(id: &str) -> AdoptedId {
        AdoptedId::parse(id).unwrap()
    }

    #[test]
    fn resource_groups_deployments_and_stacks() {
        let group = parse(&format!("/subscriptions/{SUB}/resourceGroups/rg-a"));
        assert_eq!(group.kind, AdoptedKind::ResourceGroup);
        assert_eq!(group.resource_group.as_deref(), Some("rg-a"));
        assert_eq!(group.subscription_id, SUB);

        let deployment = parse(&format!(
            "/subscriptions/{SUB}/resourcegroups/rg-a/providers/microsoft.resources/deployments/vnet1"
        ));
        assert_eq!(
            deployment.kind,
            AdoptedKind::Deployment {
                name: "vnet1".into()
            }
        );

        let stack = parse(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.Resources/deploymentStacks/s1"
        ));
        assert_eq!(stack.kind, AdoptedKind::Stack { name: "s1".into() });
        assert_eq!(stack.resource_group, None);
    }

    #[test]
    fn other_resources_are_deleted_by_id() {
        for id in [
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
            ),
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
            ),
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Resources/templateSpecs/t"
            ),
        ] {
            assert_eq!(parse(&id).kind, AdoptedKind::Resource, "{id}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for id in [
            "",
            "rg-a",
            "/subscriptions",
            &format!("/subscriptions/{SUB}"),
            &format!("/subscriptions/{SUB}/resourceGroups"),
            &format!("/subscriptions/{SUB}/resourceGroups//x"),
            &format!("/subscriptions/{SUB}/locations/westeurope"),
            &format!("subscriptions/{SUB}/resourceGroups/rg"),
            &format!("/tenants/{SUB}/resourceGroups/rg"),
            // Empty segments in an otherwise well-shaped id.
            "/subscriptions//resourceGroups/rg",
            &format!("/subscriptions/{SUB}/resourceGroups/"),
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers//deployments/d"),
            &format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Resources/deployments/"
            ),
            // `providers` with no type and name after the namespace.
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network"),
            &format!("/subscriptions/{SUB}/providers/Microsoft.Resources"),
            // A deployment path without `providers/Microsoft.Resources`.
            &format!("/subscriptions/{SUB}/resourceGroups/rg/deployments/d"),
            &format!("/subscriptions/{SUB}/resourceGroups/rg/x/Microsoft.Resources/deployments/d"),
            &format!(
                "/subscriptions/{SUB}/resourceGroups/rg/x/Microsoft.Network/virtualNetworks/v"
            ),
        ] {
            let err = AdoptedId::parse(id).unwrap_err();
            assert!(
                err.to_string().contains("is not an Azure resource id"),
                "{id}"
            );
            assert_eq!(err, InvalidAdoptedId(id.to_owned()));
        }
    }

    #[test]
    fn deployments_of_other_namespaces_are_plain_resources() {
        for id in [
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/deployments/d"
            ),
            format!("/subscriptions/{SUB}/providers/Contoso.Resources/deploymentStacks/s"),
        ] {
            let parsed = parse(&id);
            assert_eq!(parsed.kind, AdoptedKind::Resource, "{id}");
            assert_eq!(parsed.id, id);
        }
    }
}
