//! The CLI layer: one file per subcommand, as uv's `commands/` does. This is the only part
//! of kiln that knows the command line's types and the terminal: each command turns its
//! arguments into library requests, runs them, and prints through the [`Printer`].
//!
//! Exit codes (README "Exit codes"): 0 success; 1 kiln refused or failed on the user's
//! input; 2 an internal error, or a command line clap cannot parse.

mod build;
mod cache;
mod keygen;
mod plan;
mod printer;
mod publish;
mod pull;
mod push;
mod run;
mod summary;
mod verify;

use std::process::ExitCode;

use clap::Parser;
use kiln_cli::{CacheArgs, Cli, Command, OutputFormat, ProjectArgs, RegistryArgs};
use tracing_subscriber::EnvFilter;

use crate::cache::{CacheLocation, CacheOptions};
use crate::env::Env;
use crate::error::Error;
use crate::registry::RegistryOptions;
use crate::settings::{KilnHome, Selection, Settings};

pub use printer::Printer;

/// The `kiln` binary: parse, set up what the command needs, run it, print.
pub fn main() -> ExitCode {
    // Before anything else: the helper unshares namespaces, which needs one thread.
    if crate::isolation::is_helper(std::env::args_os().nth(1).as_deref()) {
        crate::isolation::helper_main(std::env::args_os().skip(2).collect());
    }
    let cli = Cli::parse();
    let env = Env::from_process();
    init_logging(cli.verbose, &env);
    let printer = Printer::new(cli.quiet, cli.verbose, &env);
    // `kiln run` is on every device's hot path: one thread, and none of the TLS set-up
    // the registry commands need.
    let runtime = if matches!(cli.command, Command::Run(_)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        // ring and aws-lc are both in the tree: name the one TLS provider for anything
        // that asks rustls for the default (reqwest and octocrab choose theirs).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(source) => {
            return ExitCode::from(printer.error(&Error::Io {
                what: "start the async runtime".into(),
                source,
            }));
        }
    };
    match runtime.block_on(run(cli, env, &printer)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => ExitCode::from(printer.error(&err)),
    }
}

fn init_logging(verbose: bool, env: &Env) {
    let filter = env
        .var(crate::env::KILN_LOG)
        .or_else(|| env.var("RUST_LOG"))
        .unwrap_or_else(|| if verbose { "kiln=debug" } else { "warn" }.into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && env.get(crate::env::NO_COLOR).is_none();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .compact()
        .init();
}

async fn run(cli: Cli, env: Env, printer: &Printer) -> Result<u8, Error> {
    let output = cli.output;
    match cli.command {
        Command::Build(args) => build::run(args, env, output, printer).await,
        Command::Publish(args) => publish::run(args, env, output, printer).await,
        Command::Plan(args) => plan::run(args, env, output, printer).await,
        Command::Run(args) => run::run(args, env, printer).await,
        Command::Push(args) => push::run(args, env, output, printer).await,
        Command::Pull(args) => pull::run(args, env, printer).await,
        Command::Summary(kiln_cli::SummaryCommand::Post(args)) => {
            summary::post(args, env, printer).await
        }
        Command::Verify(args) => verify::run(args, env, output, printer).await,
        Command::Keygen(args) => keygen::run(args, env, printer),
        Command::Cache(command) => cache::run(command, env, output, printer).await,
    }
}

/// What `kiln build`'s project flags select, and `kiln.toml` with the environment, resolved.
fn settings(args: &ProjectArgs, env: Env) -> Result<Settings, Error> {
    let selection = Selection {
        path: args.path.clone(),
        package: args.package.clone(),
        bin: args.bin.clone(),
        features: args.features.clone(),
        no_default_features: args.no_default_features,
        allow_toolchain_path: args.allow_toolchain_path,
        rust_toolchain: args.rust_toolchain,
        entry: args.entry.clone(),
        layout: args.layout.clone(),
        tag: args.tag.clone(),
    };
    Ok(Settings::resolve(&selection, env)?)
}

/// `--insecure-registry`, `--registry-timeout`, `--registry-retries`.
/// `primary` is the reference the command is about (the push destination, what it pulls
/// or verifies): `KILN_REGISTRY_USERNAME`/`PASSWORD` are for its host alone.
fn registry_options(args: &RegistryArgs, env: &Env, primary: Option<&str>) -> RegistryOptions {
    RegistryOptions {
        insecure: args.insecure_registries.clone(),
        timeout: std::time::Duration::from_secs(args.registry_timeout),
        retries: args.registry_retries,
        env: env.clone(),
        primary_host: primary
            .and_then(|text| text.parse::<oci_client::Reference>().ok())
            .map(|reference| reference.resolve_registry().to_string()),
        allow_insecure_auth: args.allow_insecure_auth,
        ..RegistryOptions::default()
    }
}

/// `--cache`, `--no-cache` and the key's naming (`--cache-prefix`, `--cache-scope`).
fn cache_options(args: &CacheArgs, home: &KilnHome, env: &Env) -> Result<CacheOptions, Error> {
    let location = if args.no_cache {
        None
    } else {
        Some(match &args.cache {
            Some(text) => CacheLocation::parse(text)?,
            None => CacheLocation::default_dir(home),
        })
    };
    Ok(CacheOptions::named(location, &args.naming, env))
}

/// Prints `json` on stdout when `--output json` asked for data.
fn data(output: OutputFormat, printer: &Printer, json: &impl serde::Serialize) {
    if output == OutputFormat::Json {
        printer.data(json);
    }
}
