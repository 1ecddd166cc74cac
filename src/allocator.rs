//! The allocator of the `callstore` command (and of the benchmarks, which include this file):
//! mimalloc, keeping the memory it gets from the system until the process ends.
//!
//! A bulk import frees each segment's calls (hundreds of MB in small strings) and allocates as
//! much again for the next one, about a second later. glibc's allocator and mimalloc's defaults
//! both hand that memory back and fault it in afresh, zeroing every page: 750k page faults for
//! 1M calls with glibc; with mimalloc's default purge delay (1 s), a quarter of the samples
//! zeroed transparent huge pages. Never purging, a 1M-call import takes about 1,100 page faults
//! and 5.4 to 6.8 s, against 7.2 to 8.1 s with glibc and 6.4 to 8.7 s with mimalloc's defaults
//! (alternating runs; ARCHITECTURE.md has the table); its peak RSS is 1.62 to 1.70 GB against
//! glibc's 1.54 GB. The command's processes are short, so memory kept is not memory lost.

/// The process's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in mimalloc's `mi_option_e` (mimalloc.h, the same in
/// mimalloc 2 and 3; `libmimalloc-sys` does not name it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory is kept before it is purged, in milliseconds: -1 is never (mimalloc 3's
/// default: 1000).
const PURGE_DELAY_MS: std::ffi::c_long = -1;

/// Sets the allocator's options; call first thing in `main`.
pub fn tune() {
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table, for any option number
    // and value; it allocates nothing.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

#[cfg(test)]
mod tests {
    /// Option 15 is the purge delay: it holds mimalloc 3's default (1000 ms), and setting it
    /// reads back.
    #[test]
    fn the_purge_delay_is_option_15() {
        // SAFETY: as in `tune`; `mi_option_get` only reads the option table.
        let before = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000, "mimalloc's default purge delay");
        }
        super::tune();
        let after = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(after, super::PURGE_DELAY_MS);
    }
}
