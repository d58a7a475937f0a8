// One route in an existing route table: operation AddRoute of resource::AzureRouteTable::1.0,
// as the Python driver's later branch (multipleBOs) made it. RemoveRoute undoes exactly
// this deployment, route included (that branch left the route in the table).
param route_table_name string
param route_name string
param route_address_prefix string
param route_next_hop_type string = 'VirtualAppliance'
@description('The next hop is the first usable address (.4) of this CIDR, as the later branch computed it (a text operation: the first three segments and .4).')
param private_subnet_cidr string = ''
@description('The next hop when private_subnet_cidr is not given.')
param route_next_hop_ip_address string = ''
param route_has_bgp_override bool = false

var nextHopIp = empty(private_subnet_cidr)
  ? route_next_hop_ip_address
  : '${join(take(split(private_subnet_cidr, '.'), 3), '.')}.4'

resource routeTable 'Microsoft.Network/routeTables@2023-09-01' existing = {
  name: route_table_name
}

resource route 'Microsoft.Network/routeTables/routes@2023-09-01' = {
  parent: routeTable
  name: route_name
  properties: {
    addressPrefix: route_address_prefix
    nextHopType: route_next_hop_type
    nextHopIpAddress: empty(nextHopIp) ? null : nextHopIp
    hasBgpOverride: route_has_bgp_override
  }
}

output routeId string = route.id
