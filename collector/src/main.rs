/// mimalloc returns memory to the system more readily than glibc's allocator under
/// many connections and threads, which keeps the collector's peak memory down. In the
/// static musl build it also stands in for the C library's `malloc`, and so serves
/// SQLite (collector/Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sverka_collector::cli::main()
}
