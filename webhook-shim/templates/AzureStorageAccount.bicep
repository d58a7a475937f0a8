// Storage account: legacy resource type resource::AzureStorageAccount::1.0.
// Named as the Python driver named it: the base lower-cased, cut to 22 characters, plus a
// number from 1 to 50. The shim derives that number from the Brent resource id, so a
// repeated Create names the same account (the Python driver drew it at random).
param storage_account_name string
@minValue(1)
@maxValue(50)
param storage_account_name_suffix int
param storage_location string = resourceGroup().location
param storage_account_type string = 'Standard_LRS'

var accountName = '${take(toLower(storage_account_name), 22)}${storage_account_name_suffix}'

resource account 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: accountName
  location: storage_location
  tags: {
    Creator: 'Cp4na'
  }
  sku: {
    name: storage_account_type
  }
  kind: 'StorageV2'
  properties: {
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    networkAcls: {
      bypass: 'AzureServices'
      virtualNetworkRules: []
      ipRules: []
      defaultAction: 'Allow'
    }
  }
}

output storageEndpoint object = account.properties.primaryEndpoints
output storageAccountId string = account.id
output storageAccountName string = account.name
