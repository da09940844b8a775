//! The checked-in OpenAPI document matches the code. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p serrano-ro-api --test openapi`.

#[test]
fn checked_in_openapi_document_is_current() {
    let generated = serrano_ro_api::openapi()
        .to_pretty_json()
        .expect("document serialises")
        + "\n";
    // The checkout at run time: a binary reused from a shared target dir was built elsewhere.
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../openapi/ro-api.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi/ro-api.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/ro-api.json is stale: run `UPDATE_OPENAPI=1 cargo test -p serrano-ro-api --test openapi` and commit it"
    );
}

#[test]
fn document_covers_the_spec_routes() {
    let document = serrano_ro_api::openapi();
    let paths: Vec<&String> = document.paths.paths.keys().collect();
    for route in [
        "/api/v1/orchestrator/deployments",
        "/api/v1/orchestrator/deployments/{uuid}",
        "/api/v1/orchestrator/deployments/watch",
        "/api/v1/orchestrator/storage_policies",
        "/api/v1/orchestrator/faas",
        "/api/v1/orchestrator/kernel",
        "/api/v1/orchestrator/clusters",
        "/api/v1/orchestrator/clusters/health/{uuid}",
        "/api/v1/orchestrator/clusters/watch",
        "/api/v1/orchestrator/assignments/watch/{cluster_uuid}",
        "/api/v1/orchestrator/bundles/watch/{assignment_uuid}",
    ] {
        assert!(
            paths.iter().any(|p| p.as_str() == route),
            "{route} missing from {paths:?}"
        );
    }
}
