//! The `AzureResource` custom resource (group `azure-driver.io`, version `v1alpha1`).
