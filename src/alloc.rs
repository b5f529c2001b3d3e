//! The allocator's one setting: freed memory goes back to the system at once.
//!
//! mimalloc (the binaries' allocator, see Cargo.toml) keeps freed pages for a second by default
//! before it decommits them. A backup frees megabyte buffers on one thread as fast as another
//! allocates new ones (parts, compressed blocks, upload parts), so that grace period held
//! 25–70 MiB of freed memory at the peak (a backup of 200,000 Redis keys to S3: 128–177 MiB;
//! at once: 90–97 MiB). The price: freed buffers' pages fault in again (zeroed by the kernel),
//! 0.1–0.2 CPU-seconds per 200,000 keys. A 10 ms delay measured 3–5% faster with 4–20 MiB more
//! at the peak (a zstd restore 117 MiB): a bounded memory comes first, and an operator who
//! prefers the speed sets mimalloc's own `MIMALLOC_PURGE_DELAY=10`.

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys names its neighbours,
/// 14 and 16, but not this one); the test below holds it to its documented default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Purges freed memory without delay, unless the operator chose one with mimalloc's
/// own `MIMALLOC_PURGE_DELAY` (milliseconds), which mimalloc has read already. Call it first
/// thing in `main`.
pub fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
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
