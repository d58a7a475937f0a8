//! Names derived from an object that the controller and the shim must agree on.

use sha2::{Digest, Sha256};

use crate::patterns::DEPLOYMENT_NAME_MAX_LEN;

/// The controller's finalizer: an object keeps it until its Azure side is deleted (or
/// orphaned). The shim sets it itself on objects it creates only to delete.
pub const CLEANUP_FINALIZER: &str = "azure-driver.io/cleanup";

/// The ARM deployment (or deployment stack) name of an object: readable, unique through
/// the uid, at most 64 characters of `[-\w._()]`, stable for the object's lifetime — so a
/// restarted controller re-attaches instead of deploying twice, and the shim can name the
/// ARM id in its answer before the deployment exists.
pub fn deployment_name(namespace: &str, name: &str, uid: &str) -> String {
    let digest = hex::encode(Sha256::digest(uid.as_bytes()));
    let suffix = &digest[..12];
    let readable: String = format!("{namespace}-{name}")
        .chars()
        .map(|c| if azure_names::is_name_char(c) { c } else { '-' })
        .take(DEPLOYMENT_NAME_MAX_LEN as usize - suffix.len() - 1)
        .collect();
    format!("{readable}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_and_stay_unique_through_the_uid() {
        let long = "x".repeat(100);
        let a = deployment_name("ns", &long, "uid-1");
        let b = deployment_name("ns", &long, "uid-2");
        assert_ne!(a, b);
        assert_eq!(a.len(), DEPLOYMENT_NAME_MAX_LEN as usize);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c))
        );
    }

    #[test]
    fn names_are_stable_and_readable() {
        assert_eq!(
            deployment_name("ns", "web.app", "u"),
            deployment_name("ns", "web.app", "u")
        );
        assert!(deployment_name("ns", "web.app", "u").starts_with("ns-web.app-"));
        assert!(deployment_name("ns", "a/b c", "u").starts_with("ns-a-b-c-"));
    }
}
