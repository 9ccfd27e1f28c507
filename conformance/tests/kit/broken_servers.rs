//! Proof that every check can fail: the kit against each of the broken
//! servers of `conformance::broken`, failing exactly the checks the rule
//! that server breaks is about.

use std::collections::{BTreeSet, HashSet};

use conformance::broken::Breakage::{self, *};
use conformance::broken::BrokenServers;
use conformance::catalogue::{CHECKS, Level};
use conformance::checks::REFUSALS;
use conformance::report::Status;

use crate::support::run_kit;

#[tokio::test]
async fn every_check_fails_against_the_server_that_breaks_its_rule() {
    let broken = BrokenServers::start().await;
    let issuer = &broken.issuer;

    let mut wrong = String::new();
    let mut failed_somewhere = HashSet::new();
    let mut noted_somewhere = HashSet::new();
    for server in &broken.servers {
        let breakage: Breakage = server.breakage;
        let report = run_kit(&server.upload_url, issuer).await;
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
            RootControl => &[("discovery.empty-path", Status::Pass)],
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
