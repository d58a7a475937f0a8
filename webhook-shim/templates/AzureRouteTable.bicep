// Route table: legacy resource type resource::AzureRouteTable::1.0.
param route_table_name string
param route_table_location string = resourceGroup().location
param route_table_disable_bgp_route_propagation bool = false
@allowed(['private', 'public'])
param private_or_public string = 'private'
@allowed(['local', 'global'])
param local_or_global string = 'local'
@description('Address prefix of the branch office, routed to the appliance at private_static_ip.')
param branch_office_cidr string = ''
param private_static_ip string = ''

var routeToBranch = !empty(branch_office_cidr) && !empty(private_static_ip)
var routeToInternet = private_or_public == 'public' && local_or_global == 'global'

resource routeTable 'Microsoft.Network/routeTables@2023-09-01' = {
  name: route_table_name
  location: route_table_location
  tags: {
    Creator: 'Cp4na'
  }
  properties: {
    disableBgpRoutePropagation: route_table_disable_bgp_route_propagation
    routes: concat(
      routeToBranch
        ? [
            {
              name: 'branch-office'
              properties: {
                addressPrefix: branch_office_cidr
                nextHopType: 'VirtualAppliance'
                nextHopIpAddress: private_static_ip
              }
            }
          ]
        : [],
      routeToInternet
        ? [
            {
              name: 'internet'
              properties: {
                addressPrefix: '0.0.0.0/0'
                nextHopType: 'Internet'
              }
            }
          ]
        : []
    )
  }
}

output routeTableId string = routeTable.id
output route_table_name string = routeTable.name
