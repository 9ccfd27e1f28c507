//! Proof that every check can fail: the kit against each of the broken
//! servers of `conformance::broken`, failing exactly the checks the rule
//! that server breaks is about.

use std::collections::{BTreeSet, HashSet};

use conformance::broken::Breakage::{self, *};
use conformance::broken::{BrokenServers, conforming_skips};
use conformance::catalogue::{CHECKS, Level};
use conformance::checks::REFUSALS;
use conformance::report::Status;

use crate::support::run_kit_trusting;

#[tokio::test]
async fn every_check_fails_against_the_server_that_breaks_its_rule() {
    let broken = BrokenServers::start().await;
    let issuer = &broken.issuer;

    let mut wrong = String::new();
    let mut failed_somewhere = HashSet::new();
    let mut noted_somewhere = HashSet::new();
    for server in &broken.servers {
        let breakage: Breakage = server.breakage;
        let trusted: Vec<&str> = server.trusted_origins.iter().map(String::as_str).collect();
        let report = run_kit_trusting(&server.upload_url, issuer, &trusted).await;
        let failed: BTreeSet<_> = report.failed().into_iter().collect();
        let expected: BTreeSet<_> = server.fails.iter().copied().collect();
        if failed != expected {
            wrong.push_str(&format!(
                "{breakage:?}: failed {failed:?}, expected {expected:?}\n{}\n",
                report.table()
            ));
        }
        let must_be: &[(&str, Status)] = match breakage {
            BurnAccepted => &[("trustpub.burn-token", Status::Pass)],
            AnyAcceptIs406 => &[("accept.any", Status::Info)],
            FeaturesUnreported => &[("mint.default-features", Status::Pass)],
            RootControl | BareRootControl => &[("discovery.empty-path", Status::Pass)],
            DiscoveryNotFound => &[
                ("discovery.not-found", Status::Skip),
                ("discovery.empty-path", Status::Skip),
            ],
            ProblemMinimal => &[("errors.problem-document", Status::Pass)],
            None => &[
                ("upload.single-use", Status::Pass),
                ("upload.multi-use", Status::Pass),
            ],
            _ => &[],
        };
        let refusals_skipped: Vec<_> = REFUSALS.iter().map(|id| (*id, Status::Skip)).collect();
        let must_be = if breakage == IssuerNotTrusted {
            refusals_skipped.as_slice()
        } else {
            must_be
        };
        for (id, status) in must_be {
            let result = report.result(id);
            if result.status != *status {
                wrong.push_str(&format!(
                    "{breakage:?}: {id} should be {status:?}, is {:?}: {}\n",
                    result.status, result.reason
                ));
            }
        }
        // A conforming run passes everything it can run: a fault that
        // turned checks into skips would show here.
        if let Some(skips) = conforming_skips(breakage) {
            for result in &report.results {
                let fine = match result.status {
                    Status::Pass | Status::Info => true,
                    Status::Skip => skips.contains(&result.check.id),
                    Status::Fail => false,
                };
                if !fine {
                    wrong.push_str(&format!(
                        "{breakage:?} conforms, but {} is {:?}: {}\n",
                        result.check.id, result.status, result.reason
                    ));
                }
            }
        }
        // Reasons show values as JSON, never as Rust's debug text.
        for result in &report.results {
            if ["String(", "Number(", "Array(", "Object("]
                .iter()
                .any(|debug| result.reason.contains(debug))
            {
                wrong.push_str(&format!(
                    "{breakage:?}: {} has Rust debug text in its reason: {}\n",
                    result.check.id, result.reason
                ));
            }
        }
        failed_somewhere.extend(failed);
        noted_somewhere.extend(
            report
                .results
                .iter()
                .filter(|r| r.status == Status::Info)
                .map(|r| r.check.id),
        );
    }
    assert!(wrong.is_empty(), "{wrong}");
    for check in CHECKS {
        let (shown, how) = if check.level == Level::Info {
            (&noted_somewhere, "noted")
        } else {
            (&failed_somewhere, "failed")
        };
        assert!(shown.contains(check.id), "{} never {how}", check.id);
    }
}
