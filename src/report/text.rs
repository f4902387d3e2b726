//! The human report: a table of scopes, the findings grouped by account and region with one
//! sentence each and their evidence, what could not be checked, counts, and a verdict.

use std::fmt::Write;

use super::Report;
use crate::finding::Severity;
use crate::layout::format_time;

/// Makes a key or message safe to print on a terminal: control characters are shown escaped,
/// so a hostile key cannot rewrite the screen.
pub fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "{} {} — {}",
        r.tool.name,
        r.tool.version,
        printable(&r.source)
    );
    let _ = writeln!(
        w,
        "bucket {}, range {} .. {}, {} trusted key(s){}",
        printable(&r.bucket),
        r.range.start.map_or("(all history)".into(), format_time),
        format_time(r.range.end),
        r.keys.len(),
        if r.strict { ", strict" } else { "" }
    );
    let _ = writeln!(w);
    if !r.scopes.is_empty() {
        let names: Vec<String> = r
            .scopes
            .iter()
            .map(|s| {
                let mut name = format!("{} {} {}", s.account, s.region, printable(&s.trail));
                if let Some(org) = &s.org_id {
                    name = format!("{org}/{name}");
                }
                if !s.prefix.is_empty() {
                    name = format!("{}/ {name}", printable(&s.prefix));
                }
                name
            })
            .collect();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .max(24);
        let _ = writeln!(
            w,
            "{:<width$}  {:>23}  {:>34}  GAPS",
            "ACCOUNT / REGION / TRAIL",
            "DIGESTS ok/bad/miss/unv",
            "LOGS ok/mod/corr/miss/unl/pend/unv",
        );
        for (s, name) in r.scopes.iter().zip(names) {
            let d = &s.digests;
            let l = &s.logs;
            let _ = writeln!(
                w,
                "{:<width$}  {:>23}  {:>34}  {}",
                name,
                format!("{}/{}/{}/{}", d.valid, d.invalid, d.missing, d.unverified),
                format!(
                    "{}/{}/{}/{}/{}/{}/{}",
                    l.valid, l.modified, l.corrupt, l.missing, l.unlisted, l.pending, l.unverified
                ),
                s.gaps.len()
            );
        }
        let _ = writeln!(w);
    }
    if !r.findings.is_empty() {
        let _ = writeln!(w, "Findings");
        let mut group = None;
        for f in &r.findings {
            let this = (&f.prefix, &f.org_id, &f.account, &f.region);
            if group != Some(this) {
                group = Some(this);
                let mut head = format!("{} {}", f.account, f.region);
                if let Some(org) = &f.org_id {
                    head = format!("{org}/{head}");
                }
                if !f.prefix.is_empty() {
                    head = format!("{}/ {head}", printable(&f.prefix));
                }
                let _ = writeln!(w, "  {head}");
            }
            let _ = writeln!(
                w,
                "    {:<7} {:<24} {}",
                f.severity.to_string(),
                f.kind.as_str(),
                printable(f.key.as_deref().unwrap_or("(key unknown)"))
            );
            let trail = f
                .trail
                .as_deref()
                .map(|t| format!("trail {}: ", printable(t)))
                .unwrap_or_default();
            let _ = writeln!(w, "            {trail}{}", printable(&f.message));
            if let Some(window) = &f.window {
                let _ = writeln!(w, "            hours: {window}");
            }
            if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
                let _ = writeln!(
                    w,
                    "            expected {}\n            actual   {}",
                    printable(e),
                    printable(a)
                );
            }
            for log in &f.logs {
                let _ = writeln!(w, "            log in these hours: {}", printable(log));
            }
        }
        let _ = writeln!(w);
    }
    if !r.unverified.is_empty() {
        let _ = writeln!(w, "Could not be checked");
        for u in &r.unverified {
            let _ = writeln!(w, "  {}\n      {}", printable(&u.key), printable(&u.cause));
        }
        let _ = writeln!(w);
    }
    for note in &r.notes {
        let _ = writeln!(w, "Note: {}", printable(note));
    }
    let digests: usize = r.scopes.iter().map(|s| s.digests.seen()).sum();
    let logs: usize = r
        .scopes
        .iter()
        .map(|s| s.logs.valid + s.logs.modified + s.logs.corrupt + s.logs.missing)
        .sum();
    let _ = writeln!(
        w,
        "{} scope(s), {digests} digest(s), {logs} listed log(s): {} error(s), {} warning(s), {} info, {} unverified",
        r.scopes.len(),
        r.count(Severity::Error),
        r.count(Severity::Warning),
        r.count(Severity::Info),
        r.unverified.len()
    );
    let _ = writeln!(w, "{}", r.verdict());
    out
}
