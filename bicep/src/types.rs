//! Canonical spelling of well-known Azure resource types.
//!
//! The official compiler rewrites a resource type to the casing its type library
//! uses (`microsoft.storage/storageAccounts` → `Microsoft.Storage/storageAccounts`).
//! This table holds that casing for common types; unknown types keep the casing
//! they were written with.

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

/// The canonical spelling of `ty`, when it is a well-known type.
pub fn canonical_type(ty: &str) -> Option<&'static str> {
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
            canonical_type("microsoft.storage/STORAGEaccounts"),
            Some("Microsoft.Storage/storageAccounts")
        );
        assert_eq!(canonical_type("Contoso.Widgets/gadgets"), None);
    }
}
