//! The allocator's settings: no transparent huge pages, freed memory kept 10 ms.
//!
//! mimalloc (the binaries' allocator, see Cargo.toml) by default asks Linux for transparent huge
//! pages on its arenas and keeps freed pages for a second before it purges them. Measured on
//! backups and restores of 200,000 Redis keys (2 cores, `make bench` data), peak RSS and wall:
//! - mimalloc's defaults: freed memory held at the peak, 128–177 MiB for a backup;
//! - huge pages, purge at once (ngbak until now): backup 88–96 MiB, 1.37–1.46 s; restore
//!   94–96 MiB, 1.73–1.80 s. Every freed buffer went back to the kernel and faulted in again,
//!   often as a whole 2 MiB page zeroed (`perf`: `clear_page_erms` under
//!   `do_huge_pmd_anonymous_page`), and memory grew in 2 MiB steps;
//! - **no huge pages, purge after 10 ms** (the choice): backup 71–77 MiB, 1.24–1.33 s; restore
//!   72–79 MiB, 1.69–1.75 s. Buffers freed and allocated again within milliseconds (compression
//!   blocks, reply buffers, upload parts) reuse their pages; purging at once saved ~5 MiB more
//!   and cost 6–8% in time; 100 ms was no faster with 75–82 MiB, 1,000 ms 87–108 MiB.
//!
//! An operator's own `MIMALLOC_ALLOW_THP` or `MIMALLOC_PURGE_DELAY` (milliseconds) is honoured:
//! mimalloc has read it already, and it is not overwritten here.

use libmimalloc_sys::mi_option_t;
use std::ffi::c_long;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys does not name it);
/// the test below holds it to its documented default.
const PURGE_DELAY: mi_option_t = 15;

/// The purge delay ngbak sets, in milliseconds.
pub const PURGE_DELAY_MS: c_long = 10;

/// Sets the allocator's options above, except those the operator set. Call it first thing in
/// `main`, before the first large allocation.
pub fn configure() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        disable_transparent_huge_pages();
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // Safety: sets a plain integer option; mimalloc reads options at any time.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// What mimalloc's `allow_thp=0` does at its start, done here because that start is over by
/// `main`: the process's later page faults take 4 KiB pages (the flag is checked at each fault,
/// so it covers the arenas reserved already). Where Linux refuses, nothing changes but speed.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // Safety: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
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

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_once_configured() {
        disable_transparent_huge_pages();
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }
}
