//! The CPU time the calling thread has run, by the kernel's account: what measuring the
//! codecs needs (a busy machine's waiting does not count, and neither does other threads'
//! work). `duet demo` times its calls' codecs with it and the codec_cost example the codecs
//! alone (bench/call-cpu puts the two side by side).

use std::time::Duration;

/// This thread's CPU time so far; zero where the platform gives none.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only `now`, a valid timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// Runs `work` and returns its result with the CPU time this thread spent in it.
pub fn cpu_time_of<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = thread_cpu_time();
    let out = work();
    (out, thread_cpu_time().saturating_sub(start))
}

#[cfg(test)]
mod tests {
    use super::{cpu_time_of, thread_cpu_time};
    use std::time::{Duration, Instant};

    #[test]
    fn counts_this_threads_work_and_not_its_sleep() {
        let start = thread_cpu_time();
        let spin_until = Instant::now() + Duration::from_millis(30);
        let mut x = 0u64;
        while Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after_spin = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(60));
        let slept = thread_cpu_time() - after_spin;
        // 30 ms of spinning is at least a few ms of CPU even on a loaded machine; 60 ms of
        // sleep is far less than 30 ms of it.
        assert!(after_spin - start >= Duration::from_millis(5), "{:?}", after_spin - start);
        assert!(slept < Duration::from_millis(30), "{slept:?}");
        let (slept_again, spent) = cpu_time_of(|| {
            std::thread::sleep(Duration::from_millis(60));
            "woke"
        });
        assert_eq!(slept_again, "woke");
        assert!(spent < Duration::from_millis(30), "{spent:?}");
    }
}
