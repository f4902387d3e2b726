//! Progress on standard error, never standard output: bars per phase (objects, bytes per
//! second, ETA) when stderr is a terminal; otherwise a plain line every few seconds, which reads
//! well in CI logs.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use trailproof::verify::{Phase, Progress};

/// The progress display for a run, or none.
pub fn display(quiet: bool, no_progress: bool) -> Option<Arc<dyn Progress>> {
    if quiet || no_progress {
        None
    } else if std::io::stderr().is_terminal() {
        Some(Arc::new(Bars::default()))
    } else {
        Some(Arc::new(Lines::default()))
    }
}

/// Takes the progress display off the screen when the run ends, however it ends.
pub struct ClearOnDrop(pub Option<Arc<dyn Progress>>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            p.finish();
        }
    }
}

#[derive(Default)]
struct Bars {
    current: Mutex<Option<(ProgressBar, u64, Instant)>>,
    /// Requests let in flight at once, once a run over S3 says.
    limit: std::sync::atomic::AtomicUsize,
}

impl Progress for Bars {
    fn phase(&self, phase: Phase, total: u64) {
        let mut current = self.current.lock().expect("lock");
        if let Some((bar, _, _)) = current.take() {
            bar.finish_and_clear();
        }
        let bar = if total == 0 {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(total)
        };
        let template = if phase == Phase::Discovering {
            "{prefix:>12} {spinner} {pos} folders listed, {msg}"
        } else if total == 0 {
            "{prefix:>12} {spinner} {pos} objects, {msg}"
        } else {
            "{prefix:>12} [{bar:30}] {pos}/{len} objects, {msg}, ETA {eta}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(phase.as_str());
        bar.enable_steady_tick(Duration::from_millis(200));
        *current = Some((bar, 0, Instant::now()));
    }

    fn advance(&self, objects: u64, bytes: u64) {
        if let Some((bar, total_bytes, started)) = self.current.lock().expect("lock").as_mut() {
            *total_bytes += bytes;
            bar.inc(objects);
            let secs = started.elapsed().as_secs_f64().max(0.001);
            // Rates rounded to whole units: a rate with four decimals is noise.
            let rate = (bar.position() as f64 / secs).round() as u64;
            let mut message = format!("{rate}/s");
            if *total_bytes > 0 {
                message += &format!(", {}/s", HumanBytes((*total_bytes as f64 / secs) as u64));
            }
            message += &in_flight(self.limit.load(std::sync::atomic::Ordering::Relaxed));
            bar.set_message(message);
        }
    }

    fn requests(&self, limit: usize) {
        self.limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
    }

    fn finish(&self) {
        if let Some((bar, _, _)) = self.current.lock().expect("lock").take() {
            bar.finish_and_clear();
        }
    }
}

/// `, up to N requests in flight`, once a run over S3 has said N.
fn in_flight(limit: usize) -> String {
    match limit {
        0 => String::new(),
        n => format!(", up to {n} requests in flight"),
    }
}

#[derive(Default)]
struct Lines {
    state: Mutex<LineState>,
}

#[derive(Default)]
struct LineState {
    phase: Option<Phase>,
    total: u64,
    done: u64,
    bytes: u64,
    started: Option<Instant>,
    printed: Option<Instant>,
    /// Requests let in flight at once, once a run over S3 says.
    limit: usize,
}

const EVERY: Duration = Duration::from_secs(5);

impl LineState {
    fn line(&self) -> String {
        let secs = self
            .started
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
            .max(0.001);
        let phase = self.phase.map_or("", Phase::as_str);
        if self.phase == Some(Phase::Discovering) {
            format!("trailproof: {phase}: {} folders listed", self.done)
        } else if self.total == 0 {
            format!(
                "trailproof: {phase}: {} objects, {}, {:.0} objects/s{}",
                self.done,
                HumanBytes(self.bytes),
                self.done as f64 / secs,
                in_flight(self.limit)
            )
        } else {
            format!(
                "trailproof: {phase}: {}/{} objects, {}, {:.0} objects/s{}",
                self.done,
                self.total,
                HumanBytes(self.bytes),
                self.done as f64 / secs,
                in_flight(self.limit)
            )
        }
    }
}

impl Progress for Lines {
    fn phase(&self, phase: Phase, total: u64) {
        let mut s = self.state.lock().expect("lock");
        *s = LineState {
            phase: Some(phase),
            total,
            started: Some(Instant::now()),
            printed: s.printed,
            limit: s.limit,
            ..LineState::default()
        };
    }

    fn advance(&self, objects: u64, bytes: u64) {
        let mut s = self.state.lock().expect("lock");
        s.done += objects;
        s.bytes += bytes;
        let due = s.printed.is_none_or(|p| p.elapsed() >= EVERY)
            && s.started.is_some_and(|t| t.elapsed() >= EVERY);
        if due {
            s.printed = Some(Instant::now());
            eprintln!("{}", s.line());
        }
    }

    fn requests(&self, limit: usize) {
        self.state.lock().expect("lock").limit = limit;
    }

    fn finish(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_how_many_requests_may_be_in_flight_once_known() {
        let lines = Lines::default();
        lines.phase(Phase::Verifying, 10);
        lines.advance(4, 2048);
        let line = lines.state.lock().unwrap().line();
        assert!(
            line.starts_with("trailproof: verifying: 4/10 objects, 2.00 KiB, "),
            "{line}"
        );
        assert!(!line.contains("in flight"), "{line}");
        lines.requests(128);
        // A new phase keeps what the run said.
        lines.phase(Phase::Verifying, 10);
        let line = lines.state.lock().unwrap().line();
        assert!(line.ends_with(", up to 128 requests in flight"), "{line}");
    }
}
