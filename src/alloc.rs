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

/// While the returned guard lives, freed memory is kept [`BRIEF_PURGE_DELAY_MS`] before it goes
/// back (unless the operator chose a delay). For the phases that hold little memory but free and
/// allocate at a high rate: the read-back after a restore keeps a few blocks of lines whatever the
/// data size, yet returning each freed reply buffer at once cost it 0.06 s of 0.43 s at 200,000
/// keys (page faults, TLB shootdowns; `perf`), while the pages kept stay a few MiB.
pub fn keep_freed_memory_briefly() -> BriefPurgeDelay {
    let chosen_by_operator = std::env::var_os("MIMALLOC_PURGE_DELAY").is_some();
    if !chosen_by_operator {
        // Safety: as above.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, BRIEF_PURGE_DELAY_MS) }
    }
    BriefPurgeDelay { chosen_by_operator }
}

/// The purge delay of [`keep_freed_memory_briefly`], in milliseconds.
pub const BRIEF_PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Puts back the immediate purge when dropped.
pub struct BriefPurgeDelay {
    chosen_by_operator: bool,
}

impl Drop for BriefPurgeDelay {
    fn drop(&mut self) {
        if !self.chosen_by_operator {
            // Safety: as above.
            unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
        }
    }
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
