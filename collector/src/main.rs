/// mimalloc returns memory to the system more readily than glibc's allocator under
/// many connections and threads, which keeps the collector's peak memory down.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sverka_collector::cli::main()
}
