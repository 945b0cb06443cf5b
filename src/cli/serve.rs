//! `rolegate serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::gateway::{serve, Overrides};

/// Arguments of `rolegate serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// Proxy listener, overriding `gateway.listen`.
    #[arg(long)]
    listen: Option<String>,
    /// Admin listener, overriding `gateway.admin`.
    #[arg(long)]
    admin: Option<String>,
    /// Send every route to this upstream (`http://host:port`).
    #[arg(long)]
    upstream: Option<String>,
    /// Log as human-readable text instead of JSON lines.
    #[arg(long)]
    text_log: bool,
}

/// Runs the gateway until SIGTERM/SIGINT.
pub fn run(args: ServeArgs) -> ExitCode {
    super::init_logging(!args.text_log);
    let overrides = Overrides {
        listen: args.listen,
        admin: args.admin,
        upstream: args.upstream,
    };
    match serve(&args.config, overrides) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_USAGE)
        }
    }
}
