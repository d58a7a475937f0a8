//! Fault decisions: which planned resources fail (by tag marker or rule) and which
//! requests get an injected error.

use rand::Rng;
use serde_json::Value;

use crate::config::{CompiledConfig, FaultStage, RequestFault};
use crate::error::ErrorDetail;
use crate::template::PlannedResource;

/// The error a planned resource fails with at `stage`, if any.
pub(crate) fn resource_fault(
    config: &CompiledConfig,
    resource: &PlannedResource,
    stage: FaultStage,
) -> Option<ErrorDetail> {
    let tag = match stage {
        FaultStage::Deploy => &config.config.faults.fail_tag,
        FaultStage::Preflight => &config.config.faults.preflight_tag,
    };
    let tagged = resource
        .body
        .get("tags")
        .and_then(Value::as_object)
        .and_then(|tags| {
            tags.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .map(|(_, v)| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
        });
    if let Some(code) = tagged {
        return Some(ErrorDetail {
            message: format!(
                "Resource '{}' of type '{}' failed: tag '{tag}' asks for {code}.",
                resource.name, resource.resource_type
            ),
            code,
            target: Some(resource.id.clone()),
        });
    }
    config
        .resource_rules
        .iter()
        .filter(|rule| rule.stage == stage)
        .find(|rule| {
            rule.resource_type
                .as_ref()
                .is_none_or(|re| re.is_match(&resource.resource_type))
                && rule
                    .name
                    .as_ref()
                    .is_none_or(|re| re.is_match(&resource.name))
        })
        .map(|rule| ErrorDetail {
            code: rule.code.clone(),
            message: rule.message.clone().unwrap_or_else(|| {
                format!(
                    "Resource '{}' of type '{}' failed with {} (armsim fault rule).",
                    resource.name, resource.resource_type, rule.code
                )
            }),
            target: Some(resource.id.clone()),
        })
}

/// Draws the injected fault for a request, if a rule matching `route_key` fires.
pub(crate) fn request_fault(
    config: &CompiledConfig,
    route_key: &str,
    rng: &mut impl Rng,
) -> Option<RequestFault> {
    config
        .request_rules
        .iter()
        .filter(|rule| rule.route.as_ref().is_none_or(|re| re.is_match(route_key)))
        .find(|rule| rng.random_bool(rule.probability))
        .map(|rule| rule.fault.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;

    fn planned(name: &str, tags: Value) -> PlannedResource {
        PlannedResource {
            id: format!(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{name}"
            ),
            resource_type: "Microsoft.Storage/storageAccounts".into(),
            name: name.into(),
            api_version: "2023-01-01".into(),
            body: json!({ "name": name, "tags": tags }),
            depends_on: vec![],
        }
    }

    #[test]
    fn tag_marker_and_rules_pick_the_failing_resources() {
        let config = SimConfig::from_yaml(
            "faults: { resourceRules: [ { name: '^bad', code: SkuNotAvailable, stage: preflight } ] }",
        )
        .unwrap()
        .compile()
        .unwrap();
        let tagged = planned("sa1", json!({ "armsim-fail": "Conflict" }));
        assert_eq!(
            resource_fault(&config, &tagged, FaultStage::Deploy)
                .unwrap()
                .code,
            "Conflict"
        );
        assert!(resource_fault(&config, &tagged, FaultStage::Preflight).is_none());
        let bad = planned("BadOne", json!({}));
        assert_eq!(
            resource_fault(&config, &bad, FaultStage::Preflight)
                .unwrap()
                .code,
            "SkuNotAvailable"
        );
        assert!(resource_fault(&config, &bad, FaultStage::Deploy).is_none());
        assert!(
            resource_fault(&config, &planned("good", json!({})), FaultStage::Preflight).is_none()
        );
    }

    #[test]
    fn request_faults_are_reproducible_from_the_seed() {
        let config = SimConfig::from_yaml(
            "faults: { requestRules: [ { route: '^GET ', probability: 0.5, fault: { kind: status, status: 503 } } ] }",
        )
        .unwrap()
        .compile()
        .unwrap();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..64)
                .map(|_| request_fault(&config, "GET deployments", &mut rng).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        let fired = draw(1).iter().filter(|f| **f).count();
        assert!((10..=54).contains(&fired), "{fired}");
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..64).all(|_| request_fault(&config, "PUT deployments", &mut rng).is_none()));
    }
}
