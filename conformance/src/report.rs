//! Results and the three report formats: a table for people, JSON, and
//! JUnit XML for CI systems.

use std::io::Cursor;

use quick_xml::Writer;
use quick_xml::events::BytesText;
use serde::Serialize;
use serde_json::{Value, json};

use crate::catalogue::{CHECKS, Check, Group, Level};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// A note on interoperability, from a check of level INFO: never a
    /// failure.
    Info,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Info => "info",
        }
    }
}

/// What became of one check: for a failure or a skip, why; for a pass, what
/// was seen (may be empty).
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub check: &'static Check,
    pub status: Status,
    pub reason: String,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub upload_url: String,
    pub issuer: String,
    /// Unix time the run started.
    pub started_at: i64,
    /// One result per check of the catalogue, in its order.
    pub results: Vec<CheckResult>,
}

impl Report {
    pub fn result(&self, id: &str) -> &CheckResult {
        self.results
            .iter()
            .find(|r| r.check.id == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
    }

    /// The ids of the failed checks.
    pub fn failed(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| r.status == Status::Fail)
            .map(|r| r.check.id)
            .collect()
    }

    /// The PEP 807 MUST checks with this status.
    fn pep_musts(&self, status: Status) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| {
                r.status == status && r.check.level == Level::Must && r.check.group == Group::Pep807
            })
            .map(|r| r.check.id)
            .collect()
    }

    /// Whether the server conforms: no PEP 807 MUST check failed. With
    /// `strict`, no check failed at all and no PEP 807 MUST check was
    /// skipped.
    pub fn conforms(&self, strict: bool) -> bool {
        if strict {
            self.count(None, Status::Fail) == 0 && self.pep_musts(Status::Skip).is_empty()
        } else {
            self.pep_musts(Status::Fail).is_empty()
        }
    }

    fn count(&self, group: Option<Group>, status: Status) -> usize {
        self.results
            .iter()
            .filter(|r| r.status == status && group.is_none_or(|g| r.check.group == g))
            .count()
    }

    /// The table for people: a section per group, then a summary.
    pub fn table(&self) -> String {
        let width = CHECKS.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = format!(
            "trustpub-conformance {}\nupload URL: {}\nissuer:     {}\n",
            env!("CARGO_PKG_VERSION"),
            self.upload_url,
            self.issuer
        );
        for group in [Group::Pep807, Group::Trustpub] {
            out.push_str(&format!("\n{}\n", group.title()));
            out.push_str(&format!(
                "{:width$}  {:6}  {:4}  reason\n",
                "check", "level", "result"
            ));
            for r in self.results.iter().filter(|r| r.check.group == group) {
                let reason = one_line(&r.reason);
                let line = format!(
                    "{:width$}  {:6}  {:6}  {reason}",
                    r.check.id,
                    r.check.level.as_str(),
                    r.status.as_str().to_uppercase(),
                );
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        let must_failed = self.pep_musts(Status::Fail);
        let must_skipped = self.pep_musts(Status::Skip);
        out.push_str(&format!(
            "\n{} passed, {} failed ({} of them PEP 807 MUST), {} skipped ({} of them PEP 807 MUST), {} info\n",
            self.count(None, Status::Pass),
            self.count(None, Status::Fail),
            must_failed.len(),
            self.count(None, Status::Skip),
            must_skipped.len(),
            self.count(None, Status::Info),
        ));
        if !must_skipped.is_empty() {
            out.push_str(&format!(
                "\nNOT VERIFIED: {} PEP 807 MUST check(s) were SKIPPED and prove nothing: {}\n\
                 (see their reasons above; --strict exits 1 on them)\n",
                must_skipped.len(),
                must_skipped.join(", ")
            ));
        }
        out.push_str(match (must_failed.is_empty(), must_skipped.is_empty()) {
            (false, _) => "\nverdict: the server does NOT conform\n",
            (true, false) => {
                "\nverdict: no PEP 807 MUST check failed, but not every one could run\n"
            }
            (true, true) => "\nverdict: every PEP 807 MUST check passed\n",
        });
        out
    }

    /// The JSON report.
    pub fn json(&self) -> Value {
        let summary = |group: Option<Group>| {
            json!({
                "pass": self.count(group, Status::Pass),
                "fail": self.count(group, Status::Fail),
                "skip": self.count(group, Status::Skip),
                "info": self.count(group, Status::Info),
            })
        };
        json!({
            "kit": "trustpub-conformance",
            "version": env!("CARGO_PKG_VERSION"),
            "upload_url": self.upload_url,
            "issuer": self.issuer,
            "started_at": self.started_at,
            "conforms": self.conforms(false),
            "must_skipped": self.pep_musts(Status::Skip),
            "summary": {
                "all": summary(None),
                "pep807": summary(Some(Group::Pep807)),
                "trustpub": summary(Some(Group::Trustpub)),
            },
            "checks": self.results.iter().map(|r| json!({
                "id": r.check.id,
                "group": r.check.group,
                "level": r.check.level,
                "section": r.check.section,
                "title": r.check.title,
                "requirements": r.check.requirements,
                "status": r.status,
                "reason": r.reason,
            })).collect::<Vec<_>>(),
        })
    }

    /// The JUnit XML report: a test suite per group, a test case per check;
    /// failures and skips carry their reason.
    pub fn junit(&self) -> String {
        let mut writer = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
        let total = self.results.len().to_string();
        let failures = self.count(None, Status::Fail).to_string();
        let skipped = self.count(None, Status::Skip).to_string();
        writer
            .write_event(quick_xml::events::Event::Decl(
                quick_xml::events::BytesDecl::new("1.0", Some("UTF-8"), None),
            ))
            .expect("writing to memory");
        writer
            .create_element("testsuites")
            .with_attributes([
                ("name", "trustpub-conformance"),
                ("tests", total.as_str()),
                ("failures", failures.as_str()),
                ("skipped", skipped.as_str()),
            ])
            .write_inner_content(|w| {
                for group in [Group::Pep807, Group::Trustpub] {
                    let results: Vec<_> = self
                        .results
                        .iter()
                        .filter(|r| r.check.group == group)
                        .collect();
                    let tests = results.len().to_string();
                    let failures = self.count(Some(group), Status::Fail).to_string();
                    let skipped = self.count(Some(group), Status::Skip).to_string();
                    w.create_element("testsuite")
                        .with_attributes([
                            ("name", group.as_str()),
                            ("tests", tests.as_str()),
                            ("failures", failures.as_str()),
                            ("errors", "0"),
                            ("skipped", skipped.as_str()),
                        ])
                        .write_inner_content(|w| {
                            for r in results {
                                write_case(w, r)?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })
            .expect("writing to memory");
        let bytes = writer.into_inner().into_inner();
        String::from_utf8(bytes).expect("the writer writes UTF-8") + "\n"
    }
}

fn write_case(w: &mut Writer<Cursor<Vec<u8>>>, r: &CheckResult) -> std::io::Result<()> {
    let name = format!("{} [{}]", r.check.id, r.check.level.as_str());
    let classname = format!(
        "{}.{}",
        r.check.group.as_str(),
        r.check.id.split('.').next().unwrap_or_default()
    );
    let reason = xml_safe(&r.reason);
    let case = w
        .create_element("testcase")
        .with_attributes([("classname", classname.as_str()), ("name", name.as_str())]);
    let detail = xml_safe(&format!(
        "{} — {}\n{}",
        r.check.section, r.check.title, r.reason
    ));
    match r.status {
        Status::Pass | Status::Info => case.write_inner_content(|w| {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&detail))?;
            Ok(())
        }),
        Status::Fail => case.write_inner_content(|w| {
            w.create_element("failure")
                .with_attributes([
                    ("message", one_line(&reason).as_str()),
                    ("type", r.check.level.as_str()),
                ])
                .write_text_content(BytesText::new(&detail))?;
            Ok(())
        }),
        Status::Skip => case.write_inner_content(|w| {
            w.create_element("skipped")
                .with_attribute(("message", one_line(&reason).as_str()))
                .write_empty()?;
            Ok(())
        }),
    }
    .map(|_| ())
}

/// Text that XML 1.0 can hold: characters it forbids (most control
/// characters, lone surrogates cannot occur in `str`, U+FFFE, U+FFFF) become
/// U+FFFD. Escaping of `<`, `&` and quotes is the writer's.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Reasons on one line, for the table and XML attributes.
fn one_line(text: &str) -> String {
    xml_safe(text)
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

#[cfg(test)]
mod tests {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    use super::*;
    use crate::catalogue::check;

    const NASTY: &str =
        "a <b> & \"c\" 'd' ]]> \u{0}\u{7}\u{1b}[31m \u{fffe} é 🦀\nsecond line\r\n</testcase>";

    fn report(reason: &str) -> Report {
        Report {
            upload_url: format!("http://127.0.0.1:1/{reason}"),
            issuer: "http://127.0.0.1:2".into(),
            started_at: 0,
            results: CHECKS
                .iter()
                .enumerate()
                .map(|(i, c)| CheckResult {
                    check: c,
                    status: [Status::Pass, Status::Fail, Status::Skip][i % 3],
                    reason: reason.to_owned(),
                })
                .collect(),
        }
    }

    /// An element: its name, its attributes and its text.
    type Element = (String, Vec<(String, String)>, String);

    /// Parses the XML and returns every element, in order.
    fn parse(xml: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut out: Vec<Element> = Vec::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) => {
                    let attributes = e
                        .attributes()
                        .map(|a| {
                            let a = a.expect("a well-formed attribute");
                            let value = a
                                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .expect("escaped correctly")
                                .into_owned();
                            (a.key.0.to_owned(), value)
                        })
                        .collect();
                    out.push((e.name().0.to_owned(), attributes, String::new()));
                }
                Event::Text(t) => {
                    if let Some(last) = out.last_mut() {
                        last.2.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().expect("a valid character reference") {
                        Some(c) => c,
                        None => match &*r.xml10_content() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            other => panic!("an undefined entity {other}"),
                        },
                    };
                    if let Some(last) = out.last_mut() {
                        last.2.push(c);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    #[test]
    fn junit_is_well_formed_and_keeps_nasty_reasons() {
        let xml = report(NASTY).junit();
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        let elements = parse(&xml);
        assert_eq!(elements[0].0, "testsuites");
        assert_eq!(elements.iter().filter(|e| e.0 == "testsuite").count(), 2);
        assert_eq!(
            elements.iter().filter(|e| e.0 == "testcase").count(),
            CHECKS.len()
        );
        let failure = elements
            .iter()
            .find(|e| e.0 == "failure")
            .expect("a failure");
        let message = &failure.1.iter().find(|a| a.0 == "message").unwrap().1;
        assert!(message.contains("a <b> & \"c\" 'd' ]]> \u{fffd}\u{fffd}\u{fffd}[31m \u{fffd} é 🦀 / second line / </testcase>"), "{message}");
        assert!(
            failure.2.contains("second line\n</testcase>")
                || failure.2.contains("second line\r\n</testcase>"),
            "{:?}",
            failure.2
        );
        let skipped = elements.iter().filter(|e| e.0 == "skipped").count();
        assert_eq!(
            skipped,
            CHECKS
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == 2)
                .count()
        );
    }

    #[test]
    fn json_round_trips_and_counts() {
        let report = report(NASTY);
        let text = serde_json::to_string(&report.json()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["checks"].as_array().unwrap().len(), CHECKS.len());
        assert_eq!(value["checks"][1]["status"], "fail");
        assert_eq!(value["checks"][1]["reason"], NASTY);
        assert_eq!(
            value["checks"][0]["level"],
            check(CHECKS[0].id).level.as_str()
        );
        let all = &value["summary"]["all"];
        let sum = all["pass"].as_u64().unwrap()
            + all["fail"].as_u64().unwrap()
            + all["skip"].as_u64().unwrap();
        assert_eq!(sum as usize, CHECKS.len());
        assert_eq!(value["conforms"], false);
    }

    #[test]
    fn only_failed_pep_musts_break_conformance_unless_strict() {
        let mut report = report("");
        for r in &mut report.results {
            r.status = Status::Pass;
        }
        let set = |report: &mut Report, id: &str, status| {
            report
                .results
                .iter_mut()
                .find(|r| r.check.id == id)
                .unwrap()
                .status = status;
        };
        assert!(report.conforms(false) && report.conforms(true));
        assert!(
            report
                .table()
                .contains("verdict: every PEP 807 MUST check passed")
        );
        set(&mut report, "discovery.empty-path", Status::Skip);
        set(&mut report, "accept.any", Status::Info);
        assert!(report.conforms(false));
        assert!(!report.conforms(true), "a skipped MUST fails --strict");
        let table = report.table();
        assert!(
            table.contains("NOT VERIFIED: 1 PEP 807 MUST check(s) were SKIPPED and prove nothing: discovery.empty-path"),
            "{table}"
        );
        assert!(table.contains("not every one could run"), "{table}");
        assert_eq!(
            report.json()["must_skipped"],
            json!(["discovery.empty-path"])
        );
        set(&mut report, "discovery.empty-path", Status::Pass);
        set(&mut report, "accept.other-406", Status::Fail);
        set(&mut report, "trustpub.packages", Status::Fail);
        assert!(report.conforms(false));
        assert!(!report.conforms(true));
        set(&mut report, "mint.expired", Status::Fail);
        assert!(!report.conforms(false));
        assert!(report.table().contains("the server does NOT conform"));
    }

    #[test]
    fn the_table_has_one_line_per_check() {
        let table = report("why\nnot").table();
        for c in CHECKS {
            let line = table
                .lines()
                .find(|l| l.starts_with(&format!("{} ", c.id)))
                .unwrap();
            assert!(line.contains(c.level.as_str()), "{line}");
        }
        assert!(table.contains("why / not"));
    }
}
