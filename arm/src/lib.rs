//! Azure Resource Manager client (no Kubernetes in here).
