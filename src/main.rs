//! The `rolegate` binary: see `rolegate --help`.

/// mimalloc instead of the system allocator: a proxied request allocates and frees dozens of
/// small buffers, and mimalloc measured 7-11% more requests per second (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rolegate::cli::main()
}
