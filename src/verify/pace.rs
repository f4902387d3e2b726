//! How many requests are in flight: fixed (`--jobs N`), or adapted to the source as the run
//! goes (`--jobs auto`, the default). Adapting is latency-based, as TCP Vegas is: while the
//! permits are all in use and requests take no longer than the quickest ones seen (the round
//! trip), more in flight is more throughput, so the limit doubles at first and then grows by a
//! quarter; once requests queue (they take twice the round trip: the source or this machine's
//! CPU is the bound), it steps down by a quarter; when the source throttles (503 SlowDown, 429)
//! it halves, and while a steady share of answers is throttled it grows only by a quarter. A
//! growth that did not raise completions per second is taken back, and that limit held for a
//! while: more requests in flight then only wait (on this machine's CPU, say, at loopback), each
//! holding a connection and its buffers. Additive increase, multiplicative decrease, between [`MIN_AUTO`] and the `--jobs` bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Where an adapting run starts, and the least it goes down to.
pub const START_AUTO: usize = 64;
pub const MIN_AUTO: usize = 8;
/// The most an adapting run goes up to: S3 serves about 5,500 GETs a second per prefix
/// partition, which 1,024 requests of 20 ms already exceed; the store's throttling then
/// brings it down.
pub const MAX_AUTO: usize = 1024;
/// A window closes after this long and at least this many completions.
const WINDOW: Duration = Duration::from_millis(60);
const WINDOW_MIN_DONE: u64 = 32;
/// Growing the limit by a factor `f` must raise completions per second by at least
/// `PROBE_GAIN × (f − 1)` (a tenth of what the growth could give) to be kept.
const PROBE_GAIN: f64 = 0.1;
/// Windows (of about [`WINDOW`]) before a limit that more in flight did not beat is probed again.
const CAP_WINDOWS: u32 = 16;
/// The share of the machine's CPU time busy at which it is the bound, and the limit holds.
const SATURATED: f64 = 0.95;
/// The share of its CPUs this process keeps busy at which they are the bound.
const OWN_SATURATED: f64 = 0.9;

/// The run's permits, and how many there should be.
pub struct Pace {
    permits: Semaphore,
    /// Permits there should be now.
    limit: AtomicUsize,
    /// Permits to drop as they come back, when the limit went down.
    debt: AtomicUsize,
    max: usize,
    adaptive: bool,
    done: AtomicU64,
    peak: AtomicUsize,
    /// Requests holding a permit now, the most there were, and the most in this window.
    in_flight: AtomicUsize,
    reached: AtomicUsize,
    window_peak: AtomicUsize,
    /// Microseconds requests held their permits, summed.
    held_us: AtomicU64,
    window: Mutex<Window>,
    /// Whether the machine's CPU readings describe this process's CPUs, and how many it may use.
    machine_is_ours: bool,
    cores: usize,
}

struct Window {
    opened: Instant,
    done_at_open: u64,
    held_at_open: u64,
    throttles_at_open: u64,
    /// The quickest window's mean time per request: the round trip, without queueing.
    base_us: Option<f64>,
    /// Still doubling.
    slow_start: bool,
    /// The share of the last window's answers that were throttling.
    throttled_share: f64,
    /// The limit and the completions per second before the last growth, until a busy window
    /// tells whether it paid.
    probe: Option<(usize, f64)>,
    /// A limit that more in flight did not beat, and the windows left before growing past it is
    /// tried again.
    cap: Option<(usize, u32)>,
    /// The machine's CPU ticks when the window opened (only where they describe this
    /// process's CPUs), and this process's CPU time.
    ticks_at_open: Option<(u64, u64)>,
    own_at_open: Option<Duration>,
}

/// What one window measured.
struct Measured {
    /// Permits there were.
    limit: usize,
    /// Completions per second.
    rate: f64,
    /// Mean time a request held its permit, µs.
    mean_us: f64,
    /// Whether the permits were (nearly) all in use at some point.
    busy: bool,
    /// The share of answers that were throttling.
    throttled_share: f64,
    /// The share of the machine's CPU time that was busy, where it can be read and the machine's
    /// CPUs are this process's.
    machine_busy: Option<f64>,
    /// The share of the CPUs this process may use that it kept busy.
    own_busy: Option<f64>,
}

impl Window {
    /// The limit for the next window, from what this one measured.
    fn next_limit(&mut self, m: &Measured) -> usize {
        let limit = m.limit;
        let base = self.base_us.map_or(m.mean_us, |b| b.min(m.mean_us));
        self.base_us = Some(base);
        if let Some((until, left)) = self.cap {
            self.cap = (left > 1).then_some((until, left - 1));
        }
        // Growth that bought no throughput is taken back: the requests only queued (on this
        // machine's CPU, or the source's), holding connections and buffers for nothing. Judged
        // on a busy window only, where the work filled the permits.
        if let Some((before, before_rate)) = self.probe {
            if m.busy && limit > before {
                self.probe = None;
                let wanted = 1.0 + PROBE_GAIN * (limit as f64 / before as f64 - 1.0);
                if m.rate < before_rate * wanted && m.throttled_share == 0.0 {
                    self.slow_start = false;
                    self.cap = Some((before, CAP_WINDOWS));
                    return before;
                }
            } else if limit <= before {
                self.probe = None;
            }
        }
        // Throttling that grows (with what this run sends) is halved; a steady share of it (a
        // partition that throttles whatever is sent, retried within the SDK) only ends the
        // doubling of a slow start: halving again and again would not make it stop, only make
        // the run slower, and if more in flight makes it grow, the next window halves.
        let share = m.throttled_share;
        let growing = share > self.throttled_share * 1.5 + 0.01 || share > 0.25;
        let previous_share = std::mem::replace(&mut self.throttled_share, share);
        let grow = limit + (limit / 4).max(1);
        // Every CPU busy (the machine's, or those this process may use with its own work): more
        // in flight cannot be served sooner.
        let saturated = m.machine_busy.is_some_and(|b| b >= SATURATED)
            || m.own_busy.is_some_and(|b| b >= OWN_SATURATED);
        let next = if share > 0.0 && (growing || previous_share == 0.0) {
            self.slow_start = false;
            (limit / 2).max(MIN_AUTO)
        } else if share > 0.0 && m.busy && m.mean_us <= base * 2.0 {
            grow
        } else if share > 0.0 {
            limit
        } else if m.mean_us > base * 2.0 {
            // Requests queue: the source, or this machine, is the bound.
            self.slow_start = false;
            limit - limit / 4
        } else if m.busy && saturated {
            self.slow_start = false;
            limit
        } else if m.busy && self.slow_start {
            limit * 2
        } else if m.busy {
            grow
        } else {
            limit
        };
        let next = match self.cap {
            Some((cap, _)) if next > limit => next.min(cap.max(limit)),
            _ => next,
        };
        if next > limit {
            self.probe = Some((limit, m.rate));
        } else if next < limit {
            self.probe = None;
        }
        next
    }
}

/// One request's permit; given back (or dropped, when the limit went down) when done.
pub struct Permit<'p> {
    pace: &'p Pace,
    permit: Option<SemaphorePermit<'p>>,
    since: Instant,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let held = self.since.elapsed().as_micros().min(u64::MAX as u128) as u64;
        self.pace.held_us.fetch_add(held, Relaxed);
        self.pace.done.fetch_add(1, Relaxed);
        self.pace.in_flight.fetch_sub(1, Relaxed);
        if let Some(permit) = self.permit.take() {
            let owed = self
                .pace
                .debt
                .fetch_update(Relaxed, Relaxed, |d| d.checked_sub(1));
            if owed.is_ok() {
                permit.forget();
            }
        }
    }
}

impl Pace {
    /// `jobs` requests at most; adapting from [`START_AUTO`] up to `jobs` if `adaptive`.
    pub fn new(jobs: usize, adaptive: bool) -> Pace {
        let max = jobs.max(1);
        let start = if adaptive { START_AUTO.min(max) } else { max };
        Pace {
            permits: Semaphore::new(start),
            limit: AtomicUsize::new(start),
            debt: AtomicUsize::new(0),
            max,
            adaptive,
            done: AtomicU64::new(0),
            peak: AtomicUsize::new(start),
            in_flight: AtomicUsize::new(0),
            reached: AtomicUsize::new(0),
            window_peak: AtomicUsize::new(0),
            held_us: AtomicU64::new(0),
            window: Mutex::new(Window {
                opened: Instant::now(),
                done_at_open: 0,
                held_at_open: 0,
                throttles_at_open: 0,
                base_us: None,
                slow_start: true,
                throttled_share: 0.0,
                probe: None,
                cap: None,
                ticks_at_open: crate::cpu::machine_ticks(),
                own_at_open: crate::cpu::own_time(),
            }),
            machine_is_ours: adaptive && crate::cpu::machine_is_ours(),
            cores: crate::cpu::cores(),
        }
    }

    /// Waits for a permit. `throttles` is the source's count of throttled answers so far.
    pub async fn acquire(&self, throttles: u64) -> Permit<'_> {
        if self.adaptive {
            self.adapt(throttles);
        }
        let permit = self.permits.acquire().await.ok();
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.reached.fetch_max(now, Relaxed);
        self.window_peak.fetch_max(now, Relaxed);
        Permit {
            pace: self,
            permit,
            since: Instant::now(),
        }
    }

    /// The requests that may be in flight now.
    pub fn limit(&self) -> usize {
        self.limit.load(Relaxed)
    }

    /// The most requests that were in flight at once.
    pub fn peak(&self) -> usize {
        self.reached.load(Relaxed)
    }

    /// The most permits there were at once.
    pub fn most_permits(&self) -> usize {
        self.peak.load(Relaxed)
    }

    /// Closes the window if it is due, and sets the next limit from what it measured.
    fn adapt(&self, throttles: u64) {
        let Ok(mut w) = self.window.try_lock() else {
            return;
        };
        let done = self.done.load(Relaxed);
        let finished = done - w.done_at_open;
        let elapsed = w.opened.elapsed();
        if elapsed < WINDOW || finished < WINDOW_MIN_DONE {
            return;
        }
        let held = self.held_us.load(Relaxed);
        let limit = self.limit.load(Relaxed);
        let ticks = crate::cpu::machine_ticks().filter(|_| self.machine_is_ours);
        let own = crate::cpu::own_time();
        let measured = Measured {
            machine_busy: w
                .ticks_at_open
                .zip(ticks)
                .and_then(|(a, b)| crate::cpu::busy_share(a, b)),
            own_busy: w.own_at_open.zip(own).map(|(a, b)| {
                b.saturating_sub(a).as_secs_f64() / (elapsed.as_secs_f64() * self.cores as f64)
            }),
            limit,
            rate: finished as f64 / elapsed.as_secs_f64(),
            mean_us: (held - w.held_at_open) as f64 / finished as f64,
            busy: self.window_peak.swap(0, Relaxed) * 10 >= limit * 9,
            throttled_share: (throttles - w.throttles_at_open) as f64 / finished as f64,
        };
        let next = w
            .next_limit(&measured)
            .clamp(MIN_AUTO.min(self.max), self.max);
        if next != limit {
            tracing::debug!(
                target: "trailproof::pace",
                "requests in flight: {limit} -> {next} ({:.0} done/s, {:.0} us each, {:.0} us at best, {}busy, {:.1}% throttled, CPUs {}, {})",
                measured.rate,
                measured.mean_us,
                w.base_us.unwrap_or_default(),
                if measured.busy { "" } else { "not " },
                100.0 * measured.throttled_share,
                measured
                    .machine_busy
                    .map_or("unknown".to_string(), |b| format!("{:.0}% busy", 100.0 * b)),
                measured
                    .own_busy
                    .map_or("own use unknown".to_string(), |b| format!(
                        "{:.0}% of {} used by this run",
                        100.0 * b,
                        self.cores
                    )),
            );
        }
        w.opened = Instant::now();
        w.done_at_open = done;
        w.held_at_open = held;
        w.throttles_at_open = throttles;
        w.ticks_at_open = ticks;
        w.own_at_open = own;
        drop(w);
        self.set_limit(limit, next);
    }

    fn set_limit(&self, from: usize, to: usize) {
        if to == from {
            return;
        }
        self.limit.store(to, Relaxed);
        if to > from {
            let mut more = to - from;
            // What is owed is cancelled first.
            while more > 0 {
                match self
                    .debt
                    .fetch_update(Relaxed, Relaxed, |d| d.checked_sub(1))
                {
                    Ok(_) => more -= 1,
                    Err(_) => break,
                }
            }
            self.permits.add_permits(more);
            self.peak.fetch_max(to, Relaxed);
        } else {
            let fewer = from - to;
            let forgotten = self.permits.forget_permits(fewer);
            self.debt.fetch_add(fewer - forgotten, Relaxed);
        }
    }
}

/// S3 serves about this many GET, HEAD and LIST requests a second per partitioned prefix; each
/// location (`AWSLogs/…/CloudTrail/region/`, and its `CloudTrail-Digest/` twin) is a prefix of
/// its own.
pub const PREFIX_GETS_PER_SECOND: f64 = 5_500.0;

/// Keeps each prefix's requests within its rate: a token bucket per prefix, a second's worth
/// deep, so that a run waits only when one prefix would be asked for more than its rate for
/// longer than a second.
pub struct PrefixRates {
    per_second: f64,
    prefixes: Mutex<HashMap<String, Tokens>>,
}

struct Tokens {
    /// Requests that may go now (below zero: owed by requests already told to wait).
    level: f64,
    at: Instant,
}

impl PrefixRates {
    pub fn new(per_second: f64) -> PrefixRates {
        PrefixRates {
            per_second: per_second.max(1.0),
            prefixes: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a request's place in its key's prefix, and says how long it must wait for it.
    pub fn take(&self, key: &str, now: Instant) -> Duration {
        let rate = self.per_second;
        let mut prefixes = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        let tokens = prefixes
            .entry(partition_prefix(key).to_string())
            .or_insert(Tokens {
                level: rate,
                at: now,
            });
        let since = now.saturating_duration_since(tokens.at).as_secs_f64();
        tokens.level = (tokens.level + since * rate).min(rate) - 1.0;
        tokens.at = tokens.at.max(now);
        if tokens.level >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-tokens.level / rate)
        }
    }
}

/// The prefix S3 partitions a key under, as far as trailproof can tell: up to and including the
/// region folder below `CloudTrail/`, `CloudTrail-Digest/` or `CloudTrail-Insight/`; the key's
/// first folder otherwise.
pub fn partition_prefix(key: &str) -> &str {
    let mut at = 0;
    let mut segments = key.split_inclusive('/');
    while let Some(segment) = segments.next() {
        at += segment.len();
        if matches!(
            segment,
            "CloudTrail/" | "CloudTrail-Digest/" | "CloudTrail-Insight/"
        ) {
            if let Some(region) = segments.next().filter(|r| r.ends_with('/')) {
                return &key[..at + region.len()];
            }
            return &key[..at];
        }
    }
    key.split_inclusive('/')
        .next()
        .filter(|s| s.ends_with('/'))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_pace_gives_exactly_its_permits() {
        let pace = Pace::new(3, false);
        assert_eq!(pace.permits.available_permits(), 3);
        pace.adapt(100);
        assert_eq!(pace.permits.available_permits(), 3);
    }

    #[test]
    fn going_down_forgets_free_permits_and_owes_the_rest() {
        let pace = Pace::new(64, true);
        let held = pace.permits.try_acquire_many(60).unwrap();
        pace.set_limit(64, 16);
        assert_eq!(pace.permits.available_permits(), 0);
        assert_eq!(pace.debt.load(Relaxed), 44);
        drop(held);
        assert_eq!(pace.permits.available_permits(), 60);
        // Permits given back through a request are dropped while something is owed.
        let pace = Pace::new(64, true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let permits: Vec<Permit> = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..64 {
                v.push(pace.acquire(0).await);
            }
            v
        });
        pace.set_limit(64, 16);
        drop(permits);
        assert_eq!(pace.permits.available_permits(), 16);
        assert_eq!(pace.debt.load(Relaxed), 0);
    }

    #[test]
    fn going_up_pays_the_debt_first() {
        let pace = Pace::new(64, true);
        let held = pace.permits.try_acquire_many(64).unwrap();
        pace.set_limit(64, 32);
        assert_eq!(pace.debt.load(Relaxed), 32);
        pace.set_limit(32, 48);
        assert_eq!(pace.debt.load(Relaxed), 16);
        assert_eq!(pace.permits.available_permits(), 0);
        held.forget();
        assert_eq!(pace.most_permits(), 64);
    }

    fn window() -> Window {
        Window {
            opened: Instant::now(),
            done_at_open: 0,
            held_at_open: 0,
            throttles_at_open: 0,
            base_us: None,
            slow_start: true,
            throttled_share: 0.0,
            probe: None,
            cap: None,
            ticks_at_open: None,
            own_at_open: None,
        }
    }

    fn busy(limit: usize, rate: f64) -> Measured {
        Measured {
            limit,
            rate,
            mean_us: 1_000.0,
            busy: true,
            throttled_share: 0.0,
            machine_busy: Some(0.5),
            own_busy: Some(0.5),
        }
    }

    #[test]
    fn growth_that_buys_throughput_goes_on() {
        let mut w = window();
        assert_eq!(w.next_limit(&busy(64, 1_000.0)), 128);
        // Twice the completions: the doubling paid, and doubling goes on.
        assert_eq!(w.next_limit(&busy(128, 2_000.0)), 256);
        assert_eq!(w.next_limit(&busy(256, 3_000.0)), 512);
    }

    #[test]
    fn growth_that_buys_nothing_is_taken_back_and_held() {
        let mut w = window();
        assert_eq!(w.next_limit(&busy(64, 1_000.0)), 128);
        // The same completions per second from twice the requests: back to 64.
        assert_eq!(w.next_limit(&busy(128, 1_020.0)), 64);
        // Held there while the cap lasts, however busy the permits...
        for _ in 0..CAP_WINDOWS - 1 {
            assert_eq!(w.next_limit(&busy(64, 1_000.0)), 64);
        }
        // ...then probed again, by a quarter now that the slow start is over.
        assert_eq!(w.next_limit(&busy(64, 1_000.0)), 80);
        assert_eq!(w.next_limit(&busy(80, 1_200.0)), 100);
    }

    #[test]
    fn growth_is_judged_on_a_busy_window_only() {
        let mut w = window();
        assert_eq!(w.next_limit(&busy(64, 1_000.0)), 128);
        // Too little work to fill the permits says nothing of the growth: the limit holds.
        let idle = Measured {
            busy: false,
            ..busy(128, 500.0)
        };
        assert_eq!(w.next_limit(&idle), 128);
        assert_eq!(w.next_limit(&busy(128, 900.0)), 64);
    }

    #[test]
    fn a_machine_whose_cpus_are_all_busy_holds_the_limit() {
        let mut w = window();
        let saturated = Measured {
            machine_busy: Some(0.99),
            ..busy(64, 1_000.0)
        };
        assert_eq!(w.next_limit(&saturated), 64);
        // The slow start is over: when the CPUs free up, growth is by a quarter.
        assert_eq!(w.next_limit(&busy(64, 1_000.0)), 80);
        // A run that keeps its own CPUs busy holds too, whatever the machine's readings say (a
        // container's are its host's).
        let own = Measured {
            machine_busy: None,
            own_busy: Some(0.95),
            ..busy(80, 1_250.0)
        };
        assert_eq!(w.next_limit(&own), 80);
    }

    #[test]
    fn each_location_is_a_prefix_of_its_own() {
        for (key, prefix) in [
            (
                "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/x.json.gz",
                "AWSLogs/111111111111/CloudTrail/us-east-1/",
            ),
            (
                "logs/AWSLogs/o-abc/111111111111/CloudTrail-Digest/eu-west-1/2024/01/01/",
                "logs/AWSLogs/o-abc/111111111111/CloudTrail-Digest/eu-west-1/",
            ),
            (
                "AWSLogs/111111111111/CloudTrail/",
                "AWSLogs/111111111111/CloudTrail/",
            ),
            ("AWSLogs/111111111111/", "AWSLogs/"),
            ("", ""),
        ] {
            assert_eq!(partition_prefix(key), prefix, "{key}");
        }
    }

    #[test]
    fn a_prefix_gets_its_rate_and_no_more() {
        let rates = PrefixRates::new(100.0);
        let t = Instant::now();
        let a = "AWSLogs/1/CloudTrail/us-east-1/2024/01/01/a";
        let b = "AWSLogs/1/CloudTrail/eu-west-1/2024/01/01/a";
        // A second's worth goes at once...
        for _ in 0..100 {
            assert_eq!(rates.take(a, t), Duration::ZERO);
        }
        // ...then each request waits its turn, later and later...
        assert_eq!(rates.take(a, t), Duration::from_millis(10));
        assert_eq!(rates.take(a, t), Duration::from_millis(20));
        // ...while another prefix has a rate of its own.
        assert_eq!(rates.take(b, t), Duration::ZERO);
        // Half a second later, 50 places have come back, 2 of them owed.
        let later = t + Duration::from_millis(500);
        for _ in 0..48 {
            assert_eq!(rates.take(a, later), Duration::ZERO);
        }
        assert!(rates.take(a, later) > Duration::ZERO);
    }

    #[test]
    fn throttling_halves_whatever_the_probe() {
        let mut w = window();
        assert_eq!(w.next_limit(&busy(64, 1_000.0)), 128);
        let throttled = Measured {
            throttled_share: 0.1,
            ..busy(128, 1_000.0)
        };
        assert_eq!(w.next_limit(&throttled), 64);
    }
}
