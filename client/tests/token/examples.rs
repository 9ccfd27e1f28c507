//! The CI files of `examples/ci/` are YAML that each CI can read, wired to
//! what the client reads: every one runs `trustpub-token exec`, and each
//! asks its CI for the identity token the way the client expects it.

use std::path::Path;

use serde_norway::Value;

/// `examples/ci/<path>`, parsed.
fn example(path: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/ci")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(text.contains("trustpub-token exec"), "{path} runs exec");
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// The value at `keys` (mapping keys, or sequence indexes as numbers).
fn at<'a>(value: &'a Value, keys: &[&str]) -> &'a Value {
    keys.iter().fold(value, |value, key| {
        let next = match key.parse::<usize>() {
            Ok(index) => value.get(index),
            Err(_) => value.get(*key),
        };
        next.unwrap_or_else(|| panic!("no {key} in {value:?}"))
    })
}

fn text<'a>(value: &'a Value, keys: &[&str]) -> &'a str {
    at(value, keys).as_str().expect("a string")
}

#[test]
fn every_ci_example_is_yaml_that_asks_for_the_token() {
    let github = example("github/action.yml");
    assert_eq!(text(&github, &["runs", "using"]), "composite");
    assert!(at(&github, &["inputs", "upload-url", "required"]).as_bool() == Some(true));

    // The template's own job: the token in the variable the client reads
    // by default, for the audience the including job sets.
    let gitlab = example("gitlab/trustpub.gitlab-ci.yml");
    let job = at(&gitlab, &[".trustpub-publish"]);
    assert_eq!(
        text(job, &["id_tokens", "TRUSTPUB_ID_TOKEN", "aud"]),
        "$TRUSTPUB_AUDIENCE"
    );
    for variable in ["TRUSTPUB_UPLOAD_URL", "TRUSTPUB_AUDIENCE"] {
        at(job, &["variables", variable]);
    }

    let forgejo = example("forgejo/release.yml");
    let job = at(&forgejo, &["jobs", "publish"]);
    assert_eq!(text(job, &["permissions", "id-token"]), "write");

    let buildkite = example("buildkite/pipeline.yml");
    assert!(text(&buildkite, &["steps", "0", "command"]).contains("trustpub-token exec"));

    let circleci = example("circleci/config.yml");
    let publish = at(&circleci, &["workflows", "release", "jobs", "0", "publish"]);
    assert!(
        at(publish, &["context"])
            .as_sequence()
            .is_some_and(|c| !c.is_empty())
    );
}

/// The README's "Publishing from CI" shows each CI's lines with the file
/// of `examples/ci/` they come from.
#[test]
fn the_readme_names_every_ci_example() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Publishing from CI\n"))
        .expect("a section Publishing from CI");
    for file in [
        "github/action.yml",
        "gitlab/trustpub.gitlab-ci.yml",
        "forgejo/release.yml",
        "buildkite/pipeline.yml",
        "circleci/config.yml",
    ] {
        assert!(
            section.contains(&format!("examples/ci/{file}")),
            "examples/ci/{file} in:\n{section}"
        );
    }
}
