//! The kit against trustpub, its gateway in front of an index that accepts
//! every upload: every check passes, the upload probe's included (the
//! end-to-end test `tests/e2e/kit.rs` runs it against pypiserver).

use conformance::report::Status;

use crate::support::{
    accepting_index, bind, kit_issuer, registry_with_gateway, run_kit, start_trustpub,
};

#[tokio::test]
async fn trustpub_passes_every_check() {
    let issuer = kit_issuer();
    let (listener, address) = bind();
    // A space in the path, so that discovery.key-space runs too.
    let upload_url = format!("{address}/my index/legacy/");
    let _server = start_trustpub(
        listener,
        &registry_with_gateway(issuer.url(), "conformance", &upload_url, &accepting_index()),
    )
    .await;

    let report = run_kit(&upload_url, &issuer).await;

    let table = report.table();
    for result in &report.results {
        assert_eq!(
            result.status,
            Status::Pass,
            "{}: {}\n{table}",
            result.check.id,
            result.reason
        );
    }
    assert!(report.conforms(true), "{table}");
    assert!(
        report
            .result("errors.problem-document")
            .reason
            .contains("error answers checked")
    );
}
