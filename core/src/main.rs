//! The `kiln` binary: parse, resolve, plan, run, print. All logic lives in the library.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use kiln::cli::{
    BuildArgs, Cli, Command, KeygenArgs, OutputFormat, PolicyArgs, ProjectArgs, PullArgs, PushArgs,
    RegistryArgs, RunArgs, SummaryCommand, SummaryPostArgs, VerifyArgs,
};
use kiln::plan::Plan;
use kiln::printer::Printer;
use kiln::registry::{self, Registry, RegistryOptions};
use kiln::reporter::{Reporter, Stage};
use kiln::settings::Settings;
use kiln::{env, pipeline, platform, runner, target, verify};
use oci_client::RegistryOperation;

/// `kiln run`'s exit code when the guest traps, as `wasmtime run` does (128 + SIGABRT).
const TRAP_EXIT_CODE: u8 = 134;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    // ring and aws-lc are both in the tree: name the one TLS provider for anything that
    // asks rustls for the default (reqwest and octocrab choose theirs explicitly).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let printer = Printer::new(cli.quiet, cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return ExitCode::from(printer.error(&err.into())),
    };
    match runtime.block_on(run(cli, &printer)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => ExitCode::from(printer.error(&err)),
    }
}

fn init_logging(verbose: bool) {
    let filter = env::var(env::KILN_LOG)
        .or_else(|| env::var("RUST_LOG"))
        .unwrap_or_else(|| if verbose { "kiln=debug" } else { "warn" }.into());
    let ansi =
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && env::var(env::NO_COLOR).is_none();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .compact()
        .init();
}

async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<u8> {
    match cli.command {
        Command::Build(args) => build(args, cli.output, printer).await,
        Command::Plan(args) => {
            let (plan, _) = plan(&args, printer)?;
            show_plan(&plan, cli.output, printer);
            Ok(0)
        }
        Command::Run(args) => run_wasm(args, printer).await,
        Command::Push(args) => push(args, cli.output, printer).await,
        Command::Pull(args) => pull(args, printer).await,
        Command::Summary(SummaryCommand::Post(args)) => summary_post(args, printer).await,
        Command::Verify(args) => verify(args, cli.output, printer).await,
        Command::Keygen(args) => keygen(args, printer),
        Command::Cache(command) => {
            let registry = match &command {
                kiln::cli::CacheCommand::Restore(a)
                | kiln::cli::CacheCommand::Save(kiln::cli::CacheSaveArgs { run: a, .. }) => {
                    registry_options(&a.registry)
                }
                kiln::cli::CacheCommand::Key(_) => RegistryOptions::default(),
            };
            kiln::cache::command(command, registry, cli.output, printer).await
        }
    }
}

fn plan(args: &ProjectArgs, printer: &Printer) -> anyhow::Result<(Plan, std::time::Duration)> {
    let started = Instant::now();
    printer.stage_started(Stage::Detect);
    let settings = Settings::resolve(args)?;
    let plan = Plan::compute(&settings)?;
    let elapsed = started.elapsed();
    printer.stage_finished(Stage::Detect, elapsed);
    Ok((plan, elapsed))
}

fn show_plan(plan: &Plan, output: OutputFormat, printer: &Printer) {
    match output {
        OutputFormat::Json => printer.data(plan),
        OutputFormat::Human => printer.info(&plan.to_string()),
    }
}

async fn build(args: BuildArgs, output: OutputFormat, printer: &Printer) -> anyhow::Result<u8> {
    let (mut plan, detect_time) = plan(&args.project, printer)?;
    let push = match &args.push {
        Some(text) => {
            let reference = pipeline::push_reference(text, &plan)?;
            plan = plan.with_push(reference.whole());
            Some(reference)
        }
        None => None,
    };
    if args.cache.no_cache {
        plan = plan.without_cache();
    }
    if args.dry_run {
        show_plan(&plan, output, printer);
        return Ok(0);
    }
    let options = pipeline::BuildOptions {
        push,
        force: args.force,
        registry: registry_options(&args.registry),
        signing: kiln::sign::keyring::SigningOptions {
            key: args.key.clone(),
            keyless: if args.keyless {
                kiln::sign::keyring::KeylessMode::Always
            } else if args.no_keyless {
                kiln::sign::keyring::KeylessMode::Never
            } else {
                kiln::sign::keyring::KeylessMode::Auto
            },
            fulcio_url: Some(args.fulcio_url.clone()),
            rekor_url: Some(args.rekor_url.clone()),
        },
        cache: kiln::cache::options(&args.cache, registry_options(&args.registry))?,
    };
    let summary = pipeline::build(&plan, detect_time, &options, printer).await?;
    printer.info(&summary.to_string());
    if output == OutputFormat::Json {
        printer.data(&summary);
    }
    if let Some(path) = &args.summary_file {
        platform::write_summary(path, &summary)?;
    }
    if !args.no_post {
        let env = platform::Environment::from_process();
        platform::post(&summary, args.post.platform, &env, printer).await;
    }
    Ok(0)
}

/// `kiln summary post`: a written summary, posted to the CI (failures are warnings).
async fn summary_post(args: SummaryPostArgs, printer: &Printer) -> anyhow::Result<u8> {
    let summary = platform::read_summary(args.summary.as_deref())?;
    printer.info(&summary.to_string());
    let env = platform::Environment::from_process();
    platform::post(&summary, args.post.platform, &env, printer).await;
    Ok(0)
}

fn registry_options(args: &RegistryArgs) -> RegistryOptions {
    RegistryOptions {
        insecure: args.insecure_registries.clone(),
        timeout: std::time::Duration::from_secs(args.registry_timeout),
        retries: args.registry_retries,
        ..RegistryOptions::default()
    }
}

/// `kiln push SOURCE DESTINATION`: from the layout to a registry.
async fn push(args: PushArgs, output: OutputFormat, printer: &Printer) -> anyhow::Result<u8> {
    let source = target::locate(&args.source, args.layout.as_deref())?;
    let default_tag = source
        .name
        .rsplit_once(':')
        .map_or("latest", |(_, tag)| tag);
    let reference = registry::parse_reference(&args.destination, default_tag)?;
    printer.stage_started(Stage::Push);
    let started = Instant::now();
    let registry = Registry::connect(
        reference,
        RegistryOperation::Push,
        registry_options(&args.registry),
    )
    .await?;
    let outcome = registry
        .push(&source.layout, &source.manifest_digest, printer)
        .await?;
    // Its signature and attestation go with it.
    let attached =
        kiln::sign::attached::push(&source.layout, &registry, &source.manifest_digest, printer)
            .await?;
    printer.stage_finished(Stage::Push, started.elapsed());
    for tag in &attached {
        printer.info(&format!("pushed     {tag}"));
    }
    printer.info(&format!(
        "pushed     {} ({} sent, {} already there)",
        outcome.reference,
        kiln::summary::human_size(outcome.bytes_sent),
        kiln::summary::human_size(outcome.bytes_skipped)
    ));
    if output == OutputFormat::Json {
        printer.data(&serde_json::json!({
            "reference": outcome.reference,
            "digest": outcome.digest,
            "bytes_sent": outcome.bytes_sent,
            "bytes_skipped": outcome.bytes_skipped,
        }));
    }
    Ok(0)
}

/// `kiln pull REFERENCE`: from a registry into the layout.
async fn pull(args: PullArgs, printer: &Printer) -> anyhow::Result<u8> {
    let reference = registry::parse_reference(&args.reference, "latest")?;
    let name = match &args.tag {
        Some(tag) => tag.clone(),
        None => format!(
            "{}:{}",
            reference.repository(),
            reference.tag().unwrap_or("latest")
        ),
    };
    let dir = args
        .layout
        .unwrap_or_else(|| kiln::settings::default_layout(std::path::Path::new(".")));
    let layout = kiln::oci::layout::Layout::create(&dir)?;
    let started = Instant::now();
    let registry = Registry::connect(
        reference,
        RegistryOperation::Pull,
        registry_options(&args.registry),
    )
    .await?;
    let digest = registry.pull(&layout, &name, printer).await?;
    // Its signature and attestation come with it, so `kiln run --verify` can check them.
    let attached = kiln::sign::attached::pull(&layout, &registry, &digest, printer).await?;
    printer.info(&format!(
        "pulled     {} as oci:{}:{name} ({digest}) in {:.1}s",
        registry.reference().whole(),
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    for tag in &attached {
        printer.info(&format!("pulled     {tag}"));
    }
    Ok(0)
}

async fn run_wasm(args: RunArgs, printer: &Printer) -> anyhow::Result<u8> {
    let loaded = if args.verify {
        if args.target.ends_with(".wasm") {
            anyhow::bail!(
                "`{}` is a bare `.wasm` file: it carries no signature to verify; run a \
                 stored artifact (a project directory, `oci:DIR:REF` or `NAME:TAG`)",
                args.target
            );
        }
        let located = target::locate(&args.target, args.layout.as_deref())?;
        let (key, _) = verifier(&args.policy, printer)?;
        verify::verify_in_layout(
            &located.layout,
            &located.manifest_digest,
            &key,
            &policy(&args.policy),
        )?;
        target::read_wasm(&located)?
    } else {
        target::load(&args.target, args.layout.as_deref())?
    };
    let outcome = runner::run(runner::RunRequest {
        wasm: loaded.wasm,
        digest: loaded.digest,
        program_name: loaded.name,
        args: args.args,
        env: args.env,
        dirs: args.dirs,
        network: args.net,
        cache_dir: Some(kiln::settings::compile_cache_dir()),
    })
    .await;
    match outcome {
        // As a POSIX shell sees it: the low 8 bits.
        Ok(outcome) => Ok((outcome.exit_code & 0xff) as u8),
        Err(err @ runner::RunError::Trap { .. }) => {
            printer.error(&err.into());
            Ok(TRAP_EXIT_CODE)
        }
        Err(err) => Err(err.into()),
    }
}

/// The public key, or the keyless policy, that `--key` or `--certificate-*` describe; and
/// how to name who signed.
fn verifier(
    args: &PolicyArgs,
    printer: &Printer,
) -> anyhow::Result<(kiln::sign::Verifier, String)> {
    use anyhow::Context as _;
    let Some(identity) = &args.certificate_identity else {
        let (key, origin) = kiln::sign::keyring::verifier(args.key.as_deref())?;
        return Ok((kiln::sign::Verifier::Key(key), origin.to_string()));
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read `{}`", path.display()))
    };
    let issuer = args
        .certificate_oidc_issuer
        .as_deref()
        .context("`--certificate-identity` needs `--certificate-oidc-issuer`")?;
    let chain = read(
        args.certificate_chain
            .as_deref()
            .context("`--certificate-identity` needs `--certificate-chain`")?,
    )?;
    let rekor = args.rekor_public_key.as_deref().map(read).transpose()?;
    if rekor.is_none() {
        printer.warn(
            "no `--rekor-public-key`: the signatures' Rekor entries are checked against the \
             signatures but their signed entry timestamps are not verified",
        );
    }
    let policy = kiln::sign::keyless::Policy::new(identity, issuer, &chain, rekor.as_deref())?;
    Ok((
        kiln::sign::Verifier::Keyless(policy),
        format!("keyless: {identity} from {issuer}"),
    ))
}

fn policy(args: &PolicyArgs) -> verify::Policy {
    verify::Policy {
        deny_licenses: args.deny_licenses.clone(),
        require_sbom: args.require_sbom,
    }
}

/// `kiln verify TARGET`: signature, attestation and policy; exit 1 on any failure.
async fn verify(args: VerifyArgs, output: OutputFormat, printer: &Printer) -> anyhow::Result<u8> {
    let (key, origin) = verifier(&args.policy, printer)?;
    let verified = verify::verify(
        verify::Source::of(&args.target),
        args.layout.as_deref(),
        &key,
        &policy(&args.policy),
        registry_options(&args.registry),
    )
    .await?;
    printer.info(&format!(
        "verified   {} signed by {origin} ({})",
        verified.digest, verified.signature_tag
    ));
    match &verified.sbom {
        Some(sbom) => printer.info(&format!(
            "verified   CycloneDX SBOM attestation: {} components, licenses {} ({})",
            sbom.components,
            sbom.licenses.iter().cloned().collect::<Vec<_>>().join(", "),
            sbom.tag
        )),
        None => printer.warn("no CycloneDX SBOM attestation (pass `--require-sbom` to refuse)"),
    }
    if output == OutputFormat::Json {
        printer.data(&verified);
    }
    Ok(0)
}

/// `kiln keygen`: a cosign key pair, the password from `KILN_SIGNING_PASSWORD`.
fn keygen(args: KeygenArgs, printer: &Printer) -> anyhow::Result<u8> {
    let password = kiln::sign::keyring::password();
    if secrecy::ExposeSecret::expose_secret(&password).is_empty() {
        printer.warn(&format!(
            "the private key is encrypted with an empty password: set {} to choose one",
            env::KILN_SIGNING_PASSWORD
        ));
    }
    let (private, public) = kiln::sign::keyring::write_pair(&args.output_dir, &password)?;
    printer.info(&format!(
        "wrote      {} (private: keep it secret, e.g. as the CI secret {})",
        private.display(),
        env::KILN_SIGNING_KEY
    ));
    printer.info(&format!(
        "wrote      {} (public: `kiln verify --key {}` and `cosign verify --key` check with it)",
        public.display(),
        public.display()
    ));
    Ok(0)
}
