fn main() -> std::process::ExitCode {
    sverka_collector::cli::main()
}
