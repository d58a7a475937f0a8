// Virtual network of the legacy resource type resource::AzureVNet::1.0.
// Defaults are the Python driver's Bicep defaults; the policy strings pass to ARM verbatim.
// The subnet `default` is a child resource, not an inline list (the Python driver's list
// made a repeated Create reconcile subnets and peerings added later by other resources).
param vnet_name string
param vnet_location string = resourceGroup().location
param vnet_enable_ddos_protection bool = false
param vnet_private_endpoint_network_policies string = 'Enabled'
param vnet_private_link_service_network_policies string = 'Enabled'
param vnet_default_cidr_block string = '10.0.1.0/24'
@description('Comma-separated address prefixes.')
param vnet_address_space string = '10.0.1.0/24,10.0.2.0/24'

resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' = {
  name: vnet_name
  location: vnet_location
  tags: {
    Creator: 'Cp4na'
  }
  properties: {
    addressSpace: {
      addressPrefixes: split(replace(vnet_address_space, ' ', ''), ',')
    }
    enableDdosProtection: vnet_enable_ddos_protection
  }
}

resource defaultSubnet 'Microsoft.Network/virtualNetworks/subnets@2023-09-01' = {
  parent: vnet
  name: 'default'
  properties: {
    addressPrefix: vnet_default_cidr_block
    delegations: []
    privateEndpointNetworkPolicies: vnet_private_endpoint_network_policies
    privateLinkServiceNetworkPolicies: vnet_private_link_service_network_policies
  }
}

output vnetId string = vnet.id
output vnet_name string = vnet.name
