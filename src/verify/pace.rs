//! How many requests are in flight: fixed (`--jobs N`), or adapted to the source as the run
//! goes (`--jobs auto`, the default). Adapting is latency-based, as TCP Vegas is: while the
//! permits are all in use and requests take no longer than the quickest ones seen (the round
//! trip), more in flight is more throughput, so the limit doubles at first and then grows by a
//! quarter; once requests queue (they take twice the round trip: the source or this machine's
//! CPU is the bound), it steps down by a quarter; when the source throttles (503 SlowDown, 429)
//! it halves, and while a steady share of answers is throttled it grows only by a quarter.
//! Additive increase, multiplicative decrease, between [`MIN_AUTO`] and the `--jobs` bound.

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
            }),
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
        if w.opened.elapsed() < WINDOW || finished < WINDOW_MIN_DONE {
            return;
        }
        let held = self.held_us.load(Relaxed);
        let mean_us = (held - w.held_at_open) as f64 / finished as f64;
        let base = w.base_us.map_or(mean_us, |b| b.min(mean_us));
        let limit = self.limit.load(Relaxed);
        let busy = self.window_peak.swap(0, Relaxed) * 10 >= limit * 9;
        // Throttling that grows (with what this run sends) is halved; a steady share of it (a
        // partition that throttles whatever is sent, retried within the SDK) only ends the
        // doubling of a slow start: halving again and again would not make it stop, only make the run
        // slower, and if more in flight makes it grow, the next window halves.
        let share = (throttles - w.throttles_at_open) as f64 / finished as f64;
        let growing = share > w.throttled_share * 1.5 + 0.01 || share > 0.25;
        let previous_share = std::mem::replace(&mut w.throttled_share, share);
        let next = if share > 0.0 && (growing || previous_share == 0.0) {
            w.slow_start = false;
            (limit / 2).max(MIN_AUTO)
        } else if share > 0.0 && busy && mean_us <= base * 2.0 {
            limit + (limit / 4).max(1)
        } else if share > 0.0 {
            limit
        } else if mean_us > base * 2.0 {
            // Requests queue: the source, or this machine, is the bound.
            w.slow_start = false;
            limit - limit / 4
        } else if busy && w.slow_start {
            limit * 2
        } else if busy {
            limit + (limit / 4).max(1)
        } else {
            limit
        };
        let next = next.clamp(MIN_AUTO.min(self.max), self.max);
        w.base_us = Some(base);
        w.opened = Instant::now();
        w.done_at_open = done;
        w.held_at_open = held;
        w.throttles_at_open = throttles;
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
}
