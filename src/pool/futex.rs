//! Sizing the kernel's futex hash table for many connection threads.
//!
//! sqlx runs every SQLite connection on its own OS thread, so a router with a thousand warm
//! tenants has a thousand or more parked threads. Since Linux 6.16 a process gets a private
//! futex hash table sized from `min(threads, CPUs)`: 16 buckets on a 2-CPU machine, so every
//! wake-up on the hot path (a query handed to a connection thread and its answer) walks a long
//! chain shared with all the parked threads. Measured with 1,000 pools open, `futex_wake` went
//! from 39 to 1.3 profile samples per 1,000 requests with a table of 4,096 slots. See
//! BENCHMARKS.md.

/// Asks for a private futex hash table of about `expected_threads` slots (a power of two,
/// 16 to 16,384). A kernel without the call (before 6.16) or another OS keeps its own: the
/// answer is only logged.
pub fn size_hash_table(expected_threads: u64) {
    let slots = expected_threads.clamp(16, 16_384).next_power_of_two();
    match set_slots(slots) {
        Ok(()) => tracing::debug!(slots, "futex hash table sized"),
        Err(reason) => tracing::debug!(slots, %reason, "futex hash table left as it is"),
    }
}

#[cfg(target_os = "linux")]
fn set_slots(slots: u64) -> Result<(), std::io::Error> {
    // From <linux/prctl.h> (Linux 6.16); not yet in the libc crate.
    const PR_FUTEX_HASH: libc::c_int = 78;
    const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
    // SAFETY: prctl with integer arguments only; it reads and writes no memory of ours.
    let done = unsafe {
        libc::prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_SET_SLOTS,
            slots as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_slots(_slots: u64) -> Result<(), std::io::Error> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
