//! Request checks that need more than serde: the Kubernetes YAML of a deployment and the
//! `active` window of the cluster list.

use std::time::Duration;

use serde::Deserialize;
use serrano_service::ApiError;

/// The largest number of documents one deployment description may hold.
const MAX_DOCUMENTS: usize = 1000;

/// Checks that `description` is one or more Kubernetes documents: each a mapping with
/// `apiVersion`, `kind` and `metadata.name` (empty documents between `---` are skipped, as
/// kubectl does). Errors name the document and, for syntax errors, the line and column.
pub fn kubernetes_yaml(description: &str) -> Result<usize, ApiError> {
    if description.trim().is_empty() {
        return Err(ApiError::validation(
            "deployment_description: empty; expected Kubernetes YAML documents",
        ));
    }
    let mut count = 0;
    for (index, document) in serde_norway::Deserializer::from_str(description).enumerate() {
        let number = index + 1;
        let value = serde_norway::Value::deserialize(document).map_err(|err| {
            let place = err
                .location()
                .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            ApiError::validation(format!(
                "deployment_description: invalid YAML in document {number}{place}: {err}"
            ))
        })?;
        if value.is_null() {
            continue;
        }
        check_document(&value, number)?;
        count += 1;
        if count > MAX_DOCUMENTS {
            return Err(ApiError::validation(format!(
                "deployment_description: more than {MAX_DOCUMENTS} documents"
            )));
        }
    }
    if count == 0 {
        return Err(ApiError::validation(
            "deployment_description: no Kubernetes documents found",
        ));
    }
    Ok(count)
}

fn check_document(value: &serde_norway::Value, number: usize) -> Result<(), ApiError> {
    let Some(map) = value.as_mapping() else {
        return Err(ApiError::validation(format!(
            "deployment_description: document {number} is not a mapping"
        )));
    };
    for field in ["apiVersion", "kind"] {
        match map.get(field) {
            Some(serde_norway::Value::String(text)) if !text.is_empty() => {}
            _ => {
                return Err(ApiError::validation(format!(
                    "deployment_description: document {number} has no string `{field}`"
                )));
            }
        }
    }
    let name = map
        .get("metadata")
        .and_then(|metadata| metadata.get("name"))
        .and_then(|name| name.as_str());
    if name.is_none_or(str::is_empty) {
        return Err(ApiError::validation(format!(
            "deployment_description: document {number} has no `metadata.name`"
        )));
    }
    Ok(())
}

/// Parses the `active` filter of `GET /clusters`: a positive integer followed by `s`, `m`, `h`
/// or `d` (the original accepted m, h, d).
pub fn active_window(text: &str) -> Result<Duration, ApiError> {
    let invalid = || {
        ApiError::validation(format!(
            "active: expected <number><s|m|h|d> such as 10m, got {text:?}"
        ))
    };
    // Split before the last character, not the last byte: the text may be any UTF-8.
    let (unit_at, _) = text.char_indices().last().ok_or_else(invalid)?;
    let (number, unit) = text.split_at(unit_at);
    let amount: u64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    amount
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    group_id: g1\nspec:\n  replicas: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n";

    #[test]
    fn accepts_multi_document_kubernetes_yaml() {
        assert_eq!(kubernetes_yaml(APP).unwrap(), 2);
        assert_eq!(kubernetes_yaml(&format!("---\n{APP}---\n")).unwrap(), 2);
    }

    #[test]
    fn rejects_broken_yaml_with_its_location() {
        let err = kubernetes_yaml("apiVersion: v1\nkind: [unclosed\nmetadata: {}\n").unwrap_err();
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(err.message.contains("document 1"), "{}", err.message);
        assert!(err.message.contains("line"), "{}", err.message);

        let err = kubernetes_yaml(&format!("{APP}---\nkind: Service\n")).unwrap_err();
        assert!(err.message.contains("document 3"), "{}", err.message);
        assert!(err.message.contains("apiVersion"), "{}", err.message);
    }

    #[test]
    fn rejects_documents_that_are_not_kubernetes_objects() {
        assert!(kubernetes_yaml("").unwrap_err().message.contains("empty"));
        assert!(
            kubernetes_yaml("- a\n- b\n")
                .unwrap_err()
                .message
                .contains("not a mapping")
        );
        let err = kubernetes_yaml("apiVersion: v1\nkind: Pod\nmetadata: {}\n").unwrap_err();
        assert!(err.message.contains("metadata.name"), "{}", err.message);
        assert!(
            kubernetes_yaml("---\n---\n")
                .unwrap_err()
                .message
                .contains("no Kubernetes")
        );
    }

    #[test]
    fn parses_active_windows() {
        assert_eq!(active_window("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(active_window("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(active_window("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(active_window("30s").unwrap(), Duration::from_secs(30));
        for bad in [
            "",
            "m",
            "10",
            "10x",
            "-1m",
            "1.5h",
            "99999999999999999999d",
            "10é",
            "é",
            "\u{FFFD}",
        ] {
            assert_eq!(
                active_window(bad).unwrap_err().status,
                http::StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }
}
