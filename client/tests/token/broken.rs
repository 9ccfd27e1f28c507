//! `trustpub-token exec` against each of the conformance kit's deliberately
//! broken servers (`conformance::broken`): it refuses what breaks PEP 807
//! where a client can see it, with the command not run; it works through
//! what a client cannot (or need not) see, and what breaks only the burn
//! leaves the command's exit status and says so.

use conformance::broken::{Breakage, BrokenServers};

use crate::support::{github_actions, token};

/// What a client makes of a broken server.
enum Expect {
    /// The command runs, its status is the client's, the credential is
    /// burnt.
    Works,
    /// As `Works`, with this warning.
    Warns(&'static str),
    /// Nothing runs; exit 1 with this on stderr.
    Refused(&'static str),
    /// The command runs, its status is the client's, and the client says
    /// the burn failed.
    BurnFails,
}

/// Every breakage, decided here (a new one does not compile until it is).
fn expect(breakage: Breakage) -> Expect {
    use Breakage as B;
    use Expect::*;
    match breakage {
        B::DiscoveryNotAnObject => Refused("the discovery document is not a JSON object"),
        B::VendorTypeRefused => Refused("discovery was refused by"),
        B::MintEndpointMissing => Refused("the discovery document has no token-mint-endpoint"),
        B::RelativeUrls => Refused("not an absolute URL"),
        B::OtherHost => Refused("its host is not the upload URL's (127.0.0.1)"),
        B::UntrustworthyScheme => Refused("only https URLs (plain http only to a loopback"),
        B::FeaturesNotAnArray => Refused("features is not an array"),
        B::AudienceMisnamed => Refused("the answer has no audience string"),
        B::TokenNotAString => {
            Refused("the mint's answer has no token string (its token is a number)")
        }
        B::HtmlSuccess => Refused(
            "/.well-known/pytp?discover=%2Fv%2Fhtml-success%20index%2Flegacy%2F: the answer is labelled text/html",
        ),
        B::HtmlMint => Refused("/mint-token: the answer is labelled text/html"),
        B::IssuerNotTrusted => Refused("the mint was refused by"),
        // The empty key of the upload URL without its slash, answered 404.
        B::RootEmptyKeyNotFound | B::BareRootEmptyKeyNotFound | B::DiscoveryNotFound => {
            Refused("does not offer Trusted Publishing (PEP 807) for this upload URL")
        }
        B::TextSuccess => Refused("the answer is labelled text/plain"),
        // Plain http to a host that is not loopback: the client has no way
        // to be told an internal network is trustworthy, so it refuses.
        B::InternalNetwork | B::InternalNetworkTrusted => {
            Refused("only https URLs (plain http only to a loopback")
        }
        B::ShortExpiry => Warns("warning: the index says the credential expires in"),
        B::BurnFails => BurnFails,
        // Breakages a client cannot see: of refusals (of tokens it does not
        // send, of requests without the Accept it always sends), of error
        // documents it is not sent, of uploads, of features it does not ask
        // for; and feature lists that do not change what it asks.
        B::None
        | B::EveryPathServed
        | B::PlusTakenLiterally
        | B::ConflictingDefaults
        | B::MissingAcceptRefused
        | B::AnyAcceptIs406
        | B::AcceptIgnored
        | B::ProblemStatusWrong
        | B::ProblemServedAsJson
        | B::AudienceByPrefix
        | B::AudienceIgnored
        | B::Es256Refused
        | B::ExpiredAccepted
        | B::FutureAccepted
        | B::SignatureIgnored
        | B::IssuerIgnored
        | B::ReplayAllowed
        | B::SingleUseRefused
        | B::MultiUseRefused
        | B::UnknownFeaturesDropped
        | B::PackagesIgnored
        | B::BurnAccepted
        | B::MintNeedsAccept
        | B::UnknownFeatureAdvertised
        | B::DefaultNotAdvertised
        | B::DefaultMisreported
        | B::FeaturesUnreported
        | B::FeaturesUnreportedDefaultWrong
        | B::OtherRepositoryAccepted
        | B::OtherOwnerAccepted
        | B::OtherWorkflowAccepted
        | B::SingleUseReusable
        | B::MultiUseSpent
        | B::EmptyKeyRefused
        | B::RootControl
        | B::BareRootControl
        | B::ProblemMinimal => Works,
    }
}

#[tokio::test]
async fn exec_against_each_broken_server_of_the_kit() {
    let broken = BrokenServers::start().await;
    let env = github_actions(&broken.issuer);
    let mut wrong = String::new();
    for server in &broken.servers {
        // At the root, the URL without its slash: its discovery key is
        // the empty one, which the root's breakages are about.
        let upload_url = match server.breakage {
            Breakage::RootControl | Breakage::RootEmptyKeyNotFound => {
                server.upload_url.trim_end_matches('/')
            }
            _ => &server.upload_url,
        };
        let args = [
            "exec",
            "--upload-url",
            upload_url,
            "--",
            "sh",
            "-c",
            "exit 3",
        ];
        let run = token(&args, &env, None).await;
        let said = |part: &str| run.stderr.contains(part);
        let burnt = said("burnt the credential at");
        let fine = match expect(server.breakage) {
            Expect::Works => run.code == Some(3) && burnt && !said("warning"),
            Expect::Warns(warning) => run.code == Some(3) && burnt && said(warning),
            Expect::Refused(why) => run.code == Some(1) && run.stdout.is_empty() && said(why),
            Expect::BurnFails => {
                run.code == Some(3)
                    && !burnt
                    && said("the credential could not be burnt: the burn was refused by")
                    && said("HTTP 500")
            }
        };
        if !fine {
            wrong.push_str(&format!(
                "{:?} ({upload_url}): exit {:?}\n{}\n",
                server.breakage, run.code, run.stderr
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong}");
}
