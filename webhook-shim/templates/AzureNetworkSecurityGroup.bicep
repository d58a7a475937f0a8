// Network security group: legacy resource type resource::AzureNetworkSecurityGroup::1.0.
// The rules, their names, priorities and conditions are the Python driver's; the switches
// compare exactly and case-sensitively as it did, so any other value adds no rules.
param network_security_group_name string
param network_security_group_location string = resourceGroup().location
@description('private: deny Internet outbound and load-balancer inbound; public: allow Internet inbound; anything else: neither.')
param private_or_public string = ''
@description('local: allow the own address space and deny other virtual networks, both ways; anything else: no such rules.')
param local_or_global string = ''
@description('Address prefix of the protected network; a comma-separated list gives several.')
param vnet_address_space string = ''

// The Python driver cut names over Azure's 80 characters to 79.
var nsgName = length(network_security_group_name) > 80
  ? substring(network_security_group_name, 0, 79)
  : network_security_group_name
var isPrivate = private_or_public == 'private'
var isPublic = private_or_public == 'public'
var isLocal = local_or_global == 'local'
var ownPrefixes = split(replace(vnet_address_space, ' ', ''), ',')
// One prefix goes in the singular field, as the Python driver sent it.
var ownPrefix = length(ownPrefixes) == 1 ? ownPrefixes[0] : null
var ownPrefixList = length(ownPrefixes) == 1 ? [] : ownPrefixes

resource nsg 'Microsoft.Network/networkSecurityGroups@2023-09-01' = {
  name: nsgName
  location: network_security_group_location
  tags: {
    Creator: 'Cp4na'
  }
}

resource allowVnetCidrInbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isLocal) {
  parent: nsg
  name: 'AllowVnetCIDRInbound'
  properties: {
    priority: 200
    direction: 'Inbound'
    access: 'Allow'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: ownPrefix
    sourceAddressPrefixes: ownPrefixList
    destinationAddressPrefix: ownPrefix
    destinationAddressPrefixes: ownPrefixList
  }
}

resource denyVnetInbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isLocal) {
  parent: nsg
  name: 'DenyVnetInbound'
  properties: {
    priority: 300
    direction: 'Inbound'
    access: 'Deny'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: 'VirtualNetwork'
    destinationAddressPrefix: 'VirtualNetwork'
  }
}

resource allowInternetInbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isPublic) {
  parent: nsg
  name: 'AllowInternetInbound'
  properties: {
    priority: 500
    direction: 'Inbound'
    access: 'Allow'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: 'Internet'
    destinationAddressPrefix: ownPrefix
    destinationAddressPrefixes: ownPrefixList
  }
}

resource denyLoadbalancerInbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isPrivate) {
  parent: nsg
  name: 'DenyLoadbalancerInbound'
  properties: {
    priority: 600
    direction: 'Inbound'
    access: 'Deny'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: 'AzureLoadBalancer'
    destinationAddressPrefix: '*'
  }
}

resource denyInternetOutbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isPrivate) {
  parent: nsg
  name: 'DenyInternetOutbound'
  properties: {
    priority: 300
    direction: 'Outbound'
    access: 'Deny'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: '*'
    destinationAddressPrefix: 'Internet'
  }
}

resource allowVnetCidrOutbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isLocal) {
  parent: nsg
  name: 'AllowVnetCIDROutbound'
  properties: {
    priority: 400
    direction: 'Outbound'
    access: 'Allow'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: ownPrefix
    sourceAddressPrefixes: ownPrefixList
    destinationAddressPrefix: ownPrefix
    destinationAddressPrefixes: ownPrefixList
  }
}

resource denyVnetOutbound 'Microsoft.Network/networkSecurityGroups/securityRules@2023-09-01' = if (isLocal) {
  parent: nsg
  name: 'DenyVnetOutbound'
  properties: {
    priority: 500
    direction: 'Outbound'
    access: 'Deny'
    protocol: '*'
    sourcePortRange: '*'
    destinationPortRange: '*'
    sourceAddressPrefix: 'VirtualNetwork'
    destinationAddressPrefix: 'VirtualNetwork'
  }
}

output networkSecurityGroupId string = nsg.id
output network_security_group_name string = nsg.name
