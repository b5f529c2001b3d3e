//! The allocator's one setting: freed memory goes back to the system at once.
//!
//! mimalloc (the binaries' allocator, see Cargo.toml) keeps freed pages for a second by default
//! before it decommits them. A backup frees megabyte buffers on one thread as fast as another
//! allocates new ones (parts, compressed blocks, upload parts), so that grace period held
//! 25–70 MiB of freed memory at the peak (a backup of 200,000 Redis keys to S3: 128–177 MiB;
//! with a 10 ms delay 106–117 MiB; at once ~100 MiB). Decommitting at once costs about 0.1 s
//! of system time per 200,000 keys and no measurable wall time.

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys names its neighbours,
/// 14 and 16, but not this one); the test below holds it to its documented default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Purge freed memory without delay. Call it first thing in `main`.
pub fn return_freed_memory_at_once() {
    // Safety: sets a plain integer option; mimalloc reads options at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_the_purge_delay() {
        // The purge delay's default in the mimalloc libmimalloc-sys builds (its options.c: 1,000
        // ms), and its neighbour is the one libmimalloc-sys names.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 1000);
        assert_eq!(libmimalloc_sys::mi_option_use_numa_nodes, PURGE_DELAY + 1);
    }
}
