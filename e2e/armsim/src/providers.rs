//! A static table of resource providers, resource types and api-versions,
//! plausible for the namespaces templates commonly use.

use serde_json::{Value, json};

use crate::error::ErrorDetail;

type ResourceTypes = &'static [(&'static str, &'static [&'static str])];

const COMMON: &[&str] = &[
    "2021-04-01",
    "2022-09-01",
    "2023-01-01",
    "2023-05-01",
    "2024-01-01-preview",
];

static PROVIDERS: &[(&str, ResourceTypes)] = &[
    (
        "Microsoft.Storage",
        &[
            (
                "storageAccounts",
                &[
                    "2021-09-01",
                    "2022-09-01",
                    "2023-01-01",
                    "2023-05-01",
                    "2024-01-01",
                    "2025-01-01-preview",
                ],
            ),
            (
                "storageAccounts/blobServices",
                &["2022-09-01", "2023-01-01", "2023-05-01", "2024-01-01"],
            ),
            (
                "storageAccounts/blobServices/containers",
                &["2022-09-01", "2023-01-01", "2023-05-01", "2024-01-01"],
            ),
            (
                "storageAccounts/fileServices",
                &["2022-09-01", "2023-01-01", "2023-05-01"],
            ),
            (
                "storageAccounts/fileServices/shares",
                &["2022-09-01", "2023-01-01", "2023-05-01"],
            ),
            (
                "storageAccounts/queueServices",
                &["2022-09-01", "2023-01-01", "2023-05-01"],
            ),
            (
                "storageAccounts/tableServices",
                &["2022-09-01", "2023-01-01", "2023-05-01"],
            ),
        ],
    ),
    (
        "Microsoft.Network",
        &[
            (
                "virtualNetworks",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                    "2024-03-01-preview",
                ],
            ),
            (
                "virtualNetworks/subnets",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "virtualNetworks/virtualNetworkPeerings",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "routeTables/routes",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "networkSecurityGroups",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "networkSecurityGroups/securityRules",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "publicIPAddresses",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "networkInterfaces",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "loadBalancers",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "routeTables",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "privateEndpoints",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
            (
                "privateDnsZones",
                &["2018-09-01", "2020-06-01", "2024-06-01"],
            ),
            (
                "privateDnsZones/virtualNetworkLinks",
                &["2018-09-01", "2020-06-01", "2024-06-01"],
            ),
            ("dnsZones", &["2018-05-01", "2023-07-01-preview"]),
            (
                "natGateways",
                &[
                    "2022-07-01",
                    "2023-04-01",
                    "2023-09-01",
                    "2023-11-01",
                    "2024-01-01",
                ],
            ),
        ],
    ),
    (
        "Microsoft.Compute",
        &[
            (
                "virtualMachines",
                &[
                    "2022-08-01",
                    "2023-03-01",
                    "2023-07-01",
                    "2023-09-01",
                    "2024-03-01",
                    "2024-07-01",
                ],
            ),
            (
                "virtualMachines/extensions",
                &[
                    "2022-08-01",
                    "2023-03-01",
                    "2023-07-01",
                    "2023-09-01",
                    "2024-03-01",
                ],
            ),
            (
                "virtualMachineScaleSets",
                &[
                    "2022-08-01",
                    "2023-03-01",
                    "2023-07-01",
                    "2023-09-01",
                    "2024-03-01",
                ],
            ),
            (
                "disks",
                &[
                    "2022-07-02",
                    "2023-01-02",
                    "2023-04-02",
                    "2023-10-02",
                    "2024-03-02",
                ],
            ),
            (
                "availabilitySets",
                &["2022-08-01", "2023-03-01", "2023-09-01", "2024-03-01"],
            ),
            (
                "sshPublicKeys",
                &["2022-08-01", "2023-03-01", "2023-09-01", "2024-03-01"],
            ),
        ],
    ),
    (
        "Microsoft.Web",
        &[
            (
                "sites",
                &[
                    "2022-03-01",
                    "2022-09-01",
                    "2023-01-01",
                    "2023-12-01",
                    "2024-04-01",
                ],
            ),
            (
                "sites/config",
                &[
                    "2022-03-01",
                    "2022-09-01",
                    "2023-01-01",
                    "2023-12-01",
                    "2024-04-01",
                ],
            ),
            (
                "serverfarms",
                &[
                    "2022-03-01",
                    "2022-09-01",
                    "2023-01-01",
                    "2023-12-01",
                    "2024-04-01",
                ],
            ),
            (
                "staticSites",
                &["2022-03-01", "2022-09-01", "2023-01-01", "2023-12-01"],
            ),
        ],
    ),
    (
        "Microsoft.KeyVault",
        &[
            (
                "vaults",
                &[
                    "2019-09-01",
                    "2021-10-01",
                    "2022-07-01",
                    "2023-02-01",
                    "2023-07-01",
                    "2024-04-01-preview",
                ],
            ),
            (
                "vaults/secrets",
                &[
                    "2019-09-01",
                    "2021-10-01",
                    "2022-07-01",
                    "2023-02-01",
                    "2023-07-01",
                ],
            ),
            (
                "vaults/accessPolicies",
                &[
                    "2019-09-01",
                    "2021-10-01",
                    "2022-07-01",
                    "2023-02-01",
                    "2023-07-01",
                ],
            ),
        ],
    ),
    (
        "Microsoft.ContainerService",
        &[
            (
                "managedClusters",
                &[
                    "2023-05-01",
                    "2023-08-01",
                    "2024-01-01",
                    "2024-05-01",
                    "2024-09-01",
                    "2024-10-02-preview",
                ],
            ),
            (
                "managedClusters/agentPools",
                &[
                    "2023-05-01",
                    "2023-08-01",
                    "2024-01-01",
                    "2024-05-01",
                    "2024-09-01",
                ],
            ),
        ],
    ),
    (
        "Microsoft.ContainerRegistry",
        &[(
            "registries",
            &[
                "2021-09-01",
                "2022-12-01",
                "2023-07-01",
                "2023-11-01-preview",
            ],
        )],
    ),
    (
        "Microsoft.Resources",
        &[
            (
                "resourceGroups",
                &[
                    "2021-04-01",
                    "2022-09-01",
                    "2023-07-01",
                    "2024-03-01",
                    "2025-04-01",
                ],
            ),
            (
                "deployments",
                &[
                    "2021-04-01",
                    "2022-09-01",
                    "2023-07-01",
                    "2024-03-01",
                    "2025-04-01",
                ],
            ),
            (
                "deploymentStacks",
                &["2022-08-01-preview", "2024-03-01", "2025-07-01"],
            ),
            ("deploymentScripts", &["2020-10-01", "2023-08-01"]),
            (
                "tags",
                &["2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01"],
            ),
            ("templateSpecs", &["2021-05-01", "2022-02-01"]),
        ],
    ),
    (
        "Microsoft.ManagedIdentity",
        &[
            (
                "userAssignedIdentities",
                &[
                    "2018-11-30",
                    "2023-01-31",
                    "2023-07-31-preview",
                    "2024-11-30",
                ],
            ),
            (
                "userAssignedIdentities/federatedIdentityCredentials",
                &["2022-01-31-preview", "2023-01-31", "2024-11-30"],
            ),
        ],
    ),
    (
        "Microsoft.Insights",
        &[
            (
                "components",
                &["2015-05-01", "2020-02-02", "2020-02-02-preview"],
            ),
            ("diagnosticSettings", &["2021-05-01-preview"]),
            (
                "actionGroups",
                &["2022-06-01", "2023-01-01", "2023-09-01-preview"],
            ),
            ("metricAlerts", &["2018-03-01"]),
        ],
    ),
    (
        "Microsoft.OperationalInsights",
        &[(
            "workspaces",
            &[
                "2020-08-01",
                "2021-06-01",
                "2022-10-01",
                "2023-09-01",
                "2025-02-01",
            ],
        )],
    ),
    (
        "Microsoft.Sql",
        &[
            (
                "servers",
                &[
                    "2021-11-01",
                    "2022-05-01-preview",
                    "2022-11-01-preview",
                    "2023-05-01-preview",
                    "2023-08-01",
                ],
            ),
            (
                "servers/databases",
                &[
                    "2021-11-01",
                    "2022-05-01-preview",
                    "2022-11-01-preview",
                    "2023-05-01-preview",
                    "2023-08-01",
                ],
            ),
            (
                "servers/firewallRules",
                &["2021-11-01", "2022-05-01-preview", "2023-08-01"],
            ),
        ],
    ),
    (
        "Microsoft.DocumentDB",
        &[
            (
                "databaseAccounts",
                &[
                    "2022-11-15",
                    "2023-04-15",
                    "2023-11-15",
                    "2024-05-15",
                    "2024-12-01-preview",
                ],
            ),
            (
                "databaseAccounts/sqlDatabases",
                &["2022-11-15", "2023-04-15", "2023-11-15", "2024-05-15"],
            ),
            (
                "databaseAccounts/sqlDatabases/containers",
                &["2022-11-15", "2023-04-15", "2023-11-15", "2024-05-15"],
            ),
        ],
    ),
    (
        "Microsoft.Authorization",
        &[
            (
                "roleAssignments",
                &["2020-04-01-preview", "2020-10-01-preview", "2022-04-01"],
            ),
            ("roleDefinitions", &["2018-01-01-preview", "2022-04-01"]),
            (
                "policyAssignments",
                &["2022-06-01", "2023-04-01", "2024-04-01"],
            ),
            ("locks", &["2016-09-01", "2020-05-01"]),
        ],
    ),
    (
        "Microsoft.EventHub",
        &[
            (
                "namespaces",
                &["2021-11-01", "2022-10-01-preview", "2024-01-01"],
            ),
            (
                "namespaces/eventhubs",
                &["2021-11-01", "2022-10-01-preview", "2024-01-01"],
            ),
        ],
    ),
    (
        "Microsoft.ServiceBus",
        &[
            (
                "namespaces",
                &["2021-11-01", "2022-10-01-preview", "2024-01-01"],
            ),
            (
                "namespaces/queues",
                &["2021-11-01", "2022-10-01-preview", "2024-01-01"],
            ),
            (
                "namespaces/topics",
                &["2021-11-01", "2022-10-01-preview", "2024-01-01"],
            ),
        ],
    ),
    (
        "Microsoft.Cache",
        &[(
            "redis",
            &[
                "2022-06-01",
                "2023-04-01",
                "2023-08-01",
                "2024-03-01",
                "2024-04-01-preview",
            ],
        )],
    ),
    (
        "Microsoft.App",
        &[("containerApps", COMMON), ("managedEnvironments", COMMON)],
    ),
];

const LOCATIONS: &[&str] = &[
    "East US",
    "East US 2",
    "West US",
    "West Europe",
    "North Europe",
    "UK South",
];

fn find(namespace: &str) -> Option<(&'static str, ResourceTypes)> {
    PROVIDERS
        .iter()
        .find(|(ns, _)| ns.eq_ignore_ascii_case(namespace))
        .copied()
}

/// The provider body `GET /subscriptions/{s}/providers/{namespace}` returns.
pub(crate) fn provider_body(subscription: &str, namespace: &str) -> Option<Value> {
    let (ns, types) = find(namespace)?;
    let resource_types: Vec<Value> = types
        .iter()
        .map(|(resource_type, versions)| {
            let mut newest_first: Vec<&str> = versions.to_vec();
            newest_first.reverse();
            json!({
                "resourceType": resource_type,
                "locations": LOCATIONS,
                "apiVersions": newest_first,
                "capabilities": "SupportsTags, SupportsLocation",
            })
        })
        .collect();
    Some(json!({
        "id": format!("/subscriptions/{subscription}/providers/{ns}"),
        "namespace": ns,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": resource_types,
    }))
}

/// Whether `api_version` is acceptable for a full resource type
/// (`Namespace/type[/child]`). Types outside the table accept any version.
pub(crate) fn accepts_api_version(resource_type: &str, api_version: &str) -> bool {
    let Some((namespace, rest)) = resource_type.split_once('/') else {
        return true;
    };
    let Some((_, types)) = find(namespace) else {
        return true;
    };
    types
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(rest))
        .is_none_or(|(_, versions)| versions.iter().any(|v| v.eq_ignore_ascii_case(api_version)))
}

/// Types whose DELETE ARM answers with 202 and completes later.
pub(crate) fn deletes_async(resource_type: &str) -> bool {
    let namespace = resource_type.split('/').next().unwrap_or_default();
    [
        "Microsoft.Compute",
        "Microsoft.Network",
        "Microsoft.ContainerService",
        "Microsoft.Sql",
        "Microsoft.DocumentDB",
        "Microsoft.Cache",
    ]
    .iter()
    .any(|ns| ns.eq_ignore_ascii_case(namespace))
}

/// The error a provider answers for a name it does not accept, for the types whose
/// naming rules it enforces itself (ARM reports it at preflight for deployments).
/// `name` is the resource's own name, the last segment.
pub(crate) fn name_error(resource_type: &str, name: &str) -> Option<ErrorDetail> {
    let storage_account = resource_type.eq_ignore_ascii_case("Microsoft.Storage/storageAccounts");
    let valid_account = (3..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (storage_account && !valid_account).then(|| ErrorDetail {
        code: "AccountNameInvalid".into(),
        message: format!(
            "{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."
        ),
        target: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_account_names_are_3_to_24_lower_case_letters_and_digits() {
        let account = "Microsoft.Storage/storageAccounts";
        for valid in ["abc", "data37", &"a".repeat(24)] {
            assert_eq!(name_error(account, valid), None, "{valid}");
        }
        for invalid in ["ab", "Data37", "data-37", "dätä", &"a".repeat(25), ""] {
            let error = name_error(account, invalid).expect(invalid);
            assert_eq!(error.code, "AccountNameInvalid");
            assert!(error.message.starts_with(&format!("{invalid} is not")));
        }
        assert_eq!(
            name_error("Microsoft.Network/virtualNetworks", "Vnet-1"),
            None
        );
    }

    #[test]
    fn provider_lists_types_with_newest_version_first_and_previews() {
        let body = provider_body("s", "microsoft.storage").unwrap();
        assert_eq!(body["namespace"], "Microsoft.Storage");
        let accounts = &body["resourceTypes"][0];
        assert_eq!(accounts["resourceType"], "storageAccounts");
        assert_eq!(accounts["apiVersions"][0], "2025-01-01-preview");
        assert!(provider_body("s", "Microsoft.Nothing").is_none());
    }

    #[test]
    fn api_versions_are_checked_only_for_known_types() {
        assert!(accepts_api_version(
            "Microsoft.Storage/storageAccounts",
            "2023-01-01"
        ));
        assert!(!accepts_api_version(
            "Microsoft.Storage/storageAccounts",
            "1999-01-01"
        ));
        assert!(accepts_api_version("Contoso.Widgets/widgets", "1999-01-01"));
        assert!(deletes_async("Microsoft.Network/virtualNetworks"));
        assert!(!deletes_async("Microsoft.Storage/storageAccounts"));
    }
}
