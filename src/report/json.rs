//! The JSON report: the `Report` type serialized as it is (DESIGN §3 schema).

use super::Report;

pub fn render_json(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(report).expect("a Report always serializes");
    out.push('\n');
    out
}
