//! The one table of resource providers, resource types and api-versions: the provider
//! GET, the api-version check of requests by id and the template function `providers()`
//! all read it.

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

/// Microsoft.Network's api-versions: the folders
/// `specification/network/resource-manager/Microsoft.Network/stable/{version}/` of
/// github.com/Azure/azure-rest-api-specs, each of which covers every type listed here
/// (checked for 2022-09-01 up to 2024-07-01; there is no 2024-10-01 and no preview
/// version of `virtualNetwork.json`).
const NETWORK: &[&str] = &[
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
];

/// Microsoft.Storage's api-versions: the folders
/// `specification/storage/resource-manager/Microsoft.Storage/{stable,preview}/{version}/`
/// of github.com/Azure/azure-rest-api-specs (`storage.json`, `blob.json`, `file.json`,
/// `queue.json` and `table.json` share them).
const STORAGE: &[&str] = &[
    "2020-08-01-preview",
    "2021-09-01",
    "2022-09-01",
    "2023-01-01",
    "2023-04-01",
    "2023-05-01",
    "2024-01-01",
    "2025-01-01",
];

/// The namespaces armsim serves. Microsoft.Network and Microsoft.Storage follow the
/// published REST specs (above); the other namespaces keep versions templates commonly
/// use and are not yet checked against the specs.
static PROVIDERS: &[(&str, ResourceTypes)] = &[
    (
        "Microsoft.Storage",
        &[
            ("storageAccounts", STORAGE),
            ("storageAccounts/blobServices", STORAGE),
            ("storageAccounts/blobServices/containers", STORAGE),
            ("storageAccounts/fileServices", STORAGE),
            ("storageAccounts/fileServices/shares", STORAGE),
            ("storageAccounts/queueServices", STORAGE),
            ("storageAccounts/tableServices", STORAGE),
        ],
    ),
    (
        "Microsoft.Network",
        &[
            ("virtualNetworks", NETWORK),
            ("virtualNetworks/subnets", NETWORK),
            ("virtualNetworks/virtualNetworkPeerings", NETWORK),
            ("routeTables/routes", NETWORK),
            ("networkSecurityGroups", NETWORK),
            ("networkSecurityGroups/securityRules", NETWORK),
            ("publicIPAddresses", NETWORK),
            ("networkInterfaces", NETWORK),
            ("loadBalancers", NETWORK),
            ("routeTables", NETWORK),
            ("privateEndpoints", NETWORK),
            (
                "privateDnsZones",
                &["2018-09-01", "2020-06-01", "2024-06-01"],
            ),
            (
                "privateDnsZones/virtualNetworkLinks",
                &["2018-09-01", "2020-06-01", "2024-06-01"],
            ),
            ("dnsZones", &["2018-05-01", "2023-07-01-preview"]),
            ("natGateways", NETWORK),
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

/// One entry of a provider's `resourceTypes`, api-versions newest first as ARM lists them.
fn type_body(resource_type: &str, versions: &[&str]) -> Value {
    let newest_first: Vec<&str> = versions.iter().rev().copied().collect();
    json!({
        "resourceType": resource_type,
        "locations": LOCATIONS,
        "apiVersions": newest_first,
        "capabilities": "SupportsTags, SupportsLocation",
    })
}

/// The provider body `GET /subscriptions/{s}/providers/{namespace}` returns.
pub(crate) fn provider_body(subscription: &str, namespace: &str) -> Option<Value> {
    let (ns, types) = find(namespace)?;
    let resource_types: Vec<Value> = types
        .iter()
        .map(|(resource_type, versions)| type_body(resource_type, versions))
        .collect();
    Some(json!({
        "id": format!("/subscriptions/{subscription}/providers/{ns}"),
        "namespace": ns,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": resource_types,
    }))
}

/// The value of the template function `providers(namespace, [resourceType])`: the
/// namespace with all its types, or only the one asked for. `None` when armsim does not
/// serve the namespace or the type.
pub(crate) fn function_value(namespace: &str, resource_type: Option<&str>) -> Option<Value> {
    let (ns, types) = find(namespace)?;
    let resource_types: Vec<Value> = match resource_type {
        Some(wanted) => {
            let (found, versions) = types.iter().find(|(t, _)| t.eq_ignore_ascii_case(wanted))?;
            vec![type_body(found, versions)]
        }
        None => types
            .iter()
            .map(|(t, versions)| type_body(t, versions))
            .collect(),
    };
    Some(json!({"namespace": ns, "resourceTypes": resource_types}))
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
        assert_eq!(accounts["apiVersions"][0], "2025-01-01");
        assert!(
            accounts["apiVersions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v.as_str().unwrap().ends_with("-preview"))
        );
        assert!(provider_body("s", "Microsoft.Nothing").is_none());
    }

    #[test]
    fn the_template_function_reads_the_same_table() {
        let vnets = function_value("microsoft.network", Some("virtualnetworks")).unwrap();
        assert_eq!(vnets["namespace"], "Microsoft.Network");
        let types = vnets["resourceTypes"].as_array().unwrap();
        assert_eq!(types.len(), 1);
        assert_eq!(types[0]["resourceType"], "virtualNetworks");
        let from_get = provider_body("s", "Microsoft.Network").unwrap();
        assert_eq!(types[0], from_get["resourceTypes"][0]);
        let all = function_value("Microsoft.Storage", None).unwrap();
        assert_eq!(
            all["resourceTypes"],
            provider_body("s", "Microsoft.Storage").unwrap()["resourceTypes"]
        );
        assert_eq!(function_value("Microsoft.Network", Some("widgets")), None);
        assert_eq!(function_value("Contoso.Nothing", None), None);
    }

    #[test]
    fn network_types_accept_the_published_versions() {
        for version in ["2023-05-01", "2023-06-01", "2024-07-01"] {
            assert!(
                accepts_api_version("Microsoft.Network/virtualNetworks", version),
                "{version}"
            );
        }
        assert!(!accepts_api_version(
            "Microsoft.Network/virtualNetworks",
            "2024-03-01-preview"
        ));
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
