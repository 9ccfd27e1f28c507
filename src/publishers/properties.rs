//! Properties of package scope and claim patterns, checked on generated
//! inputs (proptest): normalisation is idempotent and agrees with PEP 503
//! and cargo's rules, a name is covered by its own normal form whatever its
//! spelling, and patterns are anchored.

use proptest::prelude::*;

use super::PackagePattern;
use super::claims::glob_match;
use super::scope::{covers, grant};
use crate::domain::Ecosystem;

/// Package names as a pattern may hold them: letters, digits, `-`, `_`, `.`.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,24}"
}

/// Names that start with a letter or digit, as registries require.
fn plain_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,23}"
}

fn ecosystem() -> impl Strategy<Value = Ecosystem> {
    prop_oneof![
        Just(Ecosystem::Python),
        Just(Ecosystem::Cargo),
        Just(Ecosystem::Generic)
    ]
}

/// PEP 503 as the PEP writes it, `re.sub(r"[-_.]+", "-", name).lower()`,
/// computed another way: every separator becomes `-`, then doubled ones
/// collapse.
fn pep_503(name: &str) -> String {
    let mut dashed: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '_' || c == '.' { '-' } else { c })
        .collect();
    while dashed.contains("--") {
        dashed = dashed.replace("--", "-");
    }
    dashed
}

/// Another spelling of `name` that its ecosystem holds to be the same
/// package: case flipped where `flip` says, and for Python any separator
/// swapped for another (or doubled), for cargo `-` and `_` swapped.
fn respell(ecosystem: Ecosystem, name: &str, flip: &[bool]) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        let flip = flip.get(i).copied().unwrap_or(false);
        match (ecosystem, c) {
            (Ecosystem::Generic, c) => out.push(c),
            (Ecosystem::Python, '-' | '_' | '.') if flip => out.push_str("._"),
            (Ecosystem::Cargo, '-') if flip => out.push('_'),
            (Ecosystem::Cargo, '_') if flip => out.push('-'),
            (_, c) if flip && c.is_ascii_lowercase() => out.push(c.to_ascii_uppercase()),
            (_, c) if flip => out.push(c.to_ascii_lowercase()),
            (_, c) => out.push(c),
        }
    }
    out
}

proptest! {
    #[test]
    fn normalising_is_idempotent(ecosystem in ecosystem(), name in name()) {
        let once = ecosystem.normalize(&name);
        prop_assert_eq!(ecosystem.normalize(&once), once);
    }

    #[test]
    fn python_names_are_normalised_as_pep_503_says(name in name()) {
        prop_assert_eq!(Ecosystem::Python.normalize(&name), pep_503(&name));
    }

    #[test]
    fn cargo_names_ignore_case_and_dash_or_underscore(name in name()) {
        let normal = Ecosystem::Cargo.normalize(&name);
        prop_assert_eq!(&normal, &name.to_ascii_lowercase().replace('_', "-"));
        prop_assert!(!normal.contains('_'));
    }

    #[test]
    fn a_name_is_covered_by_its_normal_form_in_any_spelling(
        ecosystem in ecosystem(),
        name in plain_name(),
        flip in proptest::collection::vec(any::<bool>(), 24),
    ) {
        let scope = [ecosystem.normalize(&name)];
        prop_assert!(covers(ecosystem, &scope, &name));
        let other = respell(ecosystem, &name, &flip);
        prop_assert!(covers(ecosystem, &scope, &other), "{} as {}", name, other);
    }

    #[test]
    fn a_name_does_not_cover_names_that_contain_it(
        ecosystem in ecosystem(),
        name in plain_name(),
        extra in "[a-z0-9]{1,4}",
    ) {
        let scope = [ecosystem.normalize(&name)];
        let (longer, earlier) = (format!("{name}{extra}"), format!("{extra}{name}"));
        prop_assert!(!covers(ecosystem, &scope, &longer));
        prop_assert!(!covers(ecosystem, &scope, &earlier));
    }

    /// `prefix*` covers exactly the names whose normal form starts with the
    /// prefix's: never one that merely contains it.
    #[test]
    fn scope_patterns_are_anchored_at_the_start(
        ecosystem in ecosystem(),
        prefix in plain_name(),
        rest in "[A-Za-z0-9._-]{0,8}",
        before in "[a-z0-9]{1,4}",
    ) {
        let pattern = PackagePattern::parse(format!("{prefix}*")).unwrap();
        let scope = grant(ecosystem, &[&pattern], None).unwrap();
        let name = format!("{prefix}{rest}");
        prop_assert!(covers(ecosystem, &scope, &name), "{:?} covers {}", scope, name);
        let inside = format!("{before}{prefix}{rest}");
        let starts = ecosystem
            .normalize(&inside)
            .starts_with(&ecosystem.normalize(&prefix));
        prop_assert_eq!(covers(ecosystem, &scope, &inside), starts);
    }

    /// Requested names come back normalised, each covered by what was
    /// granted; a pattern is never granted for them.
    #[test]
    fn granted_names_are_the_requested_ones_normalised(
        ecosystem in ecosystem(),
        prefix in plain_name(),
        rests in proptest::collection::vec("[a-z0-9]{0,6}", 1..4),
    ) {
        let pattern = PackagePattern::parse(format!("{prefix}*")).unwrap();
        let requested: Vec<String> = rests.iter().map(|r| format!("{prefix}{r}")).collect();
        let granted = grant(ecosystem, &[&pattern], Some(requested.as_slice())).unwrap();
        for name in &requested {
            prop_assert!(granted.contains(&ecosystem.normalize(name)));
            prop_assert!(covers(ecosystem, &granted, name));
        }
        prop_assert!(granted.iter().all(|g| !g.contains('*')));
    }

    /// Claim patterns: without `*` a pattern is the text itself; `*` is any
    /// run of characters, and the rest is anchored at both ends.
    #[test]
    fn claim_patterns_are_anchored_at_both_ends(
        head in "[a-z/._-]{0,6}",
        tail in "[a-z/._-]{0,6}",
        text in "[a-z/._-]{0,12}",
    ) {
        prop_assert_eq!(glob_match(&head, &text), head == text);
        prop_assert_eq!(glob_match(&format!("{head}*"), &text), text.starts_with(&head));
        prop_assert_eq!(glob_match(&format!("*{tail}"), &text), text.ends_with(&tail));
        prop_assert_eq!(glob_match(&format!("*{head}*"), &text), text.contains(&head));
        prop_assert_eq!(
            glob_match(&format!("{head}*{tail}"), &text),
            text.len() >= head.len() + tail.len() && text.starts_with(&head) && text.ends_with(&tail)
        );
    }
}
