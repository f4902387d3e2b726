//! The CPU: the one hand-off from async code to the CPU pool (inflate, SHA-256 and RSA run on
//! rayon, and the async side awaits the answer without blocking a tokio worker; callers bound how
//! many are in flight, one per request in flight), and the readings of how busy the CPUs are that
//! the pace of requests judges growth by.

/// Runs `f` on the rayon pool and awaits its result.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // The receiver only goes away if the run itself was dropped.
        let _ = tx.send(f());
    });
    rx.await.expect("a rayon task ended without answering")
}

/// The machine's CPU time so far, in clock ticks: (busy, all), summed over every CPU, from
/// `/proc/stat`; `None` where there is none (not Linux, or hidden).
pub fn machine_ticks() -> Option<(u64, u64)> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open("/proc/stat")
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?.lines().next()?;
    let mut fields = line.strip_prefix("cpu ")?.split_whitespace();
    // user nice system idle iowait irq softirq steal (guest time is counted in user).
    let ticks: Vec<u64> = fields
        .by_ref()
        .take(8)
        .map_while(|f| f.parse().ok())
        .collect();
    if ticks.len() < 5 {
        return None;
    }
    let all: u64 = ticks.iter().sum();
    Some((all.saturating_sub(ticks[3] + ticks[4]), all))
}

/// Whether [`machine_ticks`] describes the CPUs this process may use: not so in a container
/// given a share of a larger host (its `/proc/stat` is the host's, busy with others' work).
pub fn machine_is_ours() -> bool {
    use std::io::Read;
    let mut stat = String::new();
    let read = std::fs::File::open("/proc/stat")
        .and_then(|f| f.take(1 << 20).read_to_string(&mut stat))
        .is_ok();
    let online = stat
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    read && online > 0 && cores() >= online
}

/// The CPUs this process may use (affinity and container quotas included).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU time this process has used so far, user and system.
pub fn own_time() -> Option<std::time::Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Some(std::time::Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        ))
    }
    #[cfg(not(unix))]
    None
}

/// The share of the machine's CPU time that was busy between two readings of
/// [`machine_ticks`], when any time passed.
pub fn busy_share(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let all = after.1.checked_sub(before.1)?;
    let busy = after.0.checked_sub(before.0)?;
    (all > 0).then(|| busy as f64 / all as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_is_the_busy_ticks_over_all() {
        assert_eq!(busy_share((10, 100), (100, 200)), Some(0.9));
        assert_eq!(busy_share((10, 100), (10, 100)), None);
        // A counter that went back (a hidden or reset /proc) says nothing.
        assert_eq!(busy_share((10, 100), (5, 200)), None);
        #[cfg(target_os = "linux")]
        {
            let (busy, all) = machine_ticks().expect("Linux has /proc/stat");
            assert!(busy <= all && all > 0);
        }
        #[cfg(unix)]
        {
            let before = own_time().expect("getrusage answers");
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            assert!(own_time().expect("getrusage answers") > before, "{x}");
        }
    }
}
