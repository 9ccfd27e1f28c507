//! The kit against trustpub: every PEP 807 check and the packages extension
//! pass; burn-token passes or, where trustpub lacks it, is skipped.

use conformance::catalogue::Group;
use conformance::report::Status;

use crate::support::{bind, kit_issuer, registry, run_kit, start_trustpub};

#[tokio::test]
async fn trustpub_passes_every_check() {
    let issuer = kit_issuer();
    let (listener, address) = bind();
    // A space in the path, so that discovery.key-space runs too.
    let upload_url = format!("{address}/my index/legacy/");
    let _server = start_trustpub(
        listener,
        &registry(issuer.url(), "conformance", &upload_url),
    )
    .await;

    let report = run_kit(&upload_url, &issuer).await;

    let table = report.table();
    for result in &report.results {
        let expected = match (result.check.group, result.check.id) {
            // Skipped while trustpub has no burn-token; passes once it has.
            (_, "trustpub.burn-token") => vec![Status::Pass, Status::Skip],
            (Group::Pep807 | Group::Trustpub, _) => vec![Status::Pass],
        };
        assert!(
            expected.contains(&result.status),
            "{}: {:?}\n{table}",
            result.check.id,
            result.status
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
