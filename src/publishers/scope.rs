//! Package scope: which package names a credential may publish, compared
//! after the registry's ecosystem normalisation.

use crate::domain::Ecosystem;
use crate::problem::{Error, Result};

use super::PackagePattern;

/// A pattern as compared: its name or prefix normalised, `*` kept.
fn normalize_pattern(ecosystem: Ecosystem, pattern: &PackagePattern) -> String {
    match pattern.as_str().strip_suffix('*') {
        Some(prefix) => format!("{}*", ecosystem.normalize(prefix)),
        None => ecosystem.normalize(pattern.as_str()),
    }
}

fn allows(normalized_pattern: &str, normalized_name: &str) -> bool {
    match normalized_pattern.strip_suffix('*') {
        Some(prefix) => normalized_name.starts_with(prefix),
        None => normalized_pattern == normalized_name,
    }
}

/// Whether `name` is a package name: the characters a pattern may hold,
/// and no `*`.
fn is_package_name(name: &str) -> bool {
    PackagePattern::parse(name.to_owned()).is_ok() && !name.contains('*')
}

/// Whether a granted scope (normalised names and patterns, as stored with a
/// credential) covers the package `name`. Something that is not a package
/// name is covered by nothing.
pub fn covers(ecosystem: Ecosystem, scope: &[String], name: &str) -> bool {
    if !is_package_name(name) {
        return false;
    }
    let name = ecosystem.normalize(name);
    scope.iter().any(|p| allows(p, &name))
}

/// The scope of a credential. Without a request it is everything `allowed`
/// (patterns included); with one it is exactly the requested names, each of
/// which must be allowed — a pattern is never granted when names were asked.
pub fn grant(
    ecosystem: Ecosystem,
    allowed: &[&PackagePattern],
    requested: Option<&[String]>,
) -> Result<Vec<String>> {
    let mut allowed: Vec<String> = allowed
        .iter()
        .map(|p| normalize_pattern(ecosystem, p))
        .collect();
    allowed.sort();
    allowed.dedup();
    let Some(requested) = requested else {
        return Ok(allowed);
    };
    if requested.is_empty() {
        return Err(Error::InvalidPayload(
            "`packages` must name at least one package when given".into(),
        ));
    }
    let mut names = Vec::with_capacity(requested.len());
    for name in requested {
        if !is_package_name(name) {
            return Err(Error::InvalidPayload(format!(
                "{name:?} in `packages` is not a package name"
            )));
        }
        names.push(ecosystem.normalize(name));
    }
    let refused: Vec<String> = requested
        .iter()
        .zip(&names)
        .filter(|(_, n)| !allowed.iter().any(|p| allows(p, n)))
        .map(|(original, _)| original.clone())
        .collect();
    if !refused.is_empty() {
        return Err(Error::PackageNotAllowed(refused));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<PackagePattern> {
        list.iter()
            .map(|p| PackagePattern::parse((*p).to_owned()).unwrap())
            .collect()
    }

    #[test]
    fn pep_503_and_cargo_normalisation() {
        assert_eq!(
            Ecosystem::Python.normalize("Zope.Interface__x"),
            "zope-interface-x"
        );
        assert_eq!(Ecosystem::Python.normalize("A-_.b"), "a-b");
        assert_eq!(Ecosystem::Cargo.normalize("Serde_JSON"), "serde-json");
        assert_eq!(Ecosystem::Cargo.normalize("a.b"), "a.b");
        assert_eq!(Ecosystem::Generic.normalize("Foo_Bar"), "Foo_Bar");
    }

    #[test]
    fn without_a_request_the_scope_is_the_allowed_set() {
        let allowed = patterns(&["Widget", "widget-*", "widget"]);
        let refs: Vec<&PackagePattern> = allowed.iter().collect();
        assert_eq!(
            grant(Ecosystem::Python, &refs, None).unwrap(),
            vec!["widget", "widget-*"]
        );
    }

    #[test]
    fn a_request_is_granted_exactly_when_every_name_is_allowed() {
        let allowed = patterns(&["widget", "widget-*"]);
        let refs: Vec<&PackagePattern> = allowed.iter().collect();
        let requested = vec!["Widget_Extra".to_owned(), "widget".to_owned()];
        assert_eq!(
            grant(Ecosystem::Python, &refs, Some(&requested)).unwrap(),
            vec!["widget", "widget-extra"]
        );
        let requested = vec![
            "widget".to_owned(),
            "gadget".to_owned(),
            "widgetx".to_owned(),
        ];
        match grant(Ecosystem::Python, &refs, Some(&requested)) {
            Err(Error::PackageNotAllowed(refused)) => {
                assert_eq!(refused, vec!["gadget", "widgetx"])
            }
            other => panic!("{other:?}"),
        }
        let requested = vec!["widget-*".to_owned()];
        assert!(matches!(
            grant(Ecosystem::Python, &refs, Some(&requested)),
            Err(Error::InvalidPayload(_))
        ));
    }

    #[test]
    fn a_scope_covers_its_names_and_pattern_matches_only() {
        let scope = vec!["widget".to_owned(), "widget-*".to_owned()];
        assert!(covers(Ecosystem::Python, &scope, "Widget"));
        assert!(covers(Ecosystem::Python, &scope, "widget_extra"));
        assert!(!covers(Ecosystem::Python, &scope, "widgetx"));
        assert!(!covers(Ecosystem::Python, &scope, "gadget"));
        assert!(!covers(Ecosystem::Python, &scope, "widget-*"));
        assert!(!covers(Ecosystem::Python, &scope, ""));
        assert!(!covers(Ecosystem::Python, &scope, "widget/../x"));
    }

    #[test]
    fn cargo_treats_dash_and_underscore_alike() {
        let allowed = patterns(&["my_crate"]);
        let refs: Vec<&PackagePattern> = allowed.iter().collect();
        let requested = vec!["My-Crate".to_owned()];
        assert_eq!(
            grant(Ecosystem::Cargo, &refs, Some(&requested)).unwrap(),
            vec!["my-crate"]
        );
    }
}
