//! JUnit XML for CI: a `testsuite` per scope (account/region/trail), a `testcase` per digest
//! hour, and one per finding that belongs to a log folder rather than a trail (unlisted logs,
//! stray objects). Error findings are `<failure>`; objects that could not be checked are
//! `<error>`; warnings and info are `<system-out>` of a passing case.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::timeline::{hours, location_findings};
use super::{markup_escape as esc, Report};
use crate::finding::{Finding, Severity};
use crate::layout::format_time;

struct Case {
    name: String,
    failures: Vec<String>,
    errors: Vec<String>,
    notes: Vec<String>,
}

fn finding_text(f: &Finding) -> String {
    let mut text = format!(
        "{}: {}",
        f.key.as_deref().unwrap_or("(key unknown)"),
        f.message
    );
    if let Some(w) = &f.window {
        text.push_str(&format!("\nhours: {w}"));
    }
    if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
        text.push_str(&format!("\nexpected {e}\nactual   {a}"));
    }
    text
}

fn failure(f: &Finding) -> String {
    format!(
        "<failure type=\"{}\" message=\"{}\">{}</failure>",
        f.kind,
        esc(&f.message),
        esc(&finding_text(f))
    )
}

fn add(case: &mut Case, f: &Finding) {
    match f.severity {
        Severity::Error => case.failures.push(failure(f)),
        _ => case
            .notes
            .push(format!("{} {}: {}", f.severity, f.kind, finding_text(f))),
    }
}

fn write_suite(out: &mut String, name: &str, classname: &str, report: &Report, cases: &[Case]) {
    let failures = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let errors = cases
        .iter()
        .filter(|c| c.failures.is_empty() && !c.errors.is_empty())
        .count();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" timestamp=\"{}\">",
        esc(name),
        cases.len(),
        format_time(report.started_at)
    );
    for case in cases {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\">",
            esc(classname),
            esc(&case.name)
        );
        for f in &case.failures {
            out.push_str(f);
        }
        if case.failures.is_empty() {
            for e in &case.errors {
                out.push_str(e);
            }
        }
        if !case.notes.is_empty() {
            let _ = write!(
                out,
                "<system-out>{}</system-out>",
                esc(&case.notes.join("\n"))
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n");
}

pub fn render_junit(report: &Report) -> String {
    let mut suites = String::new();
    let mut totals = (0usize, 0usize, 0usize);
    let mut located = BTreeSet::new();
    let mut folders_done = BTreeSet::new();
    let mut count = |cases: &[Case]| {
        totals.0 += cases.len();
        totals.1 += cases.iter().filter(|c| !c.failures.is_empty()).count();
        totals.2 += cases
            .iter()
            .filter(|c| c.failures.is_empty() && !c.errors.is_empty())
            .count();
    };
    for scope in &report.scopes {
        let mut place = format!("{}/{}", scope.account, scope.region);
        if let Some(org) = &scope.org_id {
            place = format!("{org}/{place}");
        }
        if !scope.prefix.is_empty() {
            place = format!("{}/{place}", scope.prefix);
        }
        let mut cases = Vec::new();
        for hour in hours(report, scope) {
            let mut case = Case {
                name: format!("{} digest hour", hour.start.format("%Y-%m-%dT%H:00Z")),
                failures: Vec::new(),
                errors: Vec::new(),
                notes: Vec::new(),
            };
            for f in hour.findings.iter().filter(|f| f.trail.is_some()) {
                add(&mut case, f);
            }
            for u in &hour.unverified {
                located.insert(u.key.clone());
                case.errors.push(format!(
                    "<error type=\"unverified\" message=\"{}\">{}</error>",
                    esc(&u.cause),
                    esc(&format!("{}: {}", u.key, u.cause))
                ));
            }
            cases.push(case);
        }
        count(&cases);
        write_suite(
            &mut suites,
            &format!("{place}/{}", scope.trail),
            &format!("trailproof.{}.{}", place.replace('/', "."), scope.trail),
            report,
            &cases,
        );
        if folders_done.insert(place.clone()) {
            let folder: Vec<Case> = location_findings(report, scope)
                .into_iter()
                .map(|f| {
                    let mut case = Case {
                        name: format!("{} {}", f.kind, f.key.as_deref().unwrap_or("")),
                        failures: Vec::new(),
                        errors: Vec::new(),
                        notes: Vec::new(),
                    };
                    add(&mut case, f);
                    case
                })
                .collect();
            if !folder.is_empty() {
                count(&folder);
                write_suite(
                    &mut suites,
                    &format!("{place}/log folder"),
                    &format!("trailproof.{}.logs", place.replace('/', ".")),
                    report,
                    &folder,
                );
            }
        }
    }
    // What could not be checked and belongs to no scope hour (a folder that could not be
    // listed, say), and a run that found nothing at all.
    let mut rest: Vec<Case> = report
        .unverified
        .iter()
        .filter(|u| !located.contains(&u.key))
        .map(|u| Case {
            name: format!("unverified {}", u.key),
            failures: Vec::new(),
            errors: vec![format!(
                "<error type=\"unverified\" message=\"{}\">{}</error>",
                esc(&u.cause),
                esc(&u.key)
            )],
            notes: Vec::new(),
        })
        .collect();
    for note in &report.notes {
        rest.push(Case {
            name: "run".into(),
            failures: Vec::new(),
            errors: vec![format!(
                "<error type=\"incomplete\" message=\"{}\"/>",
                esc(note)
            )],
            notes: Vec::new(),
        });
    }
    if !rest.is_empty() {
        count(&rest);
        write_suite(
            &mut suites,
            "trailproof run",
            "trailproof.run",
            report,
            &rest,
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"trailproof {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n{suites}</testsuites>\n",
        esc(&report.source),
        totals.0,
        totals.1,
        totals.2
    )
}
