//! How much memory the allocator keeps. glibc gives a thread that finds
//! the allocator busy an arena of its own (up to eight per core), and each
//! arena keeps what was freed in it for that arena's next allocations. The
//! daemon's threads (tokio's workers, one per SQLite connection) all
//! allocate a little, so the arenas add up to megabytes of RSS that a
//! single arena would share; the threads' own caches (glibc's tcache)
//! serve most small allocations without the arena's lock anyway. On the
//! orders benchmark one arena held the peak RSS at 24.4 MiB instead of
//! 26.8–27.7 MiB, at the same throughput (docs/deployment.md).

/// Limits glibc to one malloc arena, unless the environment chose
/// (`MALLOC_ARENA_MAX`). Elsewhere (musl, Android's bionic, macOS) there
/// is nothing to limit. Call it first in `main`: a thread's first
/// allocation gives it an arena of its own while there are fewer than the
/// limit, so a later call leaves the arenas already made.
pub fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; any value is valid.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
