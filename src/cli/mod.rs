//! The `rolegate` command line: a thin layer over the library.

mod check;
mod explain;
mod policy_test;
pub mod routes;
mod serve;
mod token;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for "the configuration or the command line is wrong".
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "rolegate",
    version,
    about = "Authorization gateway: JWT verification and compiled role tables in front of an API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway: verify tokens, decide, forward or answer 401/403 (exit 2 on a bad config).
    Serve(serve::ServeArgs),
    /// Run the gateway on an embedded preset in front of a mock API, with ready-made tokens.
    Demo {
        /// Gateway port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Admin (metrics) port.
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
        /// Mock upstream port.
        #[arg(long, default_value_t = 8081)]
        upstream_port: u16,
    },
    /// Front an API described by OpenAPI: import its operations, or check a configuration covers them.
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// Run only the demo's mock cloud API (for docker-compose and scripts).
    Mock {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
    },
    /// Print a development token (issuer rolegate-dev, HS256 with $ROLEGATE_DEV_SECRET).
    Token(token::TokenArgs),
    /// Compile a configuration and report counts and warnings (exit 0 valid, 2 invalid).
    Validate {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Decide one request, or a batch of requests from stdin (exit 0 allow, 1 deny, 2 error).
    Check(check::CheckArgs),
    /// Run table-driven policy tests (exit 0 all pass, 1 any failure, 2 error).
    Test {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Test cases (YAML).
        cases: PathBuf,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Demo {
            port,
            admin_port,
            upstream_port,
        } => {
            init_logging(false);
            let ports = crate::demo::DemoPorts {
                proxy: port,
                admin: admin_port,
                upstream: upstream_port,
            };
            match crate::demo::run(ports) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::Token(args) => token::run(args),
        Command::Routes(cmd) => routes::run(cmd),
        Command::Mock { listen } => {
            init_logging(false);
            let mut server = pingora::server::Server::new_with_opt_and_conf(
                None,
                pingora::server::configuration::ServerConf {
                    grace_period_seconds: Some(0),
                    graceful_shutdown_timeout_seconds: Some(1),
                    ..Default::default()
                },
            );
            server.bootstrap();
            server.add_service(crate::demo::mock::mock_service(&listen));
            server.run(pingora::server::RunArgs::default());
            ExitCode::SUCCESS
        }
        Command::Validate { config } => validate::run(&config),
        Command::Check(args) => check::run(args),
        Command::Test { config, cases } => policy_test::run(&config, &cases),
    }
}

/// Loads and compiles a configuration, printing the error on failure.
pub(crate) fn load_policy(
    path: &std::path::Path,
) -> Result<(crate::config::Config, crate::policy::CompiledPolicy), ExitCode> {
    let compiled = crate::config::load_file(path)
        .and_then(|c| crate::policy::CompiledPolicy::compile(&c).map(|p| (c, p)));
    compiled.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// Verifies a token against the configuration's issuers and returns its claims.
pub(crate) fn verify_token(
    config: &crate::config::Config,
    token: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    crate::auth::verify_offline(config, token).map_err(|e| e.to_string())
}

/// Sends tracing output (decision log included) to stderr; JSON lines when `json`.
pub(crate) fn init_logging(json: bool) {
    use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLEGATE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,pingora=warn,pingora_core=warn,pingora_proxy=warn")
    });
    // pingora prints whole request headers (bearer tokens included) at debug and trace: never
    // emitted, whatever ROLEGATE_LOG asks for. A static target filter, so callsites stay
    // cached as disabled and the request path pays nothing for it.
    let no_pingora_headers = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("pingora", LevelFilter::INFO);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = if json {
        layer.json().boxed()
    } else {
        layer.compact().boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter.and(no_pingora_headers)))
        .try_init();
}
