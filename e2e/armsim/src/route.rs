//! Maps a request path onto what it addresses. Keywords compare case-insensitively;
//! names keep the case the client sent.

/// Where a deployment or stack lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    pub subscription: String,
    pub resource_group: Option<String>,
}

impl Scope {
    /// ARM's canonical spelling of the scope id.
    pub fn id(&self) -> String {
        match &self.resource_group {
            Some(rg) => format!("/subscriptions/{}/resourceGroups/{rg}", self.subscription),
            None => format!("/subscriptions/{}", self.subscription),
        }
    }

    pub fn key(&self) -> String {
        key(&self.id())
    }
}

/// Lower-cased id used as map key.
pub(crate) fn key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeploymentAction {
    Itself,
    Cancel,
    Validate,
    WhatIf,
    Operations,
    OperationStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminRoute {
    Counters,
    Inventory,
    Events,
    Config,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Token {
        tenant: String,
    },
    Admin(AdminRoute),
    ResourceGroups {
        subscription: String,
    },
    ResourceGroup {
        subscription: String,
        name: String,
    },
    /// `GET {scope}/providers/Microsoft.Resources/deployments`.
    DeploymentList {
        scope: Scope,
    },
    Deployment {
        scope: Scope,
        name: String,
        action: DeploymentAction,
        /// Operation id of `.../operationStatuses/{id}`.
        operation: Option<String>,
    },
    Stack {
        scope: Scope,
        name: String,
    },
    /// `Location` / stack `Azure-AsyncOperation` polls.
    Operation {
        subscription: String,
        id: String,
        /// `operationStatuses` (status body) rather than `operationResults` (result).
        status: bool,
    },
    Provider {
        subscription: String,
        namespace: String,
    },
    Resource {
        subscription: String,
        resource_group: Option<String>,
        /// Canonical id (`/subscriptions/s/resourceGroups/rg/providers/...`).
        id: String,
        resource_type: String,
    },
    /// `{scope}/providers/Microsoft.Authorization/locks[/{name}]`; no name lists.
    Lock {
        subscription: String,
        /// Canonical id of the locked subscription, resource group or resource.
        scope: String,
        name: Option<String>,
    },
    /// A managed identity token request (IMDS or App Service form).
    IdentityToken {
        protocol: crate::identity::Protocol,
    },
    /// A deployment at management group or tenant scope, which the simulator
    /// does not serve; `scope` is the path before `/providers/Microsoft.Resources`.
    UnservedDeploymentScope {
        scope: String,
    },
    Unknown,
}

impl Route {
    /// Name in counters and latency keys (prefixed with the method there).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Token { .. } => "token",
            Route::Admin(_) => "admin",
            Route::ResourceGroups { .. } => "resourceGroups/list",
            Route::ResourceGroup { .. } => "resourceGroups",
            Route::DeploymentList { .. } => "deployments/list",
            Route::Deployment { action, .. } => match action {
                DeploymentAction::Itself => "deployments",
                DeploymentAction::Cancel => "deployments/cancel",
                DeploymentAction::Validate => "deployments/validate",
                DeploymentAction::WhatIf => "deployments/whatIf",
                DeploymentAction::Operations => "deployments/operations",
                DeploymentAction::OperationStatus => "operationStatuses",
            },
            Route::Stack { .. } => "deploymentStacks",
            Route::Operation { status: true, .. } => "operationStatuses",
            Route::Operation { status: false, .. } => "operationResults",
            Route::Provider { .. } => "providers",
            Route::Resource { .. } => "resources",
            Route::Lock { name: Some(_), .. } => "locks",
            Route::Lock { name: None, .. } => "locks/list",
            Route::UnservedDeploymentScope { .. } => "deployments",
            Route::IdentityToken { .. } => "identityToken",
            Route::Unknown => "unknown",
        }
    }

    pub fn subscription(&self) -> Option<&str> {
        match self {
            Route::ResourceGroups { subscription }
            | Route::ResourceGroup { subscription, .. }
            | Route::Operation { subscription, .. }
            | Route::Provider { subscription, .. }
            | Route::Resource { subscription, .. }
            | Route::Lock { subscription, .. } => Some(subscription),
            Route::Deployment { scope, .. }
            | Route::DeploymentList { scope }
            | Route::Stack { scope, .. } => Some(&scope.subscription),
            Route::Token { .. }
            | Route::Admin(_)
            | Route::UnservedDeploymentScope { .. }
            | Route::IdentityToken { .. }
            | Route::Unknown => None,
        }
    }
}

fn percent_decode(segment: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/providers/Microsoft.Management/managementGroups/{mg}/providers/Microsoft.Resources/deployments/...`
/// and `/providers/Microsoft.Resources/deployments/...` (tenant).
fn unserved_deployment_scope(segments: &[String], lower: &[&str]) -> Route {
    let deployments = lower
        .windows(3)
        .position(|w| w == ["providers", "microsoft.resources", "deployments"]);
    match deployments {
        Some(at) if lower.first() == Some(&"providers") => Route::UnservedDeploymentScope {
            scope: format!("/{}", segments[..at].join("/")),
        },
        _ => Route::Unknown,
    }
}

/// A lock route when the path ends in `providers/Microsoft.Authorization/locks[/{name}]`;
/// the scope before it must be a subscription, resource group or resource.
fn lock(segments: &[String], lower: &[&str]) -> Option<Route> {
    let (scope_len, name) = match lower {
        [.., "providers", "microsoft.authorization", "locks"] => (lower.len() - 3, None),
        [.., "providers", "microsoft.authorization", "locks", _] => {
            (lower.len() - 4, segments.last().cloned())
        }
        _ => return None,
    };
    let (subscription, scope) = match &lower[..scope_len] {
        ["subscriptions", _] => (
            segments[1].clone(),
            format!("/subscriptions/{}", segments[1]),
        ),
        _ => match parse(&format!("/{}", segments[..scope_len].join("/"))) {
            Route::ResourceGroup { subscription, name } => {
                let scope = Scope {
                    subscription: subscription.clone(),
                    resource_group: Some(name),
                };
                (subscription, scope.id())
            }
            Route::Resource {
                subscription, id, ..
            } => (subscription, id),
            _ => return Some(Route::Unknown),
        },
    };
    Some(Route::Lock {
        subscription,
        scope,
        name,
    })
}

pub(crate) fn parse(path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let seg = |i: usize| segments[i].clone();
    if let Some(route) = lock(&segments, &lower) {
        return route;
    }
    if let Some(route) = fixed_route(&segments, &lower) {
        return route;
    }
    let (scope, providers_at) = match lower.as_slice() {
        ["subscriptions", _, "resourcegroups", _, "providers", ..] => (
            Scope {
                subscription: seg(1),
                resource_group: Some(seg(3)),
            },
            4,
        ),
        ["subscriptions", _, "providers", ..] => (
            Scope {
                subscription: seg(1),
                resource_group: None,
            },
            2,
        ),
        _ => return unserved_deployment_scope(&segments, &lower),
    };
    provider_route(scope, providers_at, &segments, &lower)
}

/// Routes at fixed paths: tokens, admin, resource groups, operations, providers.
fn fixed_route(segments: &[String], lower: &[&str]) -> Option<Route> {
    let seg = |i: usize| segments[i].clone();
    Some(match lower {
        [_, "oauth2", "v2.0", "token"] => Route::Token { tenant: seg(0) },
        ["metadata", "identity", "oauth2", "token"] => Route::IdentityToken {
            protocol: crate::identity::Protocol::Imds,
        },
        ["msi", "token"] => Route::IdentityToken {
            protocol: crate::identity::Protocol::AppService,
        },
        ["_armsim", "counters"] => Route::Admin(AdminRoute::Counters),
        ["_armsim", "inventory"] => Route::Admin(AdminRoute::Inventory),
        ["_armsim", "events"] => Route::Admin(AdminRoute::Events),
        ["_armsim", "config"] => Route::Admin(AdminRoute::Config),
        ["subscriptions", _, "resourcegroups"] => Route::ResourceGroups {
            subscription: seg(1),
        },
        ["subscriptions", _, "resourcegroups", _] => Route::ResourceGroup {
            subscription: seg(1),
            name: seg(3),
        },
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.resources",
            kind @ ("operationresults" | "operationstatuses"),
            _,
        ] => Route::Operation {
            subscription: seg(1),
            id: seg(5),
            status: *kind == "operationstatuses",
        },
        ["subscriptions", _, "providers", _] => Route::Provider {
            subscription: seg(1),
            namespace: seg(3),
        },
        _ => return None,
    })
}

/// Routes below `{scope}/providers/`, whose segment index is `providers_at`.
fn provider_route(scope: Scope, providers_at: usize, segments: &[String], lower: &[&str]) -> Route {
    let seg = |i: usize| segments[i].clone();
    let rest = providers_at;
    let tail = &lower[rest + 1..];
    match tail {
        ["microsoft.resources", "deployments"] => Route::DeploymentList { scope },
        ["microsoft.resources", "deployments", _, more @ ..] => {
            let name = seg(rest + 3);
            let (action, operation) = match more {
                [] => (DeploymentAction::Itself, None),
                ["cancel"] => (DeploymentAction::Cancel, None),
                ["validate"] => (DeploymentAction::Validate, None),
                ["whatif"] => (DeploymentAction::WhatIf, None),
                ["operations"] => (DeploymentAction::Operations, None),
                ["operationstatuses", _] => {
                    (DeploymentAction::OperationStatus, Some(seg(rest + 5)))
                }
                _ => return Route::Unknown,
            };
            Route::Deployment {
                scope,
                name,
                action,
                operation,
            }
        }
        ["microsoft.resources", "deploymentstacks", _] => Route::Stack {
            scope,
            name: seg(rest + 3),
        },
        // {namespace}/{type}/{name}[/{type}/{name}]*
        [_, _, _, ..] if tail.len() % 2 == 1 => {
            let namespace = seg(rest + 1);
            let mut types = vec![namespace.clone()];
            let mut id = format!("{}/providers/{namespace}", scope.id());
            for pair in segments[rest + 2..].chunks(2) {
                types.push(pair[0].clone());
                id.push('/');
                id.push_str(&pair[0]);
                id.push('/');
                id.push_str(&pair[1]);
            }
            Route::Resource {
                subscription: scope.subscription,
                resource_group: scope.resource_group,
                id,
                resource_type: types.join("/"),
            }
        }
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rg_scope() -> Scope {
        Scope {
            subscription: "sub".into(),
            resource_group: Some("My-RG".into()),
        }
    }

    #[test]
    fn keywords_are_case_insensitive_and_names_keep_case() {
        for path in [
            "/subscriptions/sub/resourcegroups/My-RG/providers/Microsoft.Resources/deployments/Dep1",
            "/SUBSCRIPTIONS/sub/resourceGroups/My-RG/providers/microsoft.resources/DEPLOYMENTS/Dep1/",
        ] {
            assert_eq!(
                parse(path),
                Route::Deployment {
                    scope: rg_scope(),
                    name: "Dep1".into(),
                    action: DeploymentAction::Itself,
                    operation: None
                }
            );
        }
    }

    #[test]
    fn deployment_actions_and_subscription_scope() {
        let route = parse(
            "/subscriptions/sub/providers/Microsoft.Resources/deployments/d/operationStatuses/op1",
        );
        assert_eq!(
            route,
            Route::Deployment {
                scope: Scope {
                    subscription: "sub".into(),
                    resource_group: None
                },
                name: "d".into(),
                action: DeploymentAction::OperationStatus,
                operation: Some("op1".into())
            }
        );
        assert_eq!(route.name(), "operationStatuses");
        let what_if = parse(
            "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Resources/deployments/d/whatIf",
        );
        assert_eq!(what_if.name(), "deployments/whatIf");
        assert_eq!(
            parse(
                "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Resources/deployments/"
            ),
            Route::DeploymentList { scope: rg_scope() }
        );
        assert_eq!(
            parse(
                "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Resources/deployments/d/bogus"
            ),
            Route::Unknown
        );
    }

    #[test]
    fn resources_providers_tokens_and_operations() {
        assert_eq!(
            parse("/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Network/virtualNetworks/vnet/subnets/a%20b"),
            Route::Resource {
                subscription: "sub".into(),
                resource_group: Some("My-RG".into()),
                id: "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Network/virtualNetworks/vnet/subnets/a b".into(),
                resource_type: "Microsoft.Network/virtualNetworks/subnets".into(),
            }
        );
        assert_eq!(
            parse("/subscriptions/sub/providers/Microsoft.Storage"),
            Route::Provider {
                subscription: "sub".into(),
                namespace: "Microsoft.Storage".into()
            }
        );
        assert_eq!(
            parse("/tenant-1/oauth2/v2.0/token"),
            Route::Token {
                tenant: "tenant-1".into()
            }
        );
        assert_eq!(
            parse("/subscriptions/sub/providers/Microsoft.Resources/operationResults/abc"),
            Route::Operation {
                subscription: "sub".into(),
                id: "abc".into(),
                status: false
            }
        );
        assert_eq!(
            parse(
                "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Resources/deploymentStacks/s1"
            ),
            Route::Stack {
                scope: rg_scope(),
                name: "s1".into()
            }
        );
        assert_eq!(
            parse(
                "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Storage/storageAccounts"
            ),
            Route::Unknown
        );
        assert_eq!(parse("/nothing"), Route::Unknown);
        assert_eq!(
            parse(
                "/providers/Microsoft.Management/managementGroups/mg/providers/Microsoft.Resources/deployments/d"
            ),
            Route::UnservedDeploymentScope {
                scope: "/providers/Microsoft.Management/managementGroups/mg".into()
            }
        );
        assert_eq!(
            parse("/providers/Microsoft.Resources/deployments/d"),
            Route::UnservedDeploymentScope { scope: "/".into() }
        );
    }

    #[test]
    fn locks_at_subscription_group_and_resource_scopes() {
        let lock = |scope: &str, name: Option<&str>| Route::Lock {
            subscription: "sub".into(),
            scope: scope.into(),
            name: name.map(str::to_owned),
        };
        assert_eq!(
            parse(
                "/subscriptions/sub/resourcegroups/My-RG/providers/microsoft.authorization/LOCKS/keep"
            ),
            lock("/subscriptions/sub/resourceGroups/My-RG", Some("keep"))
        );
        assert_eq!(
            parse("/subscriptions/sub/providers/Microsoft.Authorization/locks/keep"),
            lock("/subscriptions/sub", Some("keep"))
        );
        let route = parse(
            "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Network/virtualNetworks/v/providers/Microsoft.Authorization/locks",
        );
        assert_eq!(
            route,
            lock(
                "/subscriptions/sub/resourceGroups/My-RG/providers/Microsoft.Network/virtualNetworks/v",
                None
            )
        );
        assert_eq!(route.name(), "locks/list");
        assert_eq!(
            parse("/providers/Microsoft.Authorization/locks/keep"),
            Route::Unknown
        );
    }

    #[test]
    fn keys_are_lowercase_without_trailing_slash() {
        assert_eq!(rg_scope().key(), "/subscriptions/sub/resourcegroups/my-rg");
        assert_eq!(key("/A/B/"), "/a/b");
    }
}
