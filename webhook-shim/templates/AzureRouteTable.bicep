// Route table: legacy resource type resource::AzureRouteTable::1.0.
// As the Python driver: the one route BranchOfficeRoute, only for a private, global
// network (exact, case-sensitive comparisons); no other route.
param route_table_name string
param route_table_location string = resourceGroup().location
@description('disableBgpRoutePropagation of the table, and hasBgpOverride of its route.')
param route_table_disable_bgp_route_propagation bool = false
param private_or_public string = ''
param local_or_global string = ''
@description('Address prefix of the branch office, routed to the appliance at private_static_ip.')
param branch_office_cidr string = ''
param private_static_ip string = ''

var routeToBranch = private_or_public == 'private' && local_or_global == 'global'

// Routes are child resources, not an inline list, so that a repeated Create leaves
// routes added by other means in place.
resource routeTable 'Microsoft.Network/routeTables@2023-09-01' = {
  name: route_table_name
  location: route_table_location
  tags: {
    Creator: 'Cp4na'
  }
  properties: {
    disableBgpRoutePropagation: route_table_disable_bgp_route_propagation
  }
}

resource branchOfficeRoute 'Microsoft.Network/routeTables/routes@2023-09-01' = if (routeToBranch) {
  parent: routeTable
  name: 'BranchOfficeRoute'
  properties: {
    addressPrefix: branch_office_cidr
    nextHopType: 'VirtualAppliance'
    nextHopIpAddress: private_static_ip
    hasBgpOverride: route_table_disable_bgp_route_propagation
  }
}

output routeTableId string = routeTable.id
output route_table_name string = routeTable.name
