//! The `rolegate` binary: see `rolegate --help`.

fn main() -> std::process::ExitCode {
    rolegate::cli::main()
}
