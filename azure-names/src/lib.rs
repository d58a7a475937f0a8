//! Azure's name and id rules, in one place for every crate that checks them: the CRD schema
//! states the patterns (the apiserver evaluates them with Go's RE2, where `\w` is ASCII),
//! and the shim and the ARM client call the predicates, which the tests hold to the
//! patterns.
//!
//! The rules follow Azure's "Naming rules and restrictions" for `Microsoft.Resources`, where
//! "alphanumerics" means ASCII letters and digits: resource groups 1-90 alphanumerics, `_`,
//! `-`, `.`, `(`, `)`, not ending in `.`; deployments 1-64 and deployment stacks 1-90 of
//! alphanumerics, `_`, `-`, `.`, `(`, `)`. Subscription ids are GUIDs (the REST
//! specifications give `subscriptionId` the `uuid` format).

/// Azure resource group: letters, digits, `-`, `_`, `.`, `(`, `)`; not ending in `.`.
pub const RESOURCE_GROUP: &str = r"^[-\w._()]*[-\w_()]$";
/// Longest resource group name Azure accepts.
pub const RESOURCE_GROUP_MAX_LEN: u32 = 90;

/// Azure subscription id: a GUID.
pub const SUBSCRIPTION_ID: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// Azure location, by name (`westeurope`) or display name (`West Europe`).
pub const LOCATION: &str = r"^[A-Za-z0-9][A-Za-z0-9 ]*$";
/// Longest location accepted.
pub const LOCATION_MAX_LEN: u32 = 64;

/// ARM deployment and deployment stack name.
pub const DEPLOYMENT_NAME: &str = r"^[-\w._()]+$";
/// Longest ARM deployment name.
pub const DEPLOYMENT_NAME_MAX_LEN: u32 = 64;
/// Longest ARM deployment stack name.
pub const DEPLOYMENT_STACK_NAME_MAX_LEN: u32 = 90;

/// An ARM id below a subscription: `/subscriptions/{guid}` followed by name/value
/// segment pairs (`/resourceGroups/{g}`, `/providers/{namespace}`, `/{type}/{name}`...).
pub const ARM_ID: &str = r"^/subscriptions/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(/[^/?#]+/[^/?#]+)+$";
/// Longest ARM id accepted.
pub const ARM_ID_MAX_LEN: u32 = 2048;

/// The characters of resource group, deployment and stack names: ASCII alphanumerics and
/// `_`, `-`, `.`, `(`, `)`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')')
}

/// What [`RESOURCE_GROUP`] and [`RESOURCE_GROUP_MAX_LEN`] accept.
pub fn is_resource_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= RESOURCE_GROUP_MAX_LEN as usize
        && !name.ends_with('.')
        && name.chars().all(is_name_char)
}

/// What [`DEPLOYMENT_NAME`] accepts, at most `max_len` characters
/// ([`DEPLOYMENT_NAME_MAX_LEN`] or [`DEPLOYMENT_STACK_NAME_MAX_LEN`]).
pub fn is_deployment_name(name: &str, max_len: u32) -> bool {
    !name.is_empty() && name.len() <= max_len as usize && name.chars().all(is_name_char)
}

/// What [`SUBSCRIPTION_ID`] accepts: a GUID, `8-4-4-4-12` hex digits.
pub fn is_subscription_id(value: &str) -> bool {
    let lengths = [8, 4, 4, 4, 12];
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == lengths.len()
        && parts
            .iter()
            .zip(lengths)
            .all(|(part, len)| part.len() == len && part.chars().all(|c| c.is_ascii_hexdigit()))
}

/// What [`LOCATION`] and [`LOCATION_MAX_LEN`] accept.
pub fn is_location(location: &str) -> bool {
    location.len() <= LOCATION_MAX_LEN as usize
        && location
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
}

#[cfg(test)]
mod tests {
    use regex::{Regex, RegexBuilder};

    use super::*;

    /// The pattern as the apiserver's RE2 reads it: `\w` is ASCII there.
    fn re2(pattern: &str) -> Regex {
        RegexBuilder::new(pattern).unicode(false).build().unwrap()
    }

    /// Names at the edges of every rule: lengths around each limit, each allowed special
    /// character first, inside and last, and characters Azure refuses, ASCII and not.
    fn samples() -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            "a",
            "rg",
            "rg-demo_1",
            "my.rg(prod)",
            "rg.",
            ".rg",
            "-rg",
            "_",
            "(",
            ")",
            ".",
            "rg demo",
            "rg/x",
            "rg#",
            "rg?x",
            "rgé",
            "grüne-rg",
            "日本",
            "rg\n",
            "a+b",
            "a:b",
            "westeurope",
            "West Europe",
            " west",
            "west-europe",
            "eastus2",
            "00000000-0000-0000-0000-000000000000",
            "0A1b2C3d-4e5F-6789-abcd-ef0123456789",
            "00000000-0000-0000-0000-00000000000",
            "00000000-0000-0000-0000-0000000000000",
            "{00000000-0000-0000-0000-000000000000}",
            "0000000g-0000-0000-0000-000000000000",
            "00000000-0000-0000-0000-000000000000-0000",
            "0000-1111",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for len in [63, 64, 65, 89, 90, 91] {
            samples.push("a".repeat(len));
            samples.push(format!("{}.", "a".repeat(len - 1)));
        }
        samples
    }

    fn agree(pattern: &str, max_len: usize, predicate: impl Fn(&str) -> bool) {
        let re = re2(pattern);
        for sample in samples() {
            let by_pattern = re.is_match(&sample) && sample.chars().count() <= max_len;
            assert_eq!(predicate(&sample), by_pattern, "{pattern} on {sample:?}");
        }
    }

    #[test]
    fn resource_group_predicate_is_the_pattern() {
        agree(RESOURCE_GROUP, 90, is_resource_group_name);
        assert!(is_resource_group_name(&"a".repeat(90)));
        assert!(!is_resource_group_name(&"a".repeat(91)));
        assert!(!is_resource_group_name("rgé"));
    }

    #[test]
    fn deployment_name_predicates_are_the_pattern() {
        agree(DEPLOYMENT_NAME, 64, |n| is_deployment_name(n, 64));
        agree(DEPLOYMENT_NAME, 90, |n| {
            is_deployment_name(n, DEPLOYMENT_STACK_NAME_MAX_LEN)
        });
        assert!(is_deployment_name("a.", DEPLOYMENT_NAME_MAX_LEN));
        assert!(!is_deployment_name(
            &"a".repeat(65),
            DEPLOYMENT_NAME_MAX_LEN
        ));
    }

    #[test]
    fn subscription_id_predicate_is_the_pattern() {
        agree(SUBSCRIPTION_ID, usize::MAX, is_subscription_id);
        assert!(is_subscription_id("0A1b2C3d-4e5F-6789-abcd-ef0123456789"));
        assert!(!is_subscription_id("0000-1111"));
    }

    #[test]
    fn location_predicate_is_the_pattern() {
        agree(LOCATION, 64, is_location);
        assert!(is_location("West Europe"));
        assert!(!is_location(&"a".repeat(65)));
    }
}
