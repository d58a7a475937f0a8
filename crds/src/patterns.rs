//! Name rules the CRD schema enforces, shared with code that builds names. Azure's own
//! name and id rules come from `azure-names`, their one home.
//!
//! The apiserver evaluates these with Go's RE2, so they use only syntax RE2 and the
//! `regex` crate agree on.

pub use azure_names::{
    ARM_ID, ARM_ID_MAX_LEN, DEPLOYMENT_NAME, DEPLOYMENT_NAME_MAX_LEN, LOCATION, LOCATION_MAX_LEN,
    RESOURCE_GROUP, RESOURCE_GROUP_MAX_LEN, SUBSCRIPTION_ID,
};

/// Kubernetes object name of Secrets and ConfigMaps (RFC 1123 DNS subdomain).
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Longest DNS subdomain.
pub const DNS_SUBDOMAIN_MAX_LEN: u32 = 253;

/// Key inside a Secret or ConfigMap.
pub const DATA_KEY: &str = r"^[-._a-zA-Z0-9]+$";
/// Key of a ConfigMap holding a template: its suffix says the language.
pub const TEMPLATE_KEY: &str = r"^[-._a-zA-Z0-9]+\.(bicep|json)$";
/// Longest Secret or ConfigMap key.
pub const DATA_KEY_MAX_LEN: u32 = 253;

/// `syncInterval`: `0` (or any zero duration), or a Go-style duration made of `h`, `m`,
/// `s`, `ms` parts (`1h30m`) of at least one second: one of its parts is a whole second or
/// more, so an object cannot make the operator poll ARM in a tight loop. RE2 has no
/// look-ahead, hence the spelled-out alternatives.
pub const SYNC_INTERVAL: &str = r"^(0|(0+(ms|s|m|h))+|([0-9]+(ms|s|m|h))*(0*[1-9][0-9]*(h|m|s)|0*[1-9][0-9]{3,}ms)([0-9]+(ms|s|m|h))*)$";

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    fn check(pattern: &str, good: &[&str], bad: &[&str]) {
        let re = Regex::new(pattern).unwrap();
        for name in good {
            assert!(re.is_match(name), "{pattern} rejects {name:?}");
        }
        for name in bad {
            assert!(!re.is_match(name), "{pattern} accepts {name:?}");
        }
    }

    #[test]
    fn resource_group() {
        check(
            RESOURCE_GROUP,
            &["rg", "rg-demo_1", "my.rg(prod)", "a"],
            &["", "rg.", "rg demo", "rg/x", "rg#"],
        );
    }

    #[test]
    fn subscription_id() {
        check(
            SUBSCRIPTION_ID,
            &[
                "00000000-0000-0000-0000-000000000000",
                "0A1b2C3d-4e5F-6789-abcd-ef0123456789",
            ],
            &[
                "",
                "not-a-guid",
                "00000000-0000-0000-0000-00000000000",
                "{00000000-0000-0000-0000-000000000000}",
            ],
        );
    }

    #[test]
    fn dns_subdomain() {
        check(
            DNS_SUBDOMAIN,
            &["a", "azure-credentials", "db.prod-1"],
            &["", "Azure", "-a", "a-", "a_b", "a..b"],
        );
    }

    #[test]
    fn template_key() {
        check(
            TEMPLATE_KEY,
            &["main.bicep", "azuredeploy.json", "Install.bicep"],
            &["main", "main.yaml", ".bicep", "a/main.bicep"],
        );
    }

    #[test]
    fn location_and_deployment_name() {
        check(
            LOCATION,
            &["westeurope", "West Europe", "eastus2"],
            &["", " west", "west-europe"],
        );
        check(
            DEPLOYMENT_NAME,
            &["azd-ns-name-1a2b", "a.b(c)"],
            &["", "a b", "a/b"],
        );
    }

    #[test]
    fn arm_id() {
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000001";
        check(
            ARM_ID,
            &[
                &format!("{sub}/resourceGroups/rg"),
                &format!("{sub}/resourceGroups/rg/providers/Microsoft.Resources/deployments/d"),
                &format!("{sub}/providers/Microsoft.Resources/deploymentStacks/s"),
            ],
            &[
                sub,
                "/subscriptions/x/resourceGroups/rg",
                &format!("{sub}/resourceGroups"),
                &format!("{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks"),
                &format!("{sub}/resourceGroups//x"),
                "resourceGroups/rg",
            ],
        );
    }
}
