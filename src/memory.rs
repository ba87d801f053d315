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
