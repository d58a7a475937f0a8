//! Canonical spelling of well-known Azure resource types.
//!
//! The official compiler rewrites a resource type to the casing its type library
//! uses (`microsoft.storage/storageAccounts` → `Microsoft.Storage/storageAccounts`).
//! This table holds that casing for common types; unknown types keep the casing
//! they were written with. The type library spells a few types differently from one
//! API version to the next (`Microsoft.Cache/Redis@2019-07-01` but
//! `Microsoft.Cache/redis@2020-06-01`); `VERSIONED` holds those.

const CANONICAL: &[&str] = &[
    "Microsoft.ApiManagement/service",
    "Microsoft.ApiManagement/service/apis",
    "Microsoft.ApiManagement/service/products",
    "Microsoft.AppConfiguration/configurationStores",
    "Microsoft.Authorization/locks",
    "Microsoft.Authorization/policyAssignments",
    "Microsoft.Authorization/policyDefinitions",
    "Microsoft.Authorization/policySetDefinitions",
    "Microsoft.Authorization/roleAssignments",
    "Microsoft.Authorization/roleDefinitions",
    "Microsoft.Automation/automationAccounts",
    "Microsoft.Batch/batchAccounts",
    "Microsoft.Cdn/profiles",
    "Microsoft.Cdn/profiles/endpoints",
    "Microsoft.CognitiveServices/accounts",
    "Microsoft.Compute/availabilitySets",
    "Microsoft.Compute/disks",
    "Microsoft.Compute/galleries",
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/virtualMachines/extensions",
    "Microsoft.Compute/virtualMachineScaleSets",
    "Microsoft.ContainerInstance/containerGroups",
    "Microsoft.ContainerRegistry/registries",
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.DataFactory/factories",
    "Microsoft.DesktopVirtualization/applicationGroups",
    "Microsoft.DesktopVirtualization/hostPools",
    "Microsoft.DesktopVirtualization/workspaces",
    "Microsoft.Devices/IotHubs",
    "Microsoft.DocumentDB/databaseAccounts",
    "Microsoft.EventGrid/topics",
    "Microsoft.EventHub/namespaces",
    "Microsoft.EventHub/namespaces/eventhubs",
    "Microsoft.Insights/autoscalesettings",
    "Microsoft.Insights/components",
    "microsoft.insights/diagnosticSettings",
    "Microsoft.KeyVault/vaults",
    "Microsoft.KeyVault/vaults/secrets",
    "Microsoft.Logic/workflows",
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "Microsoft.Network/applicationGateways",
    "Microsoft.Network/azureFirewalls",
    "Microsoft.Network/bastionHosts",
    "Microsoft.Network/dnsZones",
    "Microsoft.Network/frontDoors",
    "Microsoft.Network/loadBalancers",
    "Microsoft.Network/natGateways",
    "Microsoft.Network/networkInterfaces",
    "Microsoft.Network/networkSecurityGroups",
    "Microsoft.Network/privateDnsZones",
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    "Microsoft.Network/privateEndpoints",
    "Microsoft.Network/publicIPAddresses",
    "Microsoft.Network/routeTables",
    "Microsoft.Network/virtualNetworks",
    "Microsoft.Network/virtualNetworks/subnets",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
    "Microsoft.OperationalInsights/workspaces",
    "Microsoft.Resources/deployments",
    "Microsoft.Resources/deploymentScripts",
    "Microsoft.Resources/resourceGroups",
    "Microsoft.ServiceBus/namespaces",
    "Microsoft.ServiceBus/namespaces/queues",
    "Microsoft.ServiceBus/namespaces/virtualnetworkrules",
    "Microsoft.Sql/servers",
    "Microsoft.Sql/servers/databases",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Storage/storageAccounts/blobServices",
    "Microsoft.Storage/storageAccounts/blobServices/containers",
    "Microsoft.Storage/storageAccounts/fileServices/shares",
    "Microsoft.Web/serverfarms",
    "Microsoft.Web/sites",
    "Microsoft.Web/sites/config",
];

/// Types whose spelling changes at one API version: (spelling before, first API
/// version of the new spelling, spelling from then on).
const VERSIONED: &[(&str, &str, &str)] = &[(
    "Microsoft.Cache/Redis",
    "2020-06-01",
    "Microsoft.Cache/redis",
)];

/// The canonical spelling of `ty` at `api_version`, when it is a well-known type.
pub fn canonical_type(ty: &str, api_version: &str) -> Option<&'static str> {
    // API versions are `yyyy-mm-dd[-suffix]`, so text order is date order.
    if let Some((before, since, after)) = VERSIONED
        .iter()
        .find(|(before, ..)| before.eq_ignore_ascii_case(ty))
    {
        return Some(if api_version < *since { before } else { after });
    }
    CANONICAL
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_case_of_known_types_only() {
        assert_eq!(
            canonical_type("microsoft.storage/STORAGEaccounts", "2023-01-01"),
            Some("Microsoft.Storage/storageAccounts")
        );
        assert_eq!(
            canonical_type("Contoso.Widgets/gadgets", "2023-01-01"),
            None
        );
    }

    #[test]
    fn spelling_follows_the_api_version_where_the_type_library_changed_it() {
        assert_eq!(
            canonical_type("Microsoft.Cache/redis", "2019-07-01"),
            Some("Microsoft.Cache/Redis")
        );
        assert_eq!(
            canonical_type("Microsoft.Cache/Redis", "2020-06-01"),
            Some("Microsoft.Cache/redis")
        );
        assert_eq!(
            canonical_type("microsoft.cache/REDIS", "2024-03-01"),
            Some("Microsoft.Cache/redis")
        );
    }
}
