//! `load_config_from`: defaults, TOML file, environment overlay, and their errors.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serrano_service::config::ConfigError;
use serrano_service::{HttpConfig, LogFormat, Secret, load_config_from};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TestConfig {
    http: HttpConfig,
    datastore: Datastore,
    workers: u32,
    dry_run: bool,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(7102),
            datastore: Datastore::default(),
            workers: 4,
            dry_run: false,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Datastore {
    etcd_endpoints: Vec<String>,
    ports: Vec<u16>,
    prefix: String,
}

impl Default for Datastore {
    fn default() -> Self {
        Self {
            etcd_endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            ports: vec![1],
            prefix: "/serrano".to_owned(),
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn defaults_without_any_configuration() {
    let config: TestConfig = load_config_from("ro-api", &env(&[("OTHER_VAR", "x")])).unwrap();
    assert_eq!(config.http.bind.to_string(), "127.0.0.1:7102");
    assert_eq!(config.http.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(config.http.log_format, LogFormat::Text);
    assert_eq!(config.http.log_level, "info");
    assert!(config.http.tokens.is_empty());
    assert_eq!(config.workers, 4);
    assert_eq!(config.datastore.etcd_endpoints, ["http://127.0.0.1:2379"]);
    assert_eq!(HttpConfig::default().bind.to_string(), "127.0.0.1:0");
}

#[test]
fn toml_file_merges_over_defaults() {
    let file = toml_file(
        r#"
        workers = 8
        [http]
        bind = "0.0.0.0:9000"
        tokens = ["t1"]
        log_format = "json"
        tls_cert = "/etc/cert.pem"
        [datastore]
        prefix = "/x"
        "#,
    );
    let path = file.path().to_str().unwrap();
    let config: TestConfig =
        load_config_from("ro-api", &env(&[("SERRANO_RO_API_CONFIG", path)])).unwrap();
    assert_eq!(config.workers, 8);
    assert_eq!(config.http.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(config.http.tokens, [Secret::new("t1")]);
    assert_eq!(config.http.log_format, LogFormat::Json);
    assert_eq!(config.http.tls_cert, Some(PathBuf::from("/etc/cert.pem")));
    // Untouched siblings inside merged tables keep their defaults.
    assert_eq!(config.http.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(config.datastore.prefix, "/x");
    assert_eq!(config.datastore.etcd_endpoints, ["http://127.0.0.1:2379"]);
}

#[test]
fn environment_overrides_leaves_and_wins_over_the_file() {
    let file = toml_file("workers = 8\n[http]\nlog_level = \"debug\"\n");
    let path = file.path().to_str().unwrap();
    let config: TestConfig = load_config_from(
        "ro-api",
        &env(&[
            ("SERRANO_RO_API_CONFIG", path),
            ("SERRANO_RO_API_WORKERS", "16"),
            ("SERRANO_RO_API_DRY_RUN", "true"),
            ("SERRANO_RO_API_HTTP_BIND", "127.0.0.1:8080"),
            ("SERRANO_RO_API_HTTP_TOKENS", "a, b"),
            ("SERRANO_RO_API_HTTP_TLS_KEY", "/k.pem"),
            (
                "SERRANO_RO_API_DATASTORE_ETCD_ENDPOINTS",
                r#"["http://e1:2379","http://e2:2379"]"#,
            ),
            ("SERRANO_RO_API_DATASTORE_PORTS", "80,443"),
        ]),
    )
    .unwrap();
    assert_eq!(config.workers, 16);
    assert!(config.dry_run);
    assert_eq!(config.http.log_level, "debug");
    assert_eq!(config.http.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(config.http.tokens, [Secret::new("a"), Secret::new("b")]);
    assert_eq!(config.http.tls_key, Some(PathBuf::from("/k.pem")));
    assert_eq!(
        config.datastore.etcd_endpoints,
        ["http://e1:2379", "http://e2:2379"]
    );
    assert_eq!(config.datastore.ports, [80, 443]);
}

#[test]
fn unknown_environment_key_is_an_error() {
    let error = load_config_from::<TestConfig>(
        "ro-api",
        &env(&[("SERRANO_RO_API_HTTP_BINDD", "127.0.0.1:1")]),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ConfigError::UnknownKey { var } if var == "SERRANO_RO_API_HTTP_BINDD"),
        "{error:?}"
    );
    assert!(error.to_string().contains("SERRANO_RO_API_HTTP_BINDD"));
    // Another service's variables are none of our business.
    load_config_from::<TestConfig>("ro-api", &env(&[("SERRANO_AISO_HTTP_BINDD", "x")])).unwrap();
}

#[test]
fn bad_environment_values_name_the_variable() {
    let error =
        load_config_from::<TestConfig>("ro-api", &env(&[("SERRANO_RO_API_WORKERS", "many")]))
            .unwrap_err();
    assert!(
        matches!(&error, ConfigError::InvalidEnv { var, .. } if var == "SERRANO_RO_API_WORKERS"),
        "{error:?}"
    );
    let error = load_config_from::<TestConfig>(
        "ro-api",
        &env(&[("SERRANO_RO_API_HTTP_BIND", "not-an-address")]),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ConfigError::Invalid { path, .. } if path == "http.bind"),
        "{error:?}"
    );
}

#[test]
fn unknown_or_mistyped_toml_keys_are_errors() {
    let file = toml_file("[http]\nbind = \"127.0.0.1:1\"\ncolour = \"red\"\n");
    let path = file.path().to_str().unwrap();
    let error = load_config_from::<TestConfig>("ro-api", &env(&[("SERRANO_RO_API_CONFIG", path)]))
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ConfigError::Invalid { .. }), "{text}");
    assert!(text.contains("unknown field `colour`"), "{text}");
    assert!(text.contains("`http.colour`"), "{text}");

    let file = toml_file("workers = \"many\"\n");
    let path = file.path().to_str().unwrap();
    let error = load_config_from::<TestConfig>("ro-api", &env(&[("SERRANO_RO_API_CONFIG", path)]))
        .unwrap_err();
    assert!(
        matches!(&error, ConfigError::Invalid { path, .. } if path == "workers"),
        "{error:?}"
    );

    let file = toml_file("workers = \n");
    let path = file.path().to_str().unwrap();
    let error = load_config_from::<TestConfig>("ro-api", &env(&[("SERRANO_RO_API_CONFIG", path)]))
        .unwrap_err();
    assert!(matches!(error, ConfigError::Toml { .. }), "{error:?}");

    let error = load_config_from::<TestConfig>(
        "ro-api",
        &env(&[("SERRANO_RO_API_CONFIG", "/no/such/file.toml")]),
    )
    .unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
}

#[test]
fn secrets_are_redacted_and_token_files_read() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.to_string(), "***");
    assert_eq!(secret.expose(), "hunter2");
    let config = HttpConfig {
        tokens: vec![secret],
        ..HttpConfig::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"));

    let file = toml_file("# operators\nfile-token\n\n  other  \n");
    let config = HttpConfig {
        token_file: Some(file.path().to_owned()),
        ..config
    };
    let tokens = config.all_tokens().unwrap();
    assert_eq!(
        tokens,
        [
            Secret::new("hunter2"),
            Secret::new("file-token"),
            Secret::new("other")
        ]
    );
    let missing = HttpConfig {
        token_file: Some(PathBuf::from("/no/such/tokens")),
        ..HttpConfig::default()
    };
    assert!(matches!(
        missing.all_tokens(),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn tls_files_need_both_halves() {
    let mut config = HttpConfig::default();
    assert!(config.tls_files().unwrap().is_none());
    config.tls_cert = Some(PathBuf::from("/c.pem"));
    assert!(config.tls_files().is_err());
    config.tls_key = Some(PathBuf::from("/k.pem"));
    let files = config.tls_files().unwrap().unwrap();
    assert_eq!(files.key, PathBuf::from("/k.pem"));
}

#[test]
fn a_service_without_tokens_is_refused_with_the_variables_to_set() {
    let config = serrano_service::HttpConfig::with_port(7102);
    let err = config.required_tokens("ro-api").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no bearer token configured: set SERRANO_RO_API_HTTP_TOKENS or SERRANO_RO_API_HTTP_TOKEN_FILE"
    );
    let mut with_token = config.clone();
    with_token.tokens = vec![serrano_service::Secret::new("t")];
    assert_eq!(with_token.required_tokens("ro-api").unwrap().len(), 1);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Backend {
    Embedded { path: Option<String> },
    Mongodb { uri: String, database: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TaggedConfig {
    store: Backend,
    workers: u32,
}

impl Default for TaggedConfig {
    fn default() -> Self {
        Self {
            store: Backend::Embedded { path: None },
            workers: 1,
        }
    }
}

#[test]
fn a_file_can_switch_a_tagged_enum_to_another_variant() {
    let file = toml_file(
        r#"
        [store]
        type = "mongodb"
        uri = "mongodb://127.0.0.1:27017"
        database = "telemetry"
        "#,
    );
    let path = file.path().to_str().unwrap();
    let config: TaggedConfig =
        load_config_from("eta", &env(&[("SERRANO_ETA_CONFIG", path)])).unwrap();
    assert_eq!(
        config.store,
        Backend::Mongodb {
            uri: "mongodb://127.0.0.1:27017".into(),
            database: "telemetry".into()
        }
    );
    assert_eq!(config.workers, 1);
    // The same variant still merges field by field over the defaults.
    let file = toml_file("[store]\ntype = \"embedded\"\npath = \"/data\"\n");
    let path = file.path().to_str().unwrap();
    let config: TaggedConfig =
        load_config_from("eta", &env(&[("SERRANO_ETA_CONFIG", path)])).unwrap();
    assert_eq!(
        config.store,
        Backend::Embedded {
            path: Some("/data".into())
        }
    );
}
