//! The HTML report: one self-contained file (no external assets; works offline; prints well)
//! with the verdict, counts, the per-scope table, a coverage timeline per scope — one cell per
//! hour, coloured by what the evidence shows — and finding tables a reader can filter.

use std::fmt::Write;

use super::timeline::{hours, HourState};
use super::{markup_escape as esc, Report};
use crate::finding::{Kind, Severity};
use crate::layout::format_time;

const STYLE: &str = r#"
:root { --ok:#2e7d32; --bad:#c62828; --warn:#b26a00; --unv:#6a1b9a; --gap:#9e9e9e; --ink:#1d1d1f; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: .95rem; margin: 1rem 0 .3rem; font-family: ui-monospace, monospace; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .7rem 1rem; border-radius: 6px; color: #fff; }
.exit-0 { background: var(--ok); } .exit-1 { background: var(--bad); } .exit-2 { background: var(--warn); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
.counts span { display: inline-block; margin-right: 1.2rem; } .counts b { font-size: 1.2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.sev-error { color: var(--bad); font-weight: 600; } .sev-warning { color: var(--warn); font-weight: 600; } .sev-info { color: #555; }
.cells { display: flex; flex-wrap: wrap; gap: 1px; }
.cell { width: 10px; height: 14px; display: inline-block; }
.cell.day { margin-left: 4px; }
.verified { background: var(--ok); } .missing { background: var(--bad); } .invalid { background: #ef6c00; }
.unverified { background: var(--unv); } .gap { background: var(--gap); }
.legend span { margin-right: 1rem; } .legend .cell { vertical-align: middle; margin-right: .3rem; }
.filters { display: flex; gap: .6rem; margin: .5rem 0; } .filters input { flex: 1; padding: .3rem; }
tr.hidden { display: none; }
.evidence { font-family: ui-monospace, monospace; font-size: 12px; color: #444; white-space: pre-wrap; word-break: break-all; }
@media print {
  .filters { display: none; } tr.hidden { display: table-row; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; }
}
"#;

/// Filters the findings table by text, severity and kind; the initial filter may come from the
/// address (`#filter=…&severity=…&kind=…`), so a filtered view can be linked.
const SCRIPT: &str = r#"
(function () {
  var text = document.getElementById('filter'), sev = document.getElementById('severity'), kind = document.getElementById('kind');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#findings tbody tr'));
  function apply() {
    var t = text.value.toLowerCase(), s = sev.value, k = kind.value, shown = 0;
    rows.forEach(function (r) {
      var ok = (!s || r.dataset.severity === s) && (!k || r.dataset.kind === k) && (!t || r.textContent.toLowerCase().indexOf(t) >= 0);
      r.classList.toggle('hidden', !ok); if (ok) shown++;
    });
    document.getElementById('shown').textContent = shown;
  }
  var params = new URLSearchParams(location.hash.slice(1));
  if (params.get('filter')) text.value = params.get('filter');
  if (params.get('severity')) sev.value = params.get('severity');
  if (params.get('kind')) kind.value = params.get('kind');
  [text, sev, kind].forEach(function (e) { e.addEventListener('input', apply); });
  apply();
})();
"#;

pub fn render_html(r: &Report) -> String {
    let mut o = String::new();
    let title = format!("trailproof report — {}", r.source);
    let _ = writeln!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        o,
        "<header><h1>trailproof report</h1><p id=\"verdict\" class=\"verdict exit-{}\">{}</p>",
        r.exit_code,
        esc(&r.verdict())
    );
    let range = format!(
        "{} .. {}",
        r.range.start.map_or("(all history)".into(), format_time),
        format_time(r.range.end)
    );
    let keys: Vec<String> = r
        .keys
        .iter()
        .map(|k| {
            format!(
                "{} ({})",
                k.fingerprint,
                k.region.as_deref().unwrap_or("any region")
            )
        })
        .collect();
    let _ = write!(o, "<dl class=\"meta\">");
    for (name, value) in [
        ("Source", r.source.clone()),
        ("Bucket", r.bucket.clone()),
        ("Range", range),
        (
            "Trusted keys",
            if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            },
        ),
        (
            "Run",
            format!(
                "{} .. {}",
                format_time(r.started_at),
                format_time(r.finished_at)
            ),
        ),
        ("Tool", format!("{} {}", r.tool.name, r.tool.version)),
        ("Exit code", r.exit_code.to_string()),
    ] {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(&value));
    }
    o.push_str("</dl>");
    let digests: usize = r.scopes.iter().map(|s| s.digests.seen()).sum();
    let _ = writeln!(
        o,
        "<p class=\"counts\"><span><b id=\"count-scopes\">{}</b> scopes</span><span><b id=\"count-digests\">{digests}</b> digests</span><span class=\"sev-error\"><b id=\"count-errors\">{}</b> errors</span><span class=\"sev-warning\"><b id=\"count-warnings\">{}</b> warnings</span><span><b id=\"count-info\">{}</b> info</span><span><b id=\"count-unverified\">{}</b> unverified</span></p></header>",
        r.scopes.len(),
        r.count(Severity::Error),
        r.count(Severity::Warning),
        r.count(Severity::Info),
        r.unverified.len()
    );
    for note in &r.notes {
        let _ = write!(o, "<p class=\"note\">{}</p>", esc(note));
    }

    // Scopes.
    o.push_str("<section><h2>Scopes</h2><table id=\"scopes\"><thead><tr><th>Scope</th><th>Digests valid</th><th>invalid</th><th>missing</th><th>unverified</th><th>Logs valid</th><th>modified</th><th>corrupt</th><th>missing</th><th>unlisted</th><th>pending</th><th>unverified</th><th>Gaps</th></tr></thead><tbody>\n");
    for s in &r.scopes {
        let d = &s.digests;
        let l = &s.logs;
        let _ = write!(o, "<tr><td class=\"key\">{}</td>", esc(&s.display_name()));
        for n in [
            d.valid,
            d.invalid,
            d.missing,
            d.unverified,
            l.valid,
            l.modified,
            l.corrupt,
            l.missing,
            l.unlisted,
            l.pending,
            l.unverified,
            s.gaps.len(),
        ] {
            let _ = write!(o, "<td class=\"num\">{n}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></section>\n");

    // Coverage timelines.
    o.push_str("<section><h2>Coverage</h2><p class=\"legend\">");
    for state in [
        HourState::Verified,
        HourState::Missing,
        HourState::Invalid,
        HourState::Unverified,
        HourState::Gap,
    ] {
        let label = match state {
            HourState::Verified => "verified",
            HourState::Missing => "digest missing",
            HourState::Invalid => "invalid digest or log",
            HourState::Unverified => "could not be checked",
            HourState::Gap => "restart or tail gap (no digest)",
        };
        let _ = write!(
            o,
            "<span><i class=\"cell {}\"></i>{label}</span>",
            state.as_str()
        );
    }
    o.push_str("</p>\n");
    for s in &r.scopes {
        let _ = write!(
            o,
            "<div class=\"timeline\"><h3>{}</h3><div class=\"cells\">",
            esc(&s.display_name())
        );
        for hour in hours(r, s) {
            let day = if hour.start.format("%H").to_string() == "00" {
                " day"
            } else {
                ""
            };
            let kinds: Vec<&str> = hour.findings.iter().map(|f| f.kind.as_str()).collect();
            let _ = write!(
                o,
                "<i class=\"cell {}{day}\" data-state=\"{}\" title=\"{} {}{}\"></i>",
                hour.state.as_str(),
                hour.state.as_str(),
                hour.start.format("%Y-%m-%d %H:00Z"),
                hour.state.as_str(),
                esc(&if kinds.is_empty() {
                    String::new()
                } else {
                    format!(": {}", kinds.join(", "))
                })
            );
        }
        o.push_str("</div></div>\n");
    }
    o.push_str("</section>\n");

    // Findings.
    let _ = write!(
        o,
        "<section><h2>Findings (<span id=\"shown\">{}</span> of {})</h2><div class=\"filters\"><input id=\"filter\" type=\"search\" placeholder=\"Filter by key, account, message…\"><select id=\"severity\"><option value=\"\">every severity</option><option value=\"error\">error</option><option value=\"warning\">warning</option><option value=\"info\">info</option></select><select id=\"kind\"><option value=\"\">every kind</option>",
        r.findings.len(),
        r.findings.len()
    );
    for kind in Kind::ALL {
        let _ = write!(o, "<option value=\"{kind}\">{kind}</option>");
    }
    o.push_str("</select></div><table id=\"findings\"><thead><tr><th>Severity</th><th>Kind</th><th>Account / region / trail</th><th>Object and evidence</th></tr></thead><tbody>\n");
    for f in &r.findings {
        let mut evidence = f.message.clone();
        if let Some(w) = &f.window {
            evidence.push_str(&format!("\nhours: {w}"));
        }
        if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
            evidence.push_str(&format!("\nexpected {e}\nactual   {a}"));
        }
        for log in &f.logs {
            evidence.push_str(&format!("\nlog in these hours: {log}"));
        }
        let _ = writeln!(
            o,
            "<tr data-severity=\"{}\" data-kind=\"{}\"><td class=\"sev-{}\">{}</td><td>{}</td><td>{} {} {}</td><td><div class=\"key\">{}</div><div class=\"evidence\">{}</div></td></tr>",
            f.severity,
            f.kind,
            f.severity,
            f.severity,
            f.kind,
            esc(&f.account),
            esc(&f.region),
            esc(f.trail.as_deref().unwrap_or("(log folder)")),
            esc(f.key.as_deref().unwrap_or("(key unknown)")),
            esc(&evidence)
        );
    }
    o.push_str("</tbody></table></section>\n");

    if !r.unverified.is_empty() {
        let _ = writeln!(
            o,
            "<section><h2>Could not be checked ({})</h2><table id=\"unverified\"><thead><tr><th>Object</th><th>Cause</th></tr></thead><tbody>",
            r.unverified.len()
        );
        for u in &r.unverified {
            let _ = writeln!(
                o,
                "<tr><td class=\"key\">{}</td><td>{}</td></tr>",
                esc(&u.key),
                esc(&u.cause)
            );
        }
        o.push_str("</tbody></table></section>\n");
    }
    let _ = writeln!(o, "<script>{SCRIPT}</script>\n</body></html>");
    o
}
