//! Configuration compatible with the Python driver: its YAML config file, its
//! environment variables and the Helm values that set them. Flags override env,
//! env overrides the file, the file overrides defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::Value as Yaml;

pub const DEFAULT_CONFIG_FILE: &str = "/var/azuredriver/azuredriver_config.yml";
pub const DEFAULT_TLS_CERT: &str = "/var/azuredriver/certs/tls.crt";
pub const DEFAULT_TLS_KEY: &str = "/var/azuredriver/certs/tls.key";
pub const DEFAULT_PORT: u16 = 7275;
pub const DEFAULT_TOPIC: &str = "lm_vnfc_lifecycle_execution_events";
pub const DEFAULT_BOOTSTRAP: &str = "kafka:9092";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("{name} must be {expected}, got \"{value}\"")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// Command line; every flag also reads the environment variable named in its help.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "azure-driver-shim",
    version,
    about = "Resource-driver API for AzureResource objects, results on Kafka"
)]
pub struct Args {
    /// YAML config file (legacy keys: application.port, application.ssl.enabled, messaging.*).
    #[arg(long, env = "AZURE_DRIVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTPS port.
    #[arg(long, env = "DRIVER_PORT")]
    pub port: Option<String>,
    /// Serve TLS (`true`/`false`, Python spellings accepted).
    #[arg(long, env = "SSL_ENABLED")]
    pub ssl_enabled: Option<String>,
    /// PEM certificate chain, reloaded when it changes.
    #[arg(long, env = "TLS_CERT_FILE", default_value = DEFAULT_TLS_CERT)]
    pub tls_cert: PathBuf,
    /// PEM private key, reloaded when it changes.
    #[arg(long, env = "TLS_KEY_FILE", default_value = DEFAULT_TLS_KEY)]
    pub tls_key: PathBuf,
    /// Kafka bootstrap servers (messaging.connection_address).
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap: Option<String>,
    /// Topic of lifecycle results (messaging.topics.lifecycle_execution_events.name).
    #[arg(long, env = "KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,
    /// Extra Kafka client setting `key=value` (librdkafka or kafka-python names), repeatable.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE")]
    pub kafka_config: Vec<String>,
    /// Namespace of the AzureResource objects and Secrets the shim writes.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Log level (Python names accepted: DEBUG, INFO, WARNING, ERROR).
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// `logstash` for JSON lines, anything else for human-readable logs.
    #[arg(long, env = "LOG_TYPE")]
    pub log_type: Option<String>,
    /// Legacy WSGI process count; multiplies NUM_THREADS into the worker thread count.
    #[arg(long, env = "NUM_PROCESSES")]
    pub num_processes: Option<String>,
    /// Legacy WSGI thread count.
    #[arg(long, env = "NUM_THREADS")]
    pub num_threads: Option<String>,
    /// Subscription used when a deployment location names none.
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID")]
    pub default_subscription_id: Option<String>,
    /// The shim's own identity may be used when a location has no credentials.
    #[arg(long, env = "AZURE_DRIVER_OPERATOR_IDENTITY", default_value_t = false)]
    pub operator_identity: bool,
    /// Delete of a legacy resource (VNet, subnet, NSG, route table, storage account) removes
    /// only its deployment record and leaves the Azure resources, as the Python driver did.
    #[arg(long, env = "LEGACY_DELETE_KEEPS_RESOURCES", default_value_t = false)]
    pub legacy_delete_keeps_resources: bool,
    /// Identity of this replica in publication claims (defaults to the host name).
    #[arg(long, env = "HOSTNAME")]
    pub replica_id: Option<String>,
    /// PEM CA bundle: API callers must present a client certificate it signed (mutual TLS).
    #[arg(long, env = "CLIENT_CA_FILE")]
    pub client_ca: Option<PathBuf>,
    /// File of bearer tokens, one a line: API callers must send one of them
    /// (`Authorization: Bearer ...`); re-read every 5 s, so a rotated Secret needs no restart.
    #[arg(long, env = "API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// API requests served at once; more are answered 503 with Retry-After.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = crate::api::DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// MiB the requests in flight may hold together (bodies and driver files); requests
    /// that would exceed it are answered 503 with Retry-After.
    #[arg(long, env = "REQUEST_MEMORY_MIB", default_value_t = crate::api::DEFAULT_MEMORY_BUDGET_BYTES / (1024 * 1024))]
    pub request_memory_mib: usize,
}

pub use telemetry::LogFormat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub topic: String,
    /// librdkafka client settings passed through.
    pub client_config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub ssl_enabled: bool,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub kafka: KafkaSettings,
    pub namespace: String,
    pub log_level: String,
    pub log_format: LogFormat,
    pub worker_threads: Option<usize>,
    pub default_subscription_id: Option<String>,
    pub operator_identity: bool,
    pub legacy_delete_keeps_resources: bool,
    pub replica_id: String,
    pub client_ca: Option<PathBuf>,
    pub api_tokens_file: Option<PathBuf>,
    pub max_concurrent_requests: usize,
    pub request_memory_bytes: usize,
}

fn yaml_path<'a>(root: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(root, |node, key| node.get(*key))
}

fn yaml_scalar(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid {
            name,
            expected: "true or false",
            value: value.to_string(),
        }),
    }
}

fn parse_count(name: &'static str, value: &str) -> Result<usize, ConfigError> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::Invalid {
            name,
            expected: "a positive integer",
            value: value.to_string(),
        })
}

/// kafka-python setting names the Python driver's `messaging.config` used, in librdkafka terms.
fn librdkafka_key(key: &str) -> Option<String> {
    let mapped = match key {
        "security_protocol" => "security.protocol",
        "sasl_mechanism" => "sasl.mechanism",
        "sasl_plain_username" => "sasl.username",
        "sasl_plain_password" => "sasl.password",
        "ssl_cafile" => "ssl.ca.location",
        "ssl_certfile" => "ssl.certificate.location",
        "ssl_keyfile" => "ssl.key.location",
        "ssl_password" => "ssl.key.password",
        "ssl_check_hostname" => "enable.ssl.certificate.verification",
        "client_id" => "client.id",
        "request_timeout_ms" => "request.timeout.ms",
        "max_request_size" => "message.max.bytes",
        "linger_ms" => "linger.ms",
        // Settings of kafka-python with no librdkafka meaning.
        "api_version" | "api_version_auto_timeout_ms" => return None,
        other if other.contains('.') => other,
        other => return Some(other.replace('_', ".")),
    };
    Some(mapped.to_string())
}

fn client_config(file: &Yaml, extra: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut config = BTreeMap::new();
    if let Some(Yaml::Mapping(map)) = yaml_path(file, &["messaging", "config"]) {
        for (key, value) in map {
            let (Some(key), Some(value)) = (key.as_str(), yaml_scalar(value)) else {
                continue;
            };
            if let Some(key) = librdkafka_key(key) {
                config.insert(key, value);
            }
        }
    }
    for pair in extra {
        let (key, value) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
            name: "--kafka-config",
            expected: "KEY=VALUE",
            value: pair.clone(),
        })?;
        if let Some(key) = librdkafka_key(key.trim()) {
            config.insert(key, value.trim().to_string());
        }
    }
    Ok(config)
}

/// Reads the config file: the default path may be absent, an explicit one may not.
pub fn load_file(args: &Args) -> Result<Yaml, ConfigError> {
    let (path, explicit) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Ok(Yaml::Null),
        Ok(text) => serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: shown,
            source,
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Yaml::Null),
        Err(source) => Err(ConfigError::Read {
            path: shown,
            source,
        }),
    }
}

/// Combines flags/env (already merged by clap) with the config file.
pub fn resolve(args: &Args, file: &Yaml) -> Result<Settings, ConfigError> {
    let from_file = |path: &[&str]| yaml_path(file, path).and_then(yaml_scalar);
    let port = match args
        .port
        .clone()
        .or_else(|| from_file(&["application", "port"]))
    {
        Some(port) => port
            .trim()
            .parse::<u16>()
            .map_err(|_| ConfigError::Invalid {
                name: "port",
                expected: "a TCP port",
                value: port,
            })?,
        None => DEFAULT_PORT,
    };
    let ssl_enabled = match args
        .ssl_enabled
        .clone()
        .or_else(|| from_file(&["application", "ssl", "enabled"]))
    {
        Some(value) => parse_bool("SSL_ENABLED", &value)?,
        None => true,
    };
    let worker_threads = worker_threads(args)?;
    let log_format = args
        .log_type
        .as_deref()
        .map_or(LogFormat::Text, LogFormat::from_log_type);
    Ok(Settings {
        port,
        ssl_enabled,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        kafka: kafka_settings(args, file)?,
        namespace: args.namespace.clone(),
        log_level: args.log_level.clone().unwrap_or_else(|| "INFO".into()),
        log_format,
        worker_threads,
        default_subscription_id: args.default_subscription_id.clone(),
        operator_identity: args.operator_identity,
        legacy_delete_keeps_resources: args.legacy_delete_keeps_resources,
        replica_id: args
            .replica_id
            .clone()
            .unwrap_or_else(|| format!("shim-{}", uuid::Uuid::new_v4())),
        client_ca: args.client_ca.clone(),
        api_tokens_file: args.api_tokens_file.clone(),
        max_concurrent_requests: args.max_concurrent_requests.max(1),
        request_memory_bytes: args.request_memory_mib.max(1) * 1024 * 1024,
    })
}

/// Runtime worker threads: `NUM_PROCESSES` × `NUM_THREADS` of the Python driver's
/// settings, at most 256; `None` (the runtime's default) when neither is set.
fn worker_threads(args: &Args) -> Result<Option<usize>, ConfigError> {
    let threads = args
        .num_threads
        .as_deref()
        .map(|v| parse_count("NUM_THREADS", v))
        .transpose()?;
    let processes = args
        .num_processes
        .as_deref()
        .map(|v| parse_count("NUM_PROCESSES", v))
        .transpose()?;
    Ok(match (processes, threads) {
        (None, None) => None,
        (p, t) => Some((p.unwrap_or(1) * t.unwrap_or(1)).min(256)),
    })
}

/// Kafka settings: flags/env over the config file over the defaults.
fn kafka_settings(args: &Args, file: &Yaml) -> Result<KafkaSettings, ConfigError> {
    let from_file = |path: &[&str]| yaml_path(file, path).and_then(yaml_scalar);
    Ok(KafkaSettings {
        bootstrap_servers: args
            .kafka_bootstrap
            .clone()
            .or_else(|| from_file(&["messaging", "connection_address"]))
            .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string()),
        topic: args
            .kafka_topic
            .clone()
            .or_else(|| from_file(&["messaging", "topics", "lifecycle_execution_events", "name"]))
            .unwrap_or_else(|| DEFAULT_TOPIC.to_string()),
        client_config: client_config(file, &args.kafka_config)?,
    })
}

/// Python log level names in `tracing` terms.
pub fn tracing_level(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "TRACE" => "trace",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" | "FATAL" => "error",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const LEGACY_FILE: &str = r#"
application:
  port: 8443
  ssl:
    enabled: False
messaging:
  connection_address: cp4na-o-events-kafka-bootstrap:9092
  api_version_auto_timeout_ms: 10000
  config:
    security_protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl.username: brent
    ssl_cafile: /certs/ca.pem
    api_version: [2, 0]
  topics:
    lifecycle_execution_events:
      name: custom_topic
unknown_section:
  ignored: true
"#;

    fn args(flags: &[&str]) -> Args {
        let mut argv = vec!["azure-driver-shim"];
        argv.extend_from_slice(flags);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn legacy_file_keys_are_honoured() {
        let file: Yaml = serde_yaml::from_str(LEGACY_FILE).unwrap();
        let settings = resolve(&args(&[]), &file).unwrap();
        assert_eq!(settings.port, 8443);
        assert!(!settings.ssl_enabled);
        assert_eq!(
            settings.kafka.bootstrap_servers,
            "cp4na-o-events-kafka-bootstrap:9092"
        );
        assert_eq!(settings.kafka.topic, "custom_topic");
        assert_eq!(
            settings.kafka.client_config,
            BTreeMap::from([
                ("sasl.mechanism".to_string(), "SCRAM-SHA-512".to_string()),
                ("sasl.username".to_string(), "brent".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("ssl.ca.location".to_string(), "/certs/ca.pem".to_string()),
            ])
        );
    }

    #[test]
    fn flags_override_the_file() {
        let file: Yaml = serde_yaml::from_str(LEGACY_FILE).unwrap();
        let settings = resolve(
            &args(&[
                "--port",
                "9000",
                "--ssl-enabled",
                "True",
                "--kafka-topic",
                "t2",
                "--kafka-config",
                "linger_ms=5",
                "--num-processes",
                "9",
                "--num-threads",
                "8",
                "--log-type",
                "logstash",
            ]),
            &file,
        )
        .unwrap();
        assert_eq!(settings.port, 9000);
        assert!(settings.ssl_enabled);
        assert_eq!(settings.kafka.topic, "t2");
        assert_eq!(settings.kafka.client_config["linger.ms"], "5");
        assert_eq!(settings.worker_threads, Some(72));
        assert_eq!(settings.log_format, LogFormat::Logstash);
    }

    #[test]
    fn defaults_match_the_python_driver() {
        let settings = resolve(&args(&[]), &Yaml::Null).unwrap();
        assert_eq!(settings.port, 7275);
        assert!(settings.ssl_enabled);
        assert_eq!(settings.kafka.topic, DEFAULT_TOPIC);
        assert_eq!(settings.tls_cert, PathBuf::from(DEFAULT_TLS_CERT));
        assert_eq!(settings.log_format, LogFormat::Text);
    }

    #[test]
    fn invalid_values_are_clear_errors() {
        let err = resolve(&args(&["--ssl-enabled", "maybe"]), &Yaml::Null).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SSL_ENABLED must be true or false, got \"maybe\""
        );
        let err = resolve(&args(&["--port", "http"]), &Yaml::Null).unwrap_err();
        assert_eq!(err.to_string(), "port must be a TCP port, got \"http\"");
        let err = load_file(&args(&["--config", "/nonexistent/azd.yml"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read config file /nonexistent/azd.yml")
        );
    }

    #[test]
    fn python_log_levels_map() {
        assert_eq!(tracing_level("WARNING"), "warn");
        assert_eq!(tracing_level("info"), "info");
    }
}
