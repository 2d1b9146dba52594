//! The `sverka-agent` binary: everything lives in the library.

/// The Linux packages ship a static musl build. musl's own allocator is slow for the
/// scan's many small allocations (the default scan took 60% longer with it,
/// docs/performance.md); mimalloc, which the collector uses too, brings it back to the
/// glibc build's speed. Other builds keep the system's allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(sverka_agent::cli::main());
}
