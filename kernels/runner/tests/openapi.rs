//! The checked-in OpenAPI document matches the code. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p serrano-kernel-runner --test openapi`.

use std::path::PathBuf;

#[test]
fn checked_in_openapi_document_is_current() {
    let generated = serrano_kernel_runner::api::openapi()
        .to_pretty_json()
        .expect("document serialises")
        + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/kernel-runner.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi/kernel-runner.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/kernel-runner.json is stale: run `UPDATE_OPENAPI=1 cargo test -p serrano-kernel-runner --test openapi` and commit it"
    );
}
