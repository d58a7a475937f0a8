//! Simulator configuration: what the `--config` file (YAML or JSON) holds and what
//! `RunningSim::update_config` swaps at run time.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot parse the configuration: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("invalid regular expression {pattern:?} in {field}: {source}")]
    Regex {
        field: &'static str,
        pattern: String,
        source: regex::Error,
    },
    #[error("{field} must be {expected}, got {value}")]
    OutOfRange {
        field: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// Everything configurable about the simulator. `Default` is what ARM looks like
/// with short latencies suited to tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of the random generator behind probabilistic faults.
    pub seed: u64,
    /// `expires_in` of issued tokens; after it the token is rejected with 401.
    pub token_lifetime_secs: u64,
    /// When non-empty, only these credentials get tokens.
    pub credentials: Vec<Credential>,
    /// `Retry-After` seconds on long-running responses and operation polls.
    pub retry_after_secs: u64,
    pub latency: LatencyConfig,
    pub operation_retention: OperationRetentionConfig,
    pub throttling: ThrottlingConfig,
    pub faults: FaultConfig,
    /// Test convenience: resource types (case-insensitive regexes, anchored) that
    /// templates may read or declare `existing` without creating them first. An
    /// absent resource of a matching type answers the evaluator as if it existed,
    /// with the runtime values its provider would report. Never stored in the
    /// inventory and never served by resource GETs. Empty = nothing is assumed.
    pub assume_existing: Vec<String>,
    pub managed_identity: ManagedIdentityConfig,
}

/// The managed identity the IMDS and App Service token endpoints speak for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentityConfig {
    /// Tenant of the issued tokens.
    pub tenant_id: String,
    /// The identity's client id; a request naming another `client_id` is refused.
    pub client_id: String,
    /// The secret App Service hands the process as `IDENTITY_HEADER`.
    pub identity_header: String,
}

impl Default for ManagedIdentityConfig {
    fn default() -> Self {
        Self {
            tenant_id: "11111111-1111-1111-1111-111111111111".into(),
            client_id: "5a1e7c3d-0000-4000-8000-00000000a2d1".into(),
            identity_header: "armsim-identity-header".into(),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            token_lifetime_secs: 3599,
            credentials: Vec::new(),
            retry_after_secs: 1,
            latency: LatencyConfig::default(),
            operation_retention: OperationRetentionConfig::default(),
            throttling: ThrottlingConfig::default(),
            faults: FaultConfig::default(),
            assume_existing: Vec::new(),
            managed_identity: ManagedIdentityConfig::default(),
        }
    }
}

/// A service principal allowed to get tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credential {
    /// Restricts the credential to one tenant when set.
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub client_id: String,
    /// Accepted `client_secret`; `None` allows only client assertions.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Whether a `client_assertion` (workload identity) is accepted for this client.
    #[serde(default = "yes")]
    pub allow_assertion: bool,
}

fn yes() -> bool {
    true
}

/// Durations of long-running operations (milliseconds) and extra delays before
/// answering given routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencyConfig {
    /// Time a deployment or stack stays `Accepted` / `initializing`.
    pub accepted_ms: u64,
    /// Time a deployment or stack runs before its first resource is created.
    pub running_ms: u64,
    /// Extra time per created resource.
    pub per_resource_ms: u64,
    /// Duration of deletions (resource groups, deployments, stacks, async resources).
    pub delete_ms: u64,
    /// Duration of a what-if operation.
    pub what_if_ms: u64,
    /// Delay before answering, keyed by `"METHOD route"` as in the counters
    /// (e.g. `"GET operationStatuses"` for slow polls).
    pub responses: BTreeMap<String, u64>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            accepted_ms: 50,
            running_ms: 200,
            per_resource_ms: 0,
            delete_ms: 200,
            what_if_ms: 50,
            responses: BTreeMap::new(),
        }
    }
}

/// How long finished long-running operations stay pollable. ARM forgets them after a
/// while; the count and size bounds keep memory flat under any request rate (a what-if
/// result lists every resource of its resource group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationRetentionConfig {
    /// A finished operation's status and result URLs answer this long after it
    /// ended, then 404 `OperationNotFound`.
    pub seconds: u64,
    /// Finished operations kept at most; beyond it the oldest are forgotten first,
    /// whatever their age.
    pub max_finished: usize,
    /// Bytes of results (serialized what-if bodies) kept at most, likewise.
    pub max_result_bytes: usize,
}

impl Default for OperationRetentionConfig {
    fn default() -> Self {
        Self {
            seconds: 600,
            max_finished: 10_000,
            max_result_bytes: 256 << 20,
        }
    }
}

/// Per-subscription token buckets, as ARM's regional throttling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ThrottlingConfig {
    pub enabled: bool,
    pub reads: BucketConfig,
    pub writes: BucketConfig,
    pub deletes: BucketConfig,
}

impl Default for ThrottlingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            reads: BucketConfig {
                capacity: 250,
                refill_per_sec: 25.0,
            },
            writes: BucketConfig {
                capacity: 200,
                refill_per_sec: 10.0,
            },
            deletes: BucketConfig {
                capacity: 200,
                refill_per_sec: 10.0,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketConfig {
    pub capacity: u32,
    pub refill_per_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// A resource whose tags hold this key fails during deployment with the tag's
    /// value as ARM error code.
    pub fail_tag: String,
    /// A resource whose tags hold this key fails preflight (synchronous 400) with
    /// the tag's value as the inner error code.
    pub preflight_tag: String,
    pub resource_rules: Vec<ResourceFaultRule>,
    pub request_rules: Vec<RequestFaultRule>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            fail_tag: "armsim-fail".into(),
            preflight_tag: "armsim-preflight".into(),
            resource_rules: Vec::new(),
            request_rules: Vec::new(),
        }
    }
}

/// Fails resources whose type and name match (case-insensitive regexes; an absent
/// pattern matches everything).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFaultRule {
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub stage: FaultStage,
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultStage {
    /// The deployment starts and ends `Failed` with `DeploymentFailed`.
    #[default]
    Deploy,
    /// The PUT / validate is refused with 400 `InvalidTemplateDeployment`.
    Preflight,
}

/// Answers matching requests with a fault, with the given probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestFaultRule {
    /// Regex over `"METHOD route"` (e.g. `"^PUT deployments$"`); absent = all ARM requests.
    #[serde(default)]
    pub route: Option<String>,
    pub probability: f64,
    pub fault: RequestFault,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum RequestFault {
    /// 429 `TooManyRequests`-style throttling with `Retry-After`.
    #[serde(rename_all = "camelCase")]
    Throttle { retry_after_secs: u64 },
    /// A gateway error with this status (500, 502, 503, 504...).
    Status { status: u16 },
    /// Close the connection without answering.
    Drop,
}

/// A configuration whose patterns are compiled and ranges checked.
#[derive(Debug)]
pub(crate) struct CompiledConfig {
    pub config: SimConfig,
    pub resource_rules: Vec<CompiledResourceRule>,
    pub request_rules: Vec<CompiledRequestRule>,
    pub assume_existing: Vec<Regex>,
}

impl CompiledConfig {
    /// Whether `assumeExisting` covers this resource type.
    pub fn assumes_existing(&self, resource_type: &str) -> bool {
        self.assume_existing
            .iter()
            .any(|pattern| pattern.is_match(resource_type))
    }
}

#[derive(Debug)]
pub(crate) struct CompiledResourceRule {
    pub resource_type: Option<Regex>,
    pub name: Option<Regex>,
    pub stage: FaultStage,
    pub code: String,
    pub message: Option<String>,
}

#[derive(Debug)]
pub(crate) struct CompiledRequestRule {
    pub route: Option<Regex>,
    pub probability: f64,
    pub fault: RequestFault,
}

impl SimConfig {
    /// Reads a YAML or JSON document (JSON is YAML).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: SimConfig = serde_yaml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks patterns and ranges without keeping the compiled form.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.compile().map(|_| ())
    }

    pub(crate) fn compile(&self) -> Result<CompiledConfig, ConfigError> {
        for (field, bucket) in [
            ("throttling.reads", &self.throttling.reads),
            ("throttling.writes", &self.throttling.writes),
            ("throttling.deletes", &self.throttling.deletes),
        ] {
            if bucket.capacity == 0
                || bucket.refill_per_sec.is_nan()
                || bucket.refill_per_sec <= 0.0
            {
                return Err(ConfigError::OutOfRange {
                    field,
                    expected: "a positive capacity and refill rate",
                    value: format!("{bucket:?}"),
                });
            }
        }
        let resource_rules = self
            .faults
            .resource_rules
            .iter()
            .map(compile_resource_rule)
            .collect::<Result<_, _>>()?;
        let request_rules = self
            .faults
            .request_rules
            .iter()
            .map(compile_request_rule)
            .collect::<Result<_, _>>()?;
        let assume_existing = self
            .assume_existing
            .iter()
            .map(|pattern| {
                RegexBuilder::new(&format!("^(?:{pattern})$"))
                    .case_insensitive(true)
                    .build()
                    .map_err(|source| ConfigError::Regex {
                        field: "assumeExisting",
                        pattern: pattern.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledConfig {
            config: self.clone(),
            resource_rules,
            request_rules,
            assume_existing,
        })
    }
}

/// A resource fault rule with its patterns compiled; an empty code is refused.
fn compile_resource_rule(rule: &ResourceFaultRule) -> Result<CompiledResourceRule, ConfigError> {
    if rule.code.trim().is_empty() {
        return Err(ConfigError::OutOfRange {
            field: "faults.resourceRules.code",
            expected: "a non-empty ARM error code",
            value: String::new(),
        });
    }
    Ok(CompiledResourceRule {
        resource_type: compile_pattern("faults.resourceRules.resourceType", &rule.resource_type)?,
        name: compile_pattern("faults.resourceRules.name", &rule.name)?,
        stage: rule.stage,
        code: rule.code.clone(),
        message: rule.message.clone(),
    })
}

/// A request fault rule with its route compiled; probability and status checked.
fn compile_request_rule(rule: &RequestFaultRule) -> Result<CompiledRequestRule, ConfigError> {
    if !(0.0..=1.0).contains(&rule.probability) {
        return Err(ConfigError::OutOfRange {
            field: "faults.requestRules.probability",
            expected: "between 0 and 1",
            value: rule.probability.to_string(),
        });
    }
    if let RequestFault::Status { status } = rule.fault
        && !(400..=599).contains(&status)
    {
        return Err(ConfigError::OutOfRange {
            field: "faults.requestRules.fault.status",
            expected: "an HTTP error status (400-599)",
            value: status.to_string(),
        });
    }
    Ok(CompiledRequestRule {
        route: compile_pattern("faults.requestRules.route", &rule.route)?,
        probability: rule.probability,
        fault: rule.fault.clone(),
    })
}

fn compile_pattern(
    field: &'static str,
    pattern: &Option<String>,
) -> Result<Option<Regex>, ConfigError> {
    pattern
        .as_deref()
        .map(|p| {
            RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .map_err(|source| ConfigError::Regex {
                    field,
                    pattern: p.to_owned(),
                    source,
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_with_defaults_for_missing_fields() {
        let config = SimConfig::from_yaml(
            r#"
seed: 7
latency: { runningMs: 10 }
faults:
  resourceRules:
    - resourceType: "Microsoft.Storage/.*"
      code: Conflict
  requestRules:
    - route: "^PUT deployments$"
      probability: 0.5
      fault: { kind: throttle, retryAfterSecs: 3 }
    - probability: 0.1
      fault: { kind: drop }
"#,
        )
        .unwrap();
        assert_eq!(config.seed, 7);
        assert_eq!(config.latency.running_ms, 10);
        assert_eq!(config.latency.delete_ms, 200);
        assert_eq!(config.throttling.writes.capacity, 200);
        assert_eq!(
            config.faults.request_rules[0].fault,
            RequestFault::Throttle {
                retry_after_secs: 3
            }
        );
        assert_eq!(config.faults.request_rules[1].fault, RequestFault::Drop);
    }

    #[test]
    fn rejects_unknown_fields_bad_regex_and_ranges() {
        assert!(SimConfig::from_yaml("sed: 1").is_err());
        let bad_regex =
            SimConfig::from_yaml("faults: { resourceRules: [ { name: '(', code: Conflict } ] }")
                .unwrap_err();
        assert!(
            matches!(bad_regex, ConfigError::Regex { .. }),
            "{bad_regex}"
        );
        let bad_probability = SimConfig::from_yaml(
            "faults: { requestRules: [ { probability: 1.5, fault: { kind: drop } } ] }",
        )
        .unwrap_err();
        assert!(matches!(bad_probability, ConfigError::OutOfRange { .. }));
        let bad_status = SimConfig::from_yaml(
            "faults: { requestRules: [ { probability: 1, fault: { kind: status, status: 200 } } ] }",
        )
        .unwrap_err();
        assert!(matches!(bad_status, ConfigError::OutOfRange { .. }));
    }
}
