//! Configuration: one struct per service, defaults, a TOML file, an environment overlay.
//!
//! [`load_config`] starts from `T::default()`, merges the TOML file named by
//! `SERRANO_<SERVICE>_CONFIG` over it, then lets every `SERRANO_<SERVICE>_<PATH>` variable
//! override the leaf at `PATH` (the upper-cased, `_`-joined path of the field, e.g.
//! `SERRANO_RO_API_HTTP_BIND` for `http.bind`). A variable with the prefix that names no leaf is
//! an error, so a typo cannot pass silently. Working on the serialised default tree means a
//! service only writes its struct with `#[serde(deny_unknown_fields, default)]`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::serve::TlsFiles;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file (or a token file) cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("invalid TOML in {path}: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A service started on its own has no bearer token to accept.
    #[error("no bearer token configured: set {prefix}HTTP_TOKENS or {prefix}HTTP_TOKEN_FILE")]
    NoTokens {
        /// The service's variable prefix, e.g. `SERRANO_RO_API_`.
        prefix: String,
    },
    /// An environment variable with the service prefix names no configuration key.
    #[error("unknown configuration variable {var}: no such key")]
    UnknownKey {
        /// The variable.
        var: String,
    },
    /// An environment variable's value does not fit its key.
    #[error("invalid value for {var}: {message}")]
    InvalidEnv {
        /// The variable.
        var: String,
        /// Why.
        message: String,
    },
    /// The merged configuration does not fit the service's config struct.
    #[error("invalid configuration at `{path}`: {message}")]
    Invalid {
        /// Path of the offending key (`.` for the root).
        path: String,
        /// Why.
        message: String,
    },
    /// The default configuration cannot be serialised (a bug in the config struct).
    #[error("cannot serialise the default configuration: {0}")]
    Default(#[source] serde_json::Error),
}

/// Loads the configuration of `service` (e.g. `"ro-api"`) from its defaults, its TOML file and
/// the process environment.
pub fn load_config<T: Serialize + DeserializeOwned + Default>(
    service: &str,
) -> Result<T, ConfigError> {
    // Variables that are not UTF-8 cannot be ours (our prefix is ASCII and values must parse),
    // so they are skipped rather than panicking like `std::env::vars` would.
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    load_config_from(service, &env)
}

/// The environment prefix of a service: `"ro-api"` gives `SERRANO_RO_API_`.
pub fn env_prefix(service: &str) -> String {
    format!(
        "SERRANO_{}_",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// [`load_config`] with an explicit environment (the testable core).
pub fn load_config_from<T: Serialize + DeserializeOwned + Default>(
    service: &str,
    env: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    let prefix = env_prefix(service);
    let config_var = format!("{prefix}CONFIG");
    let mut tree = serde_json::to_value(T::default()).map_err(ConfigError::Default)?;

    if let Some(path) = env.get(&config_var) {
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Toml {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let file_tree = serde_json::to_value(table).map_err(|error| ConfigError::Invalid {
            path: ".".to_owned(),
            message: format!("{}: {error}", path.display()),
        })?;
        merge(&mut tree, file_tree);
    }

    let mut leaves = HashMap::new();
    collect_leaves(&tree, &mut Vec::new(), &mut leaves);
    // Sorted so that the first error reported does not depend on hash order.
    let mut vars: Vec<(&String, &String)> = env
        .iter()
        .filter(|(key, _)| key.starts_with(&prefix) && **key != config_var)
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let key = &var[prefix.len()..];
        let path = leaves
            .get(key)
            .ok_or_else(|| ConfigError::UnknownKey { var: var.clone() })?;
        let leaf = leaf_mut(&mut tree, path);
        let value = env_value(leaf, raw).map_err(|message| ConfigError::InvalidEnv {
            var: var.clone(),
            message,
        })?;
        *leaf = value;
    }

    serde_path_to_error::deserialize(tree).map_err(|error| ConfigError::Invalid {
        path: error.path().to_string(),
        message: error.into_inner().to_string(),
    })
}

/// Merges `over` into `base`: tables merge recursively, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        // A tagged enum (`{type = "mongodb", ...}`) switched to another variant: the default
        // variant's fields do not belong to the new one, so the file's table replaces it whole.
        (Value::Object(base), Value::Object(over)) if matches!((base.get("type"), over.get("type")), (Some(a), Some(b)) if a != b) =>
        {
            *base = over;
        }
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Maps every leaf's environment name (`HTTP_BIND`) to its path (`["http", "bind"]`).
/// Non-empty objects are branches; everything else, empty objects included, is a leaf.
fn collect_leaves(value: &Value, path: &mut Vec<String>, out: &mut HashMap<String, Vec<String>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                collect_leaves(child, path, out);
                path.pop();
            }
        }
        _ if path.is_empty() => {}
        _ => {
            let name = path.join("_").to_ascii_uppercase().replace('-', "_");
            // On a name clash (`a.b_c` and `a_b.c`) the first path found wins.
            out.entry(name).or_insert_with(|| path.clone());
        }
    }
}

fn leaf_mut<'a>(tree: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(tree, |node, key| {
        // Paths come from walking this very tree, so every step exists; `Null` is a safe
        // fallback that keeps this total.
        match node {
            Value::Object(map) => map.entry(key.clone()).or_insert(Value::Null),
            other => other,
        }
    })
}

/// Converts an environment value to the JSON type of the leaf it overrides.
fn env_value(leaf: &Value, raw: &str) -> Result<Value, String> {
    match leaf {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Number(_) => match serde_json::from_str::<Value>(raw.trim()) {
            Ok(value @ Value::Number(_)) => Ok(value),
            _ => Err(format!("expected a number, got {raw:?}")),
        },
        Value::Bool(_) => parse_bool(raw).ok_or_else(|| format!("expected a bool, got {raw:?}")),
        Value::Array(items) => {
            if raw.trim_start().starts_with('[') {
                return match serde_json::from_str::<Value>(raw) {
                    Ok(value @ Value::Array(_)) => Ok(value),
                    Ok(_) => Err("expected a JSON array".to_owned()),
                    Err(error) => Err(format!("invalid JSON array: {error}")),
                };
            }
            let scalar_items = items.first().is_some_and(|item| !item.is_string());
            Ok(Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| match serde_json::from_str::<Value>(item) {
                        Ok(value @ (Value::Number(_) | Value::Bool(_))) if scalar_items => value,
                        _ => Value::String(item.to_owned()),
                    })
                    .collect(),
            ))
        }
        Value::Object(_) => match serde_json::from_str::<Value>(raw) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err("expected a JSON object".to_owned()),
        },
        Value::Null => match serde_json::from_str::<Value>(raw.trim()) {
            Ok(value @ (Value::Number(_) | Value::Bool(_))) => Ok(value),
            _ => Ok(Value::String(raw.to_owned())),
        },
    }
}

fn parse_bool(raw: &str) -> Option<Value> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(Value::Bool(true)),
        "false" | "0" | "no" | "off" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// Default request body limit: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A secret string: `Debug` and `Display` print `***`; serialised as the plain string.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Common HTTP settings every service config embeds as its `http` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Accepted bearer tokens.
    pub tokens: Vec<Secret>,
    /// File with one accepted token per line (blank lines and `#` comments skipped).
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain; TLS is on when both this and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Format of log lines.
    pub log_format: LogFormat,
    /// `tracing` filter directive (`RUST_LOG` overrides it).
    pub log_level: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tokens: Vec::new(),
            token_file: None,
            tls_cert: None,
            tls_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
        }
    }
}

impl HttpConfig {
    /// Defaults listening on `127.0.0.1:port` (each service has its fixed port).
    pub fn with_port(port: u16) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            ..Self::default()
        }
    }

    /// The configured tokens plus those of `token_file`.
    pub fn all_tokens(&self) -> Result<Vec<Secret>, ConfigError> {
        let mut tokens = self.tokens.clone();
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(Secret::new),
            );
        }
        Ok(tokens)
    }

    /// [`all_tokens`](Self::all_tokens), refusing an empty list: a service running on its own
    /// without a token would answer 401 to everybody.
    pub fn required_tokens(&self, service: &str) -> Result<Vec<Secret>, ConfigError> {
        let tokens = self.all_tokens()?;
        if tokens.is_empty() {
            return Err(ConfigError::NoTokens {
                prefix: env_prefix(service),
            });
        }
        Ok(tokens)
    }

    /// The TLS files when both are set, `None` when neither is, an error when only one is.
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (cert, _) => Err(ConfigError::Invalid {
                path: if cert.is_some() {
                    "http.tls_key"
                } else {
                    "http.tls_cert"
                }
                .to_owned(),
                message: "tls_cert and tls_key must be set together".to_owned(),
            }),
        }
    }
}

/// The machine's host name (`localhost` when it cannot be read): part of the default, stable
/// identities services derive for themselves.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
