//! The checked-in OpenAPI document matches the code. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p serrano-kernel-runner --test openapi`.

#[test]
fn checked_in_openapi_document_is_current() {
    let generated = serrano_kernel_runner::api::openapi()
        .to_pretty_json()
        .expect("document serialises")
        + "\n";
    // The checkout at run time: a binary reused from a shared target dir was built elsewhere.
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../openapi/kernel-runner.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi/kernel-runner.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/kernel-runner.json is stale: run `UPDATE_OPENAPI=1 cargo test -p serrano-kernel-runner --test openapi` and commit it"
    );
}
