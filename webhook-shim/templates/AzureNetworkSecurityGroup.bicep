// Network security group: legacy resource type resource::AzureNetworkSecurityGroup::1.0.
param network_security_group_name string
param network_security_group_location string = resourceGroup().location
@allowed(['private', 'public'])
param private_or_public string = 'private'
@allowed(['local', 'global'])
param local_or_global string = 'local'
@description('Comma-separated address prefixes allowed in when the group is private and local.')
param vnet_address_space string = ''

var publicInbound = private_or_public == 'public'
var sources = local_or_global == 'local' && !empty(vnet_address_space)
  ? split(replace(vnet_address_space, ' ', ''), ',')
  : ['VirtualNetwork']

resource nsg 'Microsoft.Network/networkSecurityGroups@2023-09-01' = {
  name: network_security_group_name
  location: network_security_group_location
  tags: {
    Creator: 'Cp4na'
  }
  properties: {
    securityRules: [
      {
        name: 'allow-inbound'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: '*'
          sourcePortRange: '*'
          destinationPortRange: '*'
          sourceAddressPrefix: publicInbound ? '*' : null
          sourceAddressPrefixes: publicInbound ? [] : sources
          destinationAddressPrefix: '*'
        }
      }
    ]
  }
}

output networkSecurityGroupId string = nsg.id
output network_security_group_name string = nsg.name
