// Peering of two virtual networks, both directions: operation CreateVnetPeering of
// resource::AzureVNet::1.0. Deployed into the initiator's resource group; the acceptor's
// side is a nested deployment in the acceptor's resource group.
param initiator_vnet_name string
param initiator_vnet_rg_name string = resourceGroup().name
param acceptor_vnet_name string
param acceptor_vnet_rg_name string

var initiatorId = resourceId(initiator_vnet_rg_name, 'Microsoft.Network/virtualNetworks', initiator_vnet_name)
var acceptorId = resourceId(acceptor_vnet_rg_name, 'Microsoft.Network/virtualNetworks', acceptor_vnet_name)

resource initiator 'Microsoft.Network/virtualNetworks@2023-09-01' existing = {
  name: initiator_vnet_name
}

resource initiatorToAcceptor 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings@2023-09-01' = {
  parent: initiator
  name: '${initiator_vnet_name}-to-${acceptor_vnet_name}'
  properties: {
    remoteVirtualNetwork: {
      id: acceptorId
    }
    allowVirtualNetworkAccess: true
    allowForwardedTraffic: true
  }
}

resource acceptorSide 'Microsoft.Resources/deployments@2022-09-01' = {
  name: 'peering-${acceptor_vnet_name}-to-${initiator_vnet_name}'
  resourceGroup: acceptor_vnet_rg_name
  tags: {
    Creator: 'Cp4na'
  }
  properties: {
    mode: 'Incremental'
    template: {
      '$schema': 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#'
      contentVersion: '1.0.0.0'
      resources: [
        {
          type: 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings'
          apiVersion: '2023-09-01'
          name: '${acceptor_vnet_name}/${acceptor_vnet_name}-to-${initiator_vnet_name}'
          properties: {
            remoteVirtualNetwork: {
              id: initiatorId
            }
            allowVirtualNetworkAccess: true
            allowForwardedTraffic: true
          }
        }
      ]
    }
  }
}

output peeringId string = initiatorToAcceptor.id
