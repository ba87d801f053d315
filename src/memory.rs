//! The allocator's settings for the long-running daemon (BENCHMARKS.md, "Sidecar cost").
//!
//! glibc gives threads that allocate at the same time arenas of their own, and memory freed
//! in one arena is never reused by another: the daemon builds its caches on the main thread
//! and fills them on its worker, so two arenas each kept the slack of a burst (about 3.5 MB of
//! peak RSS at full caps). `run` asks for one arena; its threads rarely allocate at the same
//! moment (one worker thread), and small allocations are served from per-thread caches without
//! the arena's lock. `MALLOC_ARENA_MAX` or a `glibc.malloc.arena_max` tunable in the
//! environment still decide.

/// Asks glibc for one malloc arena, unless the environment already chose a number.
pub fn one_arena() {
    let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if chosen {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator parameter; it is called before the runtime's
    // threads start, and an unknown or refused parameter is reported by its return value.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// How often the daemon hands freed memory back to the system ([`trim`]).
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Hands the allocator's free pages back to the system (glibc's `malloc_trim`): what a burst
/// (the DNS answers of a busy minute, a scrape of 10,000 series) freed stays mapped otherwise,
/// and a peak RSS is what a memory limit sees. A few milliseconds at full caps; the pipeline
/// task calls it every [`TRIM_EVERY`].
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it takes the arenas'
    // locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}
