// Subnet of an existing virtual network: legacy resource type resource::AzureSubnet::1.0.
// The Python driver always attached a route table and an NSG; here an empty name attaches none.
param vnet_name string
param subnet_name string
param subnet_cidr_block string
param subnet_private_network_endpoint_policies string = 'Enabled'
param subnet_private_link_service_network_policies string = 'Enabled'
param route_table_name string = ''
param network_security_group_name string = ''

resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' existing = {
  name: vnet_name
}

resource subnet 'Microsoft.Network/virtualNetworks/subnets@2023-09-01' = {
  parent: vnet
  name: subnet_name
  properties: {
    addressPrefix: subnet_cidr_block
    serviceEndpoints: []
    delegations: []
    privateEndpointNetworkPolicies: subnet_private_network_endpoint_policies
    privateLinkServiceNetworkPolicies: subnet_private_link_service_network_policies
    routeTable: empty(route_table_name) ? null : {
      id: resourceId('Microsoft.Network/routeTables', route_table_name)
    }
    networkSecurityGroup: empty(network_security_group_name) ? null : {
      id: resourceId('Microsoft.Network/networkSecurityGroups', network_security_group_name)
    }
  }
}

output subnetId string = subnet.id
output subnet_name string = subnet.name
