//! The checked-in OpenAPI document matches the code. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p serrano-cth --test openapi`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn checked_in_openapi_document_is_current() {
    let generated = serrano_cth::api::openapi()
        .to_pretty_json()
        .expect("document serialises")
        + "\n";
    // The checkout at run time: a binary reused from a shared target dir was built elsewhere.
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../openapi/cth.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi/cth.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/cth.json is stale: run `UPDATE_OPENAPI=1 cargo test -p serrano-cth --test openapi` and commit it"
    );
}

#[test]
fn every_figure_26_route_is_documented() {
    let doc = serrano_cth::api::openapi();
    let paths: Vec<&String> = doc.paths.paths.keys().collect();
    for route in [
        "/api/v1/telemetry/central",
        "/api/v1/telemetry/central/inventory",
        "/api/v1/telemetry/central/infrastructure",
        "/api/v1/telemetry/central/storage_locations",
        "/api/v1/telemetry/central/clusters",
        "/api/v1/telemetry/central/clusters/{cluster}",
        "/api/v1/telemetry/central/clusters/inventory/{cluster}",
        "/api/v1/telemetry/central/clusters/monitor/{cluster}",
        "/api/v1/telemetry/central/clusters/metrics/{cluster}",
        "/api/v1/telemetry/central/deployments",
        "/api/v1/telemetry/central/cluster_deployments",
        "/api/v1/telemetry/central/kernel_metrics",
    ] {
        assert!(paths.iter().any(|p| *p == route), "{route} missing");
    }
}
