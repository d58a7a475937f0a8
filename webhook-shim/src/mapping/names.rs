//! Names and label values derived from requests: object names, Secret names, digests.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::request::{Credentials, ExecuteRequest, Lifecycle};

use super::checks::*;
use super::model::*;

/// A valid Kubernetes label value for any input: itself when valid, else a sanitised
/// prefix and a digest, so lookups by the same input find the same value.
pub fn label_value(raw: &str) -> String {
    let valid = raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && raw
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        return raw.to_string();
    }
    digest_suffixed(raw, raw, 40)
}

/// `text` with every character but ASCII letters and digits as `-`, cut to `max_prefix`
/// characters and trimmed of `-`, then `-` and the digest of `raw`; the digest alone when
/// nothing is left of `text`.
fn digest_suffixed(raw: &str, text: &str, max_prefix: usize) -> String {
    let digest = short_digest(raw);
    let prefix: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max_prefix)
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        digest
    } else {
        format!("{prefix}-{digest}")
    }
}

pub(super) fn short_digest(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))[..10].to_string()
}

/// DNS-1123 label form of any input (case-insensitive), at most `max` characters,
/// digest-suffixed when more than the case had to change.
pub(super) fn dns_label(raw: &str, max: usize) -> String {
    let lower = raw.to_ascii_lowercase();
    let valid = lower.len() <= max
        && !lower.is_empty()
        && lower.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !lower.starts_with('-')
        && !lower.ends_with('-');
    if valid {
        return lower;
    }
    let digest_len = short_digest(raw).len();
    digest_suffixed(raw, &lower, max.saturating_sub(digest_len + 1))
}

/// `r-<resourceId>`, plus `-<operation>` for lifecycles other than Create.
pub fn object_name(resource_id: &str, lifecycle: &Lifecycle) -> String {
    let base = format!("r-{}", dns_label(resource_id, 60));
    match lifecycle {
        Lifecycle::Create | Lifecycle::Delete => base,
        Lifecycle::Operation(name) => format!("{base}-{}", dns_label(name, 60)),
    }
}

/// The object a request writes or removes: [`object_name`], plus the instance an
/// addition names (see [`addition_instance`]), so that several additions of one resource
/// coexist and each removal takes away only its own.
pub fn request_object_name(req: &ExecuteRequest, lifecycle: &Lifecycle) -> String {
    let base = object_name(&req.system.resource_id, lifecycle);
    match addition_instance(req, lifecycle) {
        Some((_, instance)) => format!("{base}-{}", dns_label(&instance, 60)),
        None => base,
    }
}

/// Which of several additions `Add<X>`/`Create<X>` is meant, with the parameters that
/// name it: a peering by `<initiator>-to-<acceptor>`, any other addition by its property
/// `<x>_name` (`route_name` for AddRoute). `None` for other lifecycles or when the
/// request does not name the instance.
pub(super) fn addition_instance(
    req: &ExecuteRequest,
    lifecycle: &Lifecycle,
) -> Option<(BTreeMap<String, String>, String)> {
    let Lifecycle::Operation(operation) = lifecycle else {
        return None;
    };
    let thing = strip_prefix_ignore_case(operation, "Add")
        .or_else(|| strip_prefix_ignore_case(operation, "Create"))
        .filter(|thing| !thing.is_empty())?;
    if req.system.resource_type.name == "AzureVNet" && thing.eq_ignore_ascii_case("VnetPeering") {
        let initiator = req.string_property("initiator_vnet_name")?;
        let acceptor = req.string_property("acceptor_vnet_name")?;
        let instance = format!("{initiator}-to-{acceptor}");
        let parameters = BTreeMap::from([
            ("initiator_vnet_name".to_string(), initiator),
            ("acceptor_vnet_name".to_string(), acceptor),
        ]);
        return Some((parameters, instance));
    }
    let property = format!("{}_name", snake_case(thing));
    let instance = req.string_property(&property)?;
    Some((BTreeMap::from([(property, instance.clone())]), instance))
}

pub(super) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &text[prefix.len()..])
}

/// `VnetPeering` → `vnet_peering`.
pub(super) fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (index, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// SHA-256 of `fields`, each length-prefixed so that no two field lists share a digest.
pub(super) fn fields_digest(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Secret holding one client's credentials for one tenant and deployment location (the
/// exact name: locations differing only in case never share it), named by a digest.
pub fn credentials_secret_name(
    tenant_header: Option<&str>,
    location: &str,
    credentials: &Credentials,
) -> String {
    let digest = fields_digest(&[
        tenant_header.unwrap_or_default(),
        location,
        credentials.tenant_id.as_deref().unwrap_or_default(),
        credentials.client_id.as_deref().unwrap_or_default(),
    ]);
    format!("dl-{}", &digest[..40])
}

/// Who a request acts as: its `tenantId` header and the deployment location's Azure
/// tenant, client and subscription. The client secret is left out, so rotating it keeps
/// the resource's owner.
pub fn owner_digest(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    tenant_header: Option<&str>,
) -> Result<String, ApiError> {
    let credentials = &req.deployment_location.credentials;
    let subscription = subscription_id(req, ctx)?;
    Ok(fields_digest(&[
        tenant_header.unwrap_or_default(),
        credentials.tenant_id.as_deref().unwrap_or_default(),
        credentials.client_id.as_deref().unwrap_or_default(),
        &subscription,
    ]))
}

/// Topology entry name the Python driver used: the resource name without `-`.
pub fn topology_entry_name(resource_name: &str) -> String {
    resource_name.replace('-', "")
}
