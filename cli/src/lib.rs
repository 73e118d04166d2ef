//! kiln's interface to people and programs: the command line and the JSON it prints.
//!
//! This crate owns what users and wrappers see, and nothing that does the work:
//! - the command line, as clap derive structs (doc comments are the help text) and the
//!   small value types its flags parse into;
//! - [`env`]: the name of every environment variable kiln reads;
//! - [`output`]: every document `--output json` prints (the build summary, the plan, ...),
//!   as serde + JSON Schema types whose schemas are committed under `schema/`.
//!
//! It is its own crate so that `xtask` can generate the CI wrappers' inputs and the
//! committed schemas without compiling kiln itself (uv keeps `uv-cli` apart the same way).

pub mod env;
pub mod output;
mod values;

pub use values::{DirGrant, EnvVar, GrantParseError, Platform, ToolchainChoice};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The Fulcio of the public-good Sigstore instance.
pub const DEFAULT_FULCIO_URL: &str = "https://fulcio.sigstore.dev";
/// The Rekor of the public-good Sigstore instance.
pub const DEFAULT_REKOR_URL: &str = "https://rekor.sigstore.dev";

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
    /// Push, sign and attest the artifact `kiln build --no-publish` stored for this
    /// project's sources, running none of the project's code
    Publish(PublishArgs),
    /// Print what `kiln build` would do, without doing it
    Plan(ProjectArgs),
    /// Push an artifact from the local layout to a registry
    Push(PushArgs),
    /// Pull an artifact from a registry into the local layout
    Pull(PullArgs),
    /// Run a built artifact: a project directory, `oci:DIR[:REF]`, a layout tag, or a `.wasm` file
    Run(RunArgs),
    /// Post a build's summary to the CI it runs in (step summary, outputs, pull request
    /// comment, merge request note, result files)
    #[command(subcommand)]
    Summary(SummaryCommand),
    /// Check an artifact's signature and SBOM attestation, and a policy on its SBOM
    Verify(VerifyArgs),
    /// Write a cosign key pair (`cosign.key`, `cosign.pub`) to sign artifacts with
    Keygen(KeygenArgs),
    /// Print, restore or save a project's pip or cargo cache (for CI wrappers; `kiln build`
    /// restores and saves by itself)
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// Where `kiln build` keeps its pip and cargo caches.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Where caches are kept: a directory, or an OCI repository `REGISTRY/REPOSITORY`
    /// (tags are derived from the cache keys) [default: $KILN_HOME/cache]
    #[arg(long, value_name = "DIR|REF", env = crate::env::KILN_CACHE)]
    pub cache: Option<String>,

    /// Neither restore nor save caches
    #[arg(long, env = crate::env::KILN_NO_CACHE, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_cache: bool,

    #[command(flatten)]
    pub naming: CacheNamingArgs,
}

/// What a cache key says beside the project: the job's prefix and whose cache it is.
#[derive(Debug, Clone, Default, Args)]
pub struct CacheNamingArgs {
    /// The first part of every cache key after its scope: give jobs that build
    /// differently their own
    #[arg(long, value_name = "PREFIX", env = crate::env::KILN_CACHE_PREFIX, default_value = "kiln")]
    pub cache_prefix: String,

    /// The trust scope caches are saved under; restores read it and the scopes it
    /// trusts [default: from the CI: GitHub's ref or pull request, GitLab's protected or
    /// unprotected ref, Jenkins' branch or change]
    #[arg(long, value_name = "SCOPE", env = crate::env::KILN_CACHE_SCOPE)]
    pub cache_scope: Option<String>,

    /// A scope restores may also read after the build's own (repeatable; the base
    /// branch a pull request's build falls back to)
    #[arg(long, value_name = "SCOPE", env = crate::env::KILN_CACHE_READ_SCOPES, value_delimiter = ',')]
    pub cache_read_scope: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the project's cache keys (with `--output json`: keys, restore prefixes and
    /// the directories each cache holds), for wrappers that use the CI's own cache
    Key(CacheKeyArgs),
    /// Restore the project's caches, as `kiln build` does before building
    Restore(CacheRunArgs),
    /// Save the project's caches, as `kiln build` does after building (run it in an
    /// always-run post step)
    Save(CacheSaveArgs),
}

#[derive(Debug, Args)]
pub struct CacheKeyArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Only this cache's key
    #[arg(long, value_enum)]
    pub kind: Option<CacheKindArg>,

    #[command(flatten)]
    pub naming: CacheNamingArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheKindArg {
    Pip,
    Cargo,
}

#[derive(Debug, Args)]
pub struct CacheRunArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct CacheSaveArgs {
    #[command(flatten)]
    pub run: CacheRunArgs,

    /// The build failed (a CI post step): save only what is still worth it, a cargo
    /// cache whose downloads all finished, as `kiln build` itself does after a failure
    #[arg(long)]
    pub after_failure: bool,
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

    /// Rust: trust a `rust-toolchain.toml` that names a toolchain `path`, which makes
    /// rustup run programs from the project's own files [default: refuse it]
    #[arg(long)]
    pub allow_toolchain_path: bool,

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

    /// Fail when the steps that run project code (cargo, pip, componentize-py) cannot run
    /// in their own user, PID and mount namespaces [default: build, warn, and record
    /// `"isolation": "none"` in the summary]
    #[arg(long, env = crate::env::KILN_REQUIRE_ISOLATION, value_parser = clap::builder::FalseyValueParser::new())]
    pub require_isolation: bool,

    /// Store the artifact and its SBOM, and stop: no push, no signature, no secrets
    /// read. `kiln publish` (in a job that runs no project code) pushes, signs and
    /// attests it
    #[arg(long, conflicts_with_all = ["push", "key", "keyless"])]
    pub no_publish: bool,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub signing: SigningArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where a build's summary goes besides the terminal.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Also write the summary JSON (as `--output json` prints it) to this file
    #[arg(long, value_name = "PATH", env = crate::env::KILN_SUMMARY_FILE)]
    pub summary_file: Option<PathBuf>,

    /// Do not comment on the pull request or merge request (the CI's outputs, step
    /// summary and result files are still written: later steps read them)
    #[arg(long)]
    pub no_post: bool,

    #[command(flatten)]
    pub post: PostArgs,
}

/// How an artifact is signed.
#[derive(Debug, Clone, Args)]
pub struct SigningArgs {
    /// The cosign private key to sign with [default: $KILN_SIGNING_KEY (a path or the
    /// PEM), else keyless when the CI offers an OIDC token, else kiln's local development
    /// key]; its password is read from $KILN_SIGNING_PASSWORD (or $COSIGN_PASSWORD)
    // A value starting with `-` is taken (and refused by kiln unechoed when it is a PEM):
    // clap's own error would print the whole key.
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub key: Option<PathBuf>,

    /// Sign keylessly (Fulcio and Rekor) or fail: needs an OIDC token ($SIGSTORE_ID_TOKEN,
    /// or GitHub Actions with `id-token: write`) [default: keyless when a token is offered
    /// and no key is given]
    #[arg(long, conflicts_with_all = ["key", "no_keyless"])]
    pub keyless: bool,

    /// Never sign keylessly, even when the CI offers an OIDC token
    #[arg(long)]
    pub no_keyless: bool,

    /// The Fulcio that issues keyless signing certificates
    #[arg(long, value_name = "URL", env = crate::env::KILN_FULCIO_URL, default_value = DEFAULT_FULCIO_URL)]
    pub fulcio_url: String,

    /// The Rekor transparency log keyless signatures are logged in
    #[arg(long, value_name = "URL", env = crate::env::KILN_REKOR_URL, default_value = DEFAULT_REKOR_URL)]
    pub rekor_url: String,
}

/// `kiln publish`: push, sign and attest what `kiln build --no-publish` stored.
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Push the artifact to a registry: `REGISTRY/REPOSITORY[:TAG]` (the tag defaults to
    /// the artifact's)
    #[arg(long, value_name = "REF", env = crate::env::KILN_PUSH)]
    pub push: Option<String>,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub signing: SigningArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where a summary is posted.
#[derive(Debug, Clone, Args)]
pub struct PostArgs {
    /// The CI to post the summary to [default: detected from the environment]
    #[arg(long, value_enum, value_name = "PLATFORM", env = crate::env::KILN_PLATFORM)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Subcommand)]
pub enum SummaryCommand {
    /// Post a summary where the CI shows it: GitHub's step summary, outputs and pull
    /// request comment; GitLab's dotenv report and merge request note; Tekton's results;
    /// Jenkins' summary files
    Post(SummaryPostArgs),
}

#[derive(Debug, Args)]
pub struct SummaryPostArgs {
    /// The summary JSON, as `kiln build --summary-file` or `--output json` wrote it (`-`:
    /// stdin) [default: stdin]
    #[arg(long, value_name = "FILE", env = crate::env::KILN_SUMMARY_FILE)]
    pub summary: Option<PathBuf>,

    #[command(flatten)]
    pub post: PostArgs,
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

    /// Send credentials to an `--insecure-registry` host over plain HTTP, where anyone on
    /// the network can read them [default: refuse]
    #[arg(long, env = crate::env::KILN_ALLOW_INSECURE_AUTH, value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_insecure_auth: bool,
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

    /// Grant a host directory to the guest: `HOST::GUEST` or `HOST` (same path), read-only
    /// unless it ends with `:rw` (`HOST::GUEST:rw`); repeatable
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]")]
    pub dirs: Vec<DirGrant>,

    /// Stop the guest after this long (`30s`, `5m`); it exits with 124
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// The bytes each of the guest's memories may grow to; past it the guest exits with 137
    /// [default: 2 GiB]
    #[arg(long, value_name = "BYTES")]
    pub max_memory: Option<usize>,

    /// Stop the guest after about this many Wasm instructions (wasmtime fuel); it exits
    /// with 124
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

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

    /// Refuse to run unless the artifact's signature, SBOM attestation and policy verify
    /// (as `kiln verify` checks them)
    #[arg(long)]
    pub verify: bool,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// What to verify: `REGISTRY/REPOSITORY[:TAG|@DIGEST]`, a project directory,
    /// `oci:DIR[:REF]`, or `NAME:TAG` in the layout
    pub target: String,

    /// The OCI image layout to look `NAME:TAG` up in [default: ./.kiln/oci]
    #[arg(long, env = crate::env::KILN_LAYOUT)]
    pub layout: Option<PathBuf>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What a verified artifact must satisfy.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The cosign public key to verify with [default: $KILN_VERIFY_KEY (a path or the
    /// PEM), else kiln's local development key]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// Verify a keyless signature: the identity its Fulcio certificate must name (a URI,
    /// such as a GitHub workflow `https://github.com/OWNER/REPO/.github/workflows/F.yml@REF`,
    /// or an email)
    #[arg(
        long,
        value_name = "IDENTITY",
        conflicts_with = "key",
        requires_all = ["certificate_oidc_issuer", "certificate_chain"]
    )]
    pub certificate_identity: Option<String>,

    /// Verify a keyless signature: the OIDC issuer its certificate must name
    /// (`https://token.actions.githubusercontent.com`, `https://gitlab.com`)
    #[arg(long, value_name = "ISSUER", requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,

    /// Verify a keyless signature: the Fulcio root certificate (PEM; intermediates may
    /// follow it). The public Sigstore root comes through TUF, which kiln does not fetch
    #[arg(
        long,
        visible_alias = "fulcio-root",
        value_name = "PEM",
        requires = "certificate_identity"
    )]
    pub certificate_chain: Option<PathBuf>,

    /// Verify a keyless signature: Rekor's public key (PEM), to check the signed entry
    /// timestamps. Required for keyless verification unless `--insecure-ignore-tlog`
    #[arg(long, value_name = "PEM", requires = "certificate_identity")]
    pub rekor_public_key: Option<PathBuf>,

    /// Verify a keyless signature without authenticating its transparency log entries
    /// (no `--rekor-public-key`): the signing time is then the signer's word, as cosign's
    /// flag of the same name allows
    #[arg(
        long,
        requires = "certificate_identity",
        conflicts_with = "rekor_public_key"
    )]
    pub insecure_ignore_tlog: bool,

    /// Refuse an artifact whose SBOM lists a component under this license (an SPDX id
    /// such as `GPL-3.0-only`, also matched inside expressions); repeatable
    #[arg(long = "deny-license", value_name = "SPDX-ID", value_delimiter = ',')]
    pub deny_licenses: Vec<String>,

    /// Refuse an artifact without a verified CycloneDX SBOM attestation
    #[arg(long)]
    pub require_sbom: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The directory to write `cosign.key` and `cosign.pub` to
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
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
