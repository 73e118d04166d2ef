//! The command line, as clap derive structs. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::runner::{DirGrant, EnvVar};
use crate::stages::build::rust::ToolchainChoice;

/// Turn a Rust or Python project into a Wasm OCI artifact, and run it.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Show subprocess output live and debug logs
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Only errors and warnings on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// What stdout carries: nothing (`human`, the default; the summary goes to stderr) or
    /// the machine-readable result (`json`)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect, build, package and store a project as a Wasm OCI artifact (and push it)
    Build(BuildArgs),
    /// Print what `kiln build` would do, without doing it
    Plan(ProjectArgs),
    /// Push an artifact from the local layout to a registry
    Push(PushArgs),
    /// Pull an artifact from a registry into the local layout
    Pull(PullArgs),
    /// Run a built artifact: a project directory, `oci:DIR[:REF]`, a layout tag, or a `.wasm` file
    Run(RunArgs),
}

/// Which project, and which part of it, to build.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// The project directory
    #[arg(default_value = ".")]
    pub path: PathBuf,

    /// Rust: the workspace package that owns the binary
    #[arg(short, long)]
    pub package: Option<String>,

    /// Rust: the binary target to build, when the package has several
    #[arg(long)]
    pub bin: Option<String>,

    /// Rust: features to enable, comma-separated (adds to `[rust] features`)
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,

    /// Rust: build without the package's default features
    #[arg(long)]
    pub no_default_features: bool,

    /// Rust: which toolchain builds for wasm32-wasip1
    #[arg(long, value_enum, env = crate::env::KILN_RUST_TOOLCHAIN)]
    pub rust_toolchain: Option<ToolchainChoice>,

    /// Python: the `[project.scripts]` name to run, or an entry (`pkg.mod:func`, `app.py`,
    /// a package with `__main__.py`)
    #[arg(long)]
    pub entry: Option<String>,

    /// The OCI image layout directory to store the artifact in [default: PATH/.kiln/oci]
    #[arg(long, env = crate::env::KILN_LAYOUT)]
    pub layout: Option<PathBuf>,

    /// The artifact's name and tag in the layout, `NAME[:TAG]` [default: project name and
    /// version]
    #[arg(short, long)]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print the plan and stop
    #[arg(long)]
    pub dry_run: bool,

    /// Also push the artifact to a registry: `REGISTRY/REPOSITORY[:TAG]` (the tag defaults
    /// to the artifact's)
    #[arg(long, value_name = "REF", env = crate::env::KILN_PUSH)]
    pub push: Option<String>,

    /// Build even when an artifact with the same inputs is already stored or pushed
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to this registry host (`HOST[:PORT]`); repeatable
    #[arg(long = "insecure-registry", value_name = "HOST", env = crate::env::KILN_INSECURE_REGISTRY, value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// Seconds before a registry request times out
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub registry_timeout: u64,

    /// How many times a failed registry request (429, 5xx, timeout) is retried
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub registry_retries: u32,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The artifact in the layout: `NAME:TAG`, or a project directory (its own artifact)
    pub source: String,

    /// Where to push it: `REGISTRY/REPOSITORY[:TAG]`
    pub destination: String,

    /// The OCI image layout to push from [default: ./.kiln/oci, or the project's]
    #[arg(long, env = crate::env::KILN_LAYOUT)]
    pub layout: Option<PathBuf>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// What to pull: `REGISTRY/REPOSITORY:TAG`
    pub reference: String,

    /// The OCI image layout to pull into [default: ./.kiln/oci]
    #[arg(long, env = crate::env::KILN_LAYOUT)]
    pub layout: Option<PathBuf>,

    /// The name to tag it with in the layout [default: REPOSITORY:TAG]
    #[arg(short, long)]
    pub tag: Option<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to run: a project directory (its stored artifact), `oci:DIR[:REF]`, `NAME:TAG`
    /// in the layout, or a `.wasm` file
    pub target: String,

    /// Arguments for the guest (after `--`)
    #[arg(last = true)]
    pub args: Vec<String>,

    /// Grant a host directory to the guest: `HOST::GUEST` or `HOST` (same path); repeatable
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    pub dirs: Vec<DirGrant>,

    /// Give the guest an environment variable: `KEY=VALUE`, or `KEY` to pass the host's
    /// value; repeatable
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<EnvVar>,

    /// Let the guest open sockets and resolve names
    #[arg(long)]
    pub net: bool,

    /// The OCI image layout to look `NAME:TAG` up in [default: ./.kiln/oci]
    #[arg(long, env = crate::env::KILN_LAYOUT)]
    pub layout: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
