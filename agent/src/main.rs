//! The `sverka-agent` binary: everything lives in the library.

/// The Linux packages ship a static musl build. musl's own allocator is slow for the
/// scan's many small allocations (the default scan took 60% longer with it,
/// docs/performance.md); mimalloc, which the collector uses too, brings it back to the
/// glibc build's speed. In that build it also stands in for the C library's `malloc`
/// (libmimalloc-sys's `override`, agent/Cargo.toml), which musl's own directory
/// functions call. Other builds keep the system's allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc keeps freed pages for a second before it returns them; a scan's threads
/// each free and allocate in bursts, so the peak grew by a third over the glibc build's
/// (18 MB against 13 MB for the scan with the inventory). Returned at once, the peak is
/// the glibc build's and the time unchanged (docs/performance.md).
#[cfg(target_env = "musl")]
#[allow(unsafe_code)]
fn return_freed_memory_at_once() {
    /// `mi_option_purge_delay` in mimalloc.h's `mi_option_e`, which keeps its numbering
    /// (retired options stay as `deprecated_*`): the one before
    /// `mi_option_use_numa_nodes` (16), which `libmimalloc-sys` names.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;
    // SAFETY: sets one integer option; mimalloc reads it each time it purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

fn main() {
    #[cfg(target_env = "musl")]
    return_freed_memory_at_once();
    std::process::exit(sverka_agent::cli::main());
}
