//! The human report: a table of scopes (hours covered, digests, logs, gaps), the findings grouped
//! by scope with one sentence each and their evidence, what could not be checked and why, counts,
//! and a one-line verdict. Colour only when asked (a terminal without `NO_COLOR`, or `--color`).

use std::fmt::Write;

use super::{exit, Report};
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

struct Paint(bool);

impl Paint {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn severity(&self, s: Severity, text: &str) -> String {
        match s {
            Severity::Error => self.paint("1;31", text),
            Severity::Warning => self.paint("33", text),
            Severity::Info => self.paint("36", text),
        }
    }
}

/// What a run with `--state` carried and re-checked, in one line.
fn state_line(st: &super::StateRun) -> String {
    let from = match (&st.previous, st.reset) {
        (_, true) => "reset: a full run".to_string(),
        (Some(sha), _) => format!(
            "from state {} ({} anchor(s))",
            &sha[..sha.len().min(12)],
            st.anchors
        ),
        (None, _) => "first run: a full run".to_string(),
    };
    format!(
        "state {}: {from}; {} digest(s) newly verified; {} object(s) re-listed, {} compared with what was verified, {} read again, {} re-hashed{}{}",
        printable(&st.path),
        st.digests_verified,
        st.objects_relisted,
        st.objects_compared,
        st.objects_reread,
        st.objects_rehashed,
        st.reverify
            .as_ref()
            .map(|k| format!(" (--reverify {k})"))
            .unwrap_or_default(),
        if st.held.is_empty() {
            String::new()
        } else {
            format!(
                "; anchors held back in {} location(s) that did not verify completely",
                st.held.len()
            )
        }
    )
}

pub fn render_text(r: &Report, color: bool) -> String {
    let paint = Paint(color);
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
        "bucket {}, range {} .. {}, {} trusted key(s){}{}",
        printable(&r.bucket),
        r.range.start.map_or("(all history)".into(), format_time),
        format_time(r.range.end),
        r.keys.len(),
        if r.strict { ", strict" } else { "" },
        match &r.requests {
            Some(q) if q.adaptive => format!(", up to {} requests in flight (adapted)", q.peak),
            Some(q) => format!(", up to {} requests in flight", q.peak),
            None => String::new(),
        }
    );
    if let Some(st) = &r.state {
        let _ = writeln!(w, "{}", state_line(st));
    }
    let _ = writeln!(w);
    if !r.scopes.is_empty() {
        let names: Vec<String> = r
            .scopes
            .iter()
            .map(|s| printable(&s.display_name()))
            .collect();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .max(24);
        let _ = writeln!(
            w,
            "{:<width$}  {:>6}  {:>23}  {:>34}  GAPS",
            "ACCOUNT / REGION / TRAIL",
            "HOURS",
            "DIGESTS ok/bad/miss/unv",
            "LOGS ok/mod/corr/miss/unl/pend/unv",
        );
        for (s, name) in r.scopes.iter().zip(names) {
            let d = &s.digests;
            let l = &s.logs;
            let gap_hours: f64 = s
                .gaps
                .iter()
                .map(|g| (g.1 - g.0).num_seconds() as f64 / 3600.0)
                .sum::<f64>()
                + 0.0;
            let _ = writeln!(
                w,
                "{:<width$}  {:>6.0}  {:>23}  {:>34}  {}",
                name,
                s.covered_hours(),
                format!("{}/{}/{}/{}", d.valid, d.invalid, d.missing, d.unverified),
                format!(
                    "{}/{}/{}/{}/{}/{}/{}",
                    l.valid, l.modified, l.corrupt, l.missing, l.unlisted, l.pending, l.unverified
                ),
                if s.gaps.is_empty() {
                    "-".to_string()
                } else {
                    format!("{} ({gap_hours:.0} h)", s.gaps.len())
                }
            );
        }
        let _ = writeln!(w);
    }
    let mut group = None;
    for f in &r.findings {
        let this = (&f.prefix, &f.org_id, &f.account, &f.region, &f.trail);
        if group != Some(this) {
            group = Some(this);
            let mut head = format!("{} {}", f.account, f.region);
            if let Some(org) = &f.org_id {
                head = format!("{org}/{head}");
            }
            if !f.prefix.is_empty() {
                head = format!("{}/ {head}", f.prefix);
            }
            let trail = f
                .trail
                .as_deref()
                .map_or("(log folder)".to_string(), str::to_string);
            let _ = writeln!(w, "Findings — {} {}", printable(&head), printable(&trail));
        }
        let _ = writeln!(
            w,
            "  {} {:<24} {}",
            paint.severity(f.severity, &format!("{:<7}", f.severity.to_string())),
            f.kind.as_str(),
            printable(f.key.as_deref().unwrap_or("(key unknown)"))
        );
        let _ = writeln!(w, "          {}", printable(&f.message));
        if let Some(window) = &f.window {
            let _ = writeln!(w, "          hours: {window}");
        }
        if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
            let _ = writeln!(
                w,
                "          expected {}\n          actual   {}",
                printable(e),
                printable(a)
            );
        }
        if let Some(d) = &f.digest {
            let _ = writeln!(w, "          digest: {}", printable(d));
        }
        for log in &f.logs {
            let _ = writeln!(w, "          log in these hours: {}", printable(log));
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(w);
    }
    if !r.unverified.is_empty() {
        let _ = writeln!(w, "Could not be checked");
        for u in &r.unverified {
            let _ = writeln!(w, "  {}\n      {}", printable(&u.key), printable(&u.cause));
        }
        let _ = writeln!(w);
    }
    if let Some(p) = &r.provenance {
        let _ = writeln!(
            w,
            "Copy ({}) of {} made by {}, {} .. {}; manifest SHA-256 {}; {}",
            printable(if p.tool.is_empty() {
                "tool not recorded"
            } else {
                &p.tool
            }),
            printable(if p.source.is_empty() {
                "(source not recorded)"
            } else {
                &p.source
            }),
            printable(if p.caller.is_empty() {
                "(caller not recorded)"
            } else {
                &p.caller
            }),
            p.acquisition_started_at
                .map_or("-".into(), crate::layout::format_time),
            p.acquisition_finished_at
                .map_or("-".into(), crate::layout::format_time),
            p.manifest_sha256,
            match &p.custody_key {
                Some(k) => format!("custody signature by {k} verified"),
                None => "no custody signature checked".into(),
            }
        );
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
    let verdict = r.verdict();
    let _ = writeln!(
        w,
        "{}",
        match r.exit_code {
            exit::VERIFIED => paint.paint("1;32", &verdict),
            exit::FINDINGS => paint.paint("1;31", &verdict),
            _ => paint.paint("1;33", &verdict),
        }
    );
    out
}
