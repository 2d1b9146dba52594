//! The CPU time of the calling thread, for the sources' log lines. A source's own time
//! by the clock includes waiting for a core while the scan's other sources run on
//! theirs; its CPU time is the work it adds to the scan.
//!
//! Linux only: Windows counts a thread's time in clock ticks (15.6 ms), and Wine in
//! those of `/proc` (10 ms), too coarse for a source that takes a millisecond.

use std::time::Duration;

/// The calling thread's CPU time (user and system) since it started; `None` where it
/// is not known to the microsecond.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid `timespec` for the call to write into.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanoseconds = u32::try_from(now.tv_nsec).ok()?;
    (status == 0).then(|| Duration::new(seconds, nanoseconds))
}

/// The calling thread's CPU time (user and system) since it started; `None` where it
/// is not known to the microsecond.
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_time() -> Option<Duration> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_s_cpu_time_grows_with_its_work_and_not_with_its_sleep() {
        let work = |rounds: u64| {
            let mut sum = 0u64;
            for round in 0..rounds {
                sum = std::hint::black_box(sum.wrapping_mul(31).wrapping_add(round));
            }
            sum
        };
        let started = thread_cpu_time().expect("Linux knows a thread's CPU time");
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().expect("known") - started;
        work(50_000_000);
        let worked = thread_cpu_time().expect("known") - started - slept;
        assert!(
            slept < Duration::from_millis(20),
            "asleep, it counted {slept:?}"
        );
        assert!(
            worked > Duration::from_millis(5),
            "working, it counted {worked:?}"
        );
        // Another thread's work is not this one's.
        let before = thread_cpu_time().expect("known");
        std::thread::spawn(move || work(50_000_000))
            .join()
            .expect("joins");
        let meanwhile = thread_cpu_time().expect("known") - before;
        assert!(meanwhile < Duration::from_millis(5), "{meanwhile:?}");
    }
}
