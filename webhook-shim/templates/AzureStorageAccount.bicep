// Storage account: legacy resource type resource::AzureStorageAccount::1.0.
param storage_account_name string
param storage_location string = resourceGroup().location
param storage_account_type string = 'Standard_LRS'

resource account 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: storage_account_name
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
  }
}

output storageEndpoint object = account.properties.primaryEndpoints
output storageAccountId string = account.id
