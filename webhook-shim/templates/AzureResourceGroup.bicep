// Resource group of the legacy resource type resource::AzureResourceGroup::1.0.
targetScope = 'subscription'

param resourcegroup_name string
param resourcegroup_location string

resource group 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: resourcegroup_name
  location: resourcegroup_location
  tags: {
    Creator: 'Cp4na'
  }
}

output resourceGroupId string = group.id
output resourcegroup_name string = group.name
