//! The findings for spreadsheets and log pipelines: CSV, one row per finding (RFC 4180), and
//! JSON Lines, one finding per line (the JSON report's finding objects).
//!
//! Cells come from the bucket (keys, trail names), which the adversary writes: a cell a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return)
//! is given a leading `'`, as OWASP advises against CSV injection.

use super::Report;
use crate::layout::format_time;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 16] = [
    "kind",
    "severity",
    "account",
    "region",
    "trail",
    "key",
    "time",
    "window_start",
    "window_end",
    "digest",
    "expected",
    "actual",
    "logs",
    "prefix",
    "org_id",
    "message",
];

/// One CSV cell: quoted when it must be, defused when a spreadsheet would run it.
fn cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if defused.contains([',', '"', '\n', '\r']) || defused != defused.trim() {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

pub fn render_csv(report: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for f in &report.findings {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let (start, end) = f
            .window
            .as_ref()
            .map_or((String::new(), String::new()), |w| {
                (format_time(w.0), format_time(w.1))
            });
        let row = [
            f.kind.as_str().to_string(),
            f.severity.to_string(),
            f.account.clone(),
            f.region.clone(),
            opt(&f.trail),
            opt(&f.key),
            f.time.map(format_time).unwrap_or_default(),
            start,
            end,
            opt(&f.digest),
            opt(&f.expected),
            opt(&f.actual),
            f.logs.join(" "),
            f.prefix.clone(),
            opt(&f.org_id),
            f.message.clone(),
        ];
        let cells: Vec<String> = row.iter().map(|v| cell(v)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

pub fn render_jsonl(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&serde_json::to_string(f).expect("a Finding always serializes"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
    }
}
