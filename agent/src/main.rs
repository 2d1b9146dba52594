//! The `sverka-agent` binary: everything lives in the library.

fn main() {
    std::process::exit(sverka_agent::cli::main());
}
