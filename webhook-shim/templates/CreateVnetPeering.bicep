// Peering of two virtual networks: operation CreateVnetPeering of resource::AzureVNet::1.0.
// As the Python driver: one peering <initiator>-to-<acceptor> on the initiator VNet, with
// the request's peering properties (defaults: the Python driver's Bicep defaults). The
// acceptor may be in another subscription (acceptor_vnet_subscription_id, as the Python
// driver's later branches). peer_both_directions adds <acceptor>-to-<initiator> on the
// acceptor VNet, through a nested deployment in the acceptor's group and subscription.
param initiator_vnet_name string
param initiator_vnet_rg_name string = resourceGroup().name
param acceptor_vnet_name string
param acceptor_vnet_rg_name string
param acceptor_vnet_subscription_id string = subscription().subscriptionId
param peering_state string = 'Connected'
param allow_virtual_network_access bool = true
param allow_forwarded_traffic bool = true
param allow_gateway_transit bool = false
param use_remote_gateways bool = false
param peer_both_directions bool = false

var initiatorId = resourceId(initiator_vnet_rg_name, 'Microsoft.Network/virtualNetworks', initiator_vnet_name)
var acceptorId = resourceId(acceptor_vnet_subscription_id, acceptor_vnet_rg_name, 'Microsoft.Network/virtualNetworks', acceptor_vnet_name)

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
    peeringState: peering_state
    allowVirtualNetworkAccess: allow_virtual_network_access
    allowForwardedTraffic: allow_forwarded_traffic
    allowGatewayTransit: allow_gateway_transit
    useRemoteGateways: use_remote_gateways
  }
}

// The reverse side cannot use the initiator's gateway flags: Azure allows remote gateways
// on one side only, so it mirrors them.
resource acceptorSide 'Microsoft.Resources/deployments@2022-09-01' = if (peer_both_directions) {
  name: 'peering-${acceptor_vnet_name}-to-${initiator_vnet_name}'
  subscriptionId: acceptor_vnet_subscription_id
  resourceGroup: acceptor_vnet_rg_name
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
            peeringState: peering_state
            allowVirtualNetworkAccess: allow_virtual_network_access
            allowForwardedTraffic: allow_forwarded_traffic
            allowGatewayTransit: use_remote_gateways
            useRemoteGateways: allow_gateway_transit
          }
        }
      ]
    }
  }
}

output peeringId string = initiatorToAcceptor.id
