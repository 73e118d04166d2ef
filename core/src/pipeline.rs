//! Runs a computed [`Plan`]: build → package → store → push → sign → attest, and returns the
//! [`Summary`].
//!
//! 1. Computes the inputs digest. Unless `--force`, looks for an artifact with the same
//!    inputs: under the push destination's tag (then nothing is built or sent), then
//!    anywhere in the local layout (then nothing is built; it is re-tagged and pushed).
//! 2. Otherwise builds, packages (recording the inputs digest) and stores.
//! 3. Pushes from the layout when asked: blobs first, the tag last.
//! 4. Signs the artifact and attests its CycloneDX SBOM, cosign's way, in the layout and
//!    the registry (kept as they are when this key already signed them).
//!
//! Detection already ran while the plan was computed; its time is reported here so the
//! summary shows every stage.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use oci_client::manifest::OciImageManifest;
use oci_client::{Reference, RegistryOperation};

use crate::oci::layout::Layout;
use crate::oci::{annotations, digest};
use crate::plan::{Plan, ToolchainPlan};
use crate::project::{ProjectKind, PythonSource};
use crate::registry::{self, Registry, RegistryOptions};
use crate::reporter::{Reporter, Stage};
use crate::sbom::SbomInput;
use crate::sign::keyring::{Choice, SigningOptions};
use crate::sign::{KeyOrigin, Signing};
use crate::stages::attest::{self, SbomSource};
use crate::stages::build::{self, Built};
use crate::stages::package::WasmConfig;
use crate::stages::{package, sign, store};
use crate::summary::{
    ArtifactSummary, AttestationSummary, BuildSummary, Fact, ProjectSummary, PushSummary,
    SCHEMA_VERSION, SignatureSummary, StageTiming, Summary,
};

/// What `kiln build` does beyond building.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Push to this reference after storing.
    pub push: Option<Reference>,
    /// Build even when an artifact with the same inputs exists.
    pub force: bool,
    pub registry: RegistryOptions,
    /// How to sign: `--key`, keyless, Fulcio and Rekor; see
    /// [`crate::sign::keyring::choose`].
    pub signing: SigningOptions,
    /// The persisted pip and cargo caches (disabled by default).
    pub cache: crate::cache::CacheOptions,
}

/// Timings of the stages, in the order they ran.
struct Timings<'a> {
    reporter: &'a dyn Reporter,
    stages: Vec<StageTiming>,
}

impl Timings<'_> {
    fn start(&self, stage: Stage) -> Instant {
        self.reporter.stage_started(stage);
        Instant::now()
    }

    fn finish(&mut self, stage: Stage, started: Instant) {
        let elapsed = started.elapsed();
        self.reporter.stage_finished(stage, elapsed);
        self.stages.push(StageTiming {
            stage,
            seconds: elapsed.as_secs_f64(),
        });
    }
}

/// Runs every stage after detection, with the persisted caches around the build: they
/// are restored just before the build stage (not when the build is skipped) and saved
/// after everything else, also after a failed build whose cargo downloads finished (see
/// [`crate::cache::Session::save`]). A cache problem is a warning, never a failure.
pub async fn build(
    plan: &Plan,
    detect_time: Duration,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<Summary> {
    let cache = crate::cache::Session::new(&options.cache);
    let result = build_stages(plan, detect_time, options, &cache, reporter).await;
    // A push or signing failure after a good build still leaves caches worth saving.
    let build_failed = result.is_err() && !cache.was_built();
    let saved = cache.save(build_failed, reporter).await;
    let mut summary = result?;
    if let Some((cache, timing)) = saved {
        summary.cache = Some(cache);
        summary.stages.extend(timing);
    }
    Ok(summary)
}

async fn build_stages(
    plan: &Plan,
    detect_time: Duration,
    options: &BuildOptions,
    cache: &crate::cache::Session,
    reporter: &dyn Reporter,
) -> anyhow::Result<Summary> {
    let mut timings = Timings {
        reporter,
        stages: vec![StageTiming {
            stage: Stage::Detect,
            seconds: detect_time.as_secs_f64(),
        }],
    };
    // The key is read first: a wrong password fails before a long build, not after.
    // Keyless signing is decided now too, but its certificate, which lives minutes, is
    // requested after the build.
    let choice = crate::sign::keyring::choose(&options.signing)?;
    let in_ci = crate::env::var(crate::env::CI).is_some()
        || crate::platform::Platform::detect(&crate::platform::Environment::from_process())
            != crate::platform::Platform::Local;
    if let Choice::Key(signer) = &choice
        && let KeyOrigin::Local(path) = &signer.origin
        && in_ci
    {
        reporter.warn(&format!(
            "signing with kiln's local development key {}, which does not outlive this \
             machine: set {} (a cosign key pair from `kiln keygen`) so others can verify",
            path.display(),
            crate::env::KILN_SIGNING_KEY
        ));
    }
    let inputs = crate::inputs::digest(plan).context("Failed to hash the project's inputs")?;
    tracing::debug!(%inputs, "inputs digest");
    keep_out_of_git(&plan.project.root.join(".kiln"));
    let layout = Layout::create(&plan.layout)?;

    let registry = match &options.push {
        Some(reference) => Some(
            Registry::connect(
                reference.clone(),
                RegistryOperation::Push,
                options.registry.clone(),
            )
            .await?,
        ),
        None => None,
    };

    // Already pushed with these inputs: nothing to build or send.
    let pushed = match (&registry, options.force) {
        (Some(registry), false) => registry
            .fetch_manifest()
            .await?
            .filter(|(manifest, _)| inputs_of(manifest).as_deref() == Some(inputs.as_str())),
        _ => None,
    };
    let (stored, skipped, push) = if let (Some(registry), Some((manifest, digest))) =
        (&registry, pushed)
    {
        reporter.step("The registry has an artifact with the same inputs: nothing to build");
        let stored = reuse(&layout, plan, &manifest, Some(registry)).await?;
        let push = PushSummary {
            reference: format!("{}@{digest}", registry.reference().whole()),
            digest,
            bytes_sent: 0,
            bytes_skipped: 0,
            up_to_date: true,
        };
        (stored, true, Some(push))
    } else {
        // Already stored locally with these inputs: re-tag instead of rebuilding.
        let existing = if options.force {
            None
        } else {
            find_by_inputs(&layout, &inputs)?
        };
        let (stored, skipped) = match existing {
            Some(manifest) => {
                reporter.step("The layout has an artifact with the same inputs: nothing to build");
                (reuse(&layout, plan, &manifest, None).await?, true)
            }
            None => {
                let replanned = restore_cache(cache, plan, &mut timings).await;
                let plan = replanned.as_ref().unwrap_or(plan);
                let stored = build_and_store(plan, &inputs, &mut timings).await?;
                cache.mark_built();
                (stored, false)
            }
        };
        let push = match &registry {
            Some(registry) => {
                let started = timings.start(Stage::Push);
                let outcome = registry
                    .push(&layout, &stored.manifest_digest, reporter)
                    .await?;
                timings.finish(Stage::Push, started);
                Some(PushSummary {
                    reference: outcome.reference,
                    digest: outcome.digest,
                    bytes_sent: outcome.bytes_sent,
                    bytes_skipped: outcome.bytes_skipped,
                    up_to_date: false,
                })
            }
            None => None,
        };
        (stored, skipped, push)
    };

    let signer = match choice {
        Choice::Key(signer) => Signing::Key(signer),
        Choice::Keyless(keyless) => {
            reporter.step(&format!(
                "Signing keylessly: {} exchanged at {}",
                keyless.token.describe(),
                keyless.fulcio_url
            ));
            match keyless.start().await {
                Ok(keyless) => Signing::Keyless(keyless),
                // Offered a token but not asked for keyless (a GitLab component always
                // requests one; a self-managed instance's tokens are not Fulcio's): sign
                // with the key kiln would otherwise use, and say why.
                Err(err) if options.signing.keyless == crate::sign::keyring::KeylessMode::Auto => {
                    reporter.warn(&format!(
                        "keyless signing failed ({}); signing with a key instead (pass \
                         `--keyless` to make this an error, `--no-keyless` to skip it)",
                        crate::error::one_line(&err)
                    ));
                    Signing::Key(crate::sign::keyring::signer(
                        options.signing.key.as_deref(),
                    )?)
                }
                Err(err) => {
                    return Err(anyhow::Error::new(err)
                        .context("Failed to get a keyless signing certificate"));
                }
            }
        }
    };
    let (signature, attestation) = sign_and_attest(
        plan,
        &layout,
        registry.as_ref(),
        &stored,
        &signer,
        &mut timings,
    )
    .await?;
    summary(
        plan,
        &stored,
        Outcomes {
            inputs,
            skipped,
            push,
            signature,
            attestation,
        },
        timings.stages,
    )
}

/// Signs the artifact and attests its SBOM, in the layout and (when pushing) the
/// registry.
async fn sign_and_attest(
    plan: &Plan,
    layout: &Layout,
    registry: Option<&Registry>,
    stored: &StoredArtifact,
    signer: &Signing,
    timings: &mut Timings<'_>,
) -> anyhow::Result<(SignatureSummary, AttestationSummary)> {
    let reporter = timings.reporter;
    // What the signature and the SBOM name: the registry repository when pushing, else
    // the artifact's name in the layout.
    let repository = match registry {
        Some(registry) => format!(
            "{}/{}",
            registry.reference().resolve_registry(),
            registry.reference().repository()
        ),
        None => stored
            .reference
            .rsplit_once(':')
            .map_or(stored.reference.clone(), |(name, _)| name.to_string()),
    };

    let started = timings.start(Stage::Sign);
    let signed = sign::run(
        sign::SignRequest {
            layout,
            registry,
            digest: &stored.manifest_digest,
            repository: &repository,
            signer,
        },
        reporter,
    )
    .await
    .context("Failed to sign the artifact")?;
    timings.finish(Stage::Sign, started);

    let started = timings.start(Stage::Attest);
    let (deps_dir, wheel_dist) = build::python::sbom_inputs(&python_work_dir(plan));
    let source = match &plan.project.kind {
        ProjectKind::Rust(rust) => SbomSource::Rust(rust),
        ProjectKind::Python(py) => SbomSource::Python {
            deps_dir: &deps_dir,
            project_dist: match py.source {
                PythonSource::Wheel { .. } => {
                    Some(wheel_dist.as_deref().unwrap_or(plan.project.name.as_str()))
                }
                PythonSource::Requirements { .. } => None,
            },
        },
    };
    let attested = attest::run(
        attest::AttestRequest {
            layout,
            registry,
            sbom: SbomInput {
                artifact_name: &repository,
                artifact_version: stored.version.as_deref(),
                artifact_digest: &stored.manifest_digest,
                toolchain: &stored.toolchain,
            },
            source,
            sbom_path: plan.work_dir.join("sbom.cdx.json"),
            signer,
        },
        reporter,
    )
    .await
    .context("Failed to attest the artifact's SBOM")?;
    timings.finish(Stage::Attest, started);

    Ok((
        SignatureSummary {
            tag: signed.tag,
            digest: signed.digest,
            key: signer.describe(),
            reused: signed.reused,
        },
        AttestationSummary {
            tag: attested.attached.tag,
            digest: attested.attached.digest,
            predicate_type: attest::CYCLONEDX_PREDICATE_TYPE.to_string(),
            sbom_path: attested.sbom_path,
            sbom_digest: attested.sbom_digest,
            components: attested.components,
            reused: attested.attached.reused,
        },
    ))
}

/// What the stages after storing produced, for the summary.
struct Outcomes {
    inputs: String,
    skipped: bool,
    push: Option<PushSummary>,
    signature: SignatureSummary,
    attestation: AttestationSummary,
}

/// An artifact in the layout, as the summary describes it.
struct StoredArtifact {
    manifest_digest: String,
    manifest: OciImageManifest,
    config: WasmConfig,
    reference: String,
    version: Option<String>,
    toolchain: String,
    facts: Vec<(String, String)>,
}

async fn build_and_store(
    plan: &Plan,
    inputs: &str,
    timings: &mut Timings<'_>,
) -> anyhow::Result<StoredArtifact> {
    let reporter = timings.reporter;
    let started = timings.start(Stage::Build);
    let built = build_project(plan, reporter).await?;
    timings.finish(Stage::Build, started);

    let version = plan.project.version.clone().or(built.version.clone());
    let reference = reference_for(plan, version.clone())?;

    let started = timings.start(Stage::Package);
    let artifact = package::run(package::PackageRequest {
        built: built.clone(),
        name: plan.project.name.clone(),
        version: version.clone(),
        created: plan.source.created.clone(),
        revision: plan.source.revision.clone(),
        source: plan.source.url.clone(),
        inputs_digest: Some(inputs.to_string()),
    })
    .await?;
    timings.finish(Stage::Package, started);

    let started = timings.start(Stage::Store);
    store::run(store::StoreRequest {
        artifact: &artifact,
        layout: plan.layout.clone(),
        reference: reference.clone(),
    })
    .await?;
    timings.finish(Stage::Store, started);

    Ok(StoredArtifact {
        manifest_digest: artifact.manifest_digest,
        manifest: artifact.manifest,
        config: artifact.config,
        reference,
        version,
        toolchain: built.toolchain,
        facts: built.facts,
    })
}

/// Makes an existing artifact the plan's result: copies it into the layout if it is only
/// in the registry, and tags it with the plan's reference.
async fn reuse(
    layout: &Layout,
    plan: &Plan,
    manifest_bytes: &[u8],
    registry: Option<&Registry>,
) -> anyhow::Result<StoredArtifact> {
    let manifest: OciImageManifest =
        serde_json::from_slice(manifest_bytes).context("Failed to parse the stored manifest")?;
    let version = manifest
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::VERSION).cloned())
        .or(plan.project.version.clone());
    let reference = reference_for(plan, version.clone())?;
    let manifest_digest = digest(manifest_bytes);
    if !layout.blob_path(&manifest_digest)?.is_file() {
        let registry = registry.expect("an artifact not in the layout came from the registry");
        registry
            .pull(layout, &reference, &crate::reporter::Silent)
            .await?;
    }
    layout.tag(
        &reference,
        &manifest_digest,
        manifest_bytes.len() as u64,
        None,
    )?;
    let config: WasmConfig = serde_json::from_slice(&layout.read_blob(&manifest.config.digest)?)
        .context("Failed to parse the stored artifact's config")?;
    Ok(StoredArtifact {
        manifest_digest,
        manifest,
        config,
        reference,
        version,
        toolchain: "none: inputs unchanged, artifact reused".into(),
        facts: Vec::new(),
    })
}

/// The manifest in `layout` that records `inputs`, if any.
fn find_by_inputs(layout: &Layout, inputs: &str) -> anyhow::Result<Option<Vec<u8>>> {
    for entry in layout.index()?.manifests {
        let Ok(bytes) = layout.read_blob(&entry.digest) else {
            continue;
        };
        if inputs_of(&bytes).as_deref() == Some(inputs) {
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

fn inputs_of(manifest: &[u8]) -> Option<String> {
    let manifest: OciImageManifest = serde_json::from_slice(manifest).ok()?;
    manifest.annotations?.remove(crate::inputs::ANNOTATION)
}

/// The layout reference: `--tag`, else the name with the version (known from detection
/// or, for dynamic versions, from the build).
fn reference_for(plan: &Plan, version: Option<String>) -> anyhow::Result<String> {
    let mut project = plan.project.clone();
    project.version = version;
    crate::plan::reference(plan.tag.as_deref(), &project)
}

fn summary(
    plan: &Plan,
    stored: &StoredArtifact,
    outcomes: Outcomes,
    stages: Vec<StageTiming>,
) -> anyhow::Result<Summary> {
    let Outcomes {
        inputs,
        skipped,
        push,
        signature,
        attestation,
    } = outcomes;
    let layer = stored
        .manifest
        .layers
        .first()
        .context("The artifact has no layer")?;
    let layout = plan.layout.clone();
    Ok(Summary {
        schema_version: SCHEMA_VERSION,
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
        project: ProjectSummary {
            name: plan.project.name.clone(),
            version: stored.version.clone(),
            language: plan.project.kind.language().to_string(),
            path: plan.project.root.clone(),
            entry: plan.entry(),
        },
        build: BuildSummary {
            toolchain: stored.toolchain.clone(),
            wasm_kind: if stored.config.os == build::WasmKind::Component.os() {
                "component".into()
            } else {
                "module".into()
            },
            facts: stored
                .facts
                .iter()
                .map(|(name, value)| Fact {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        },
        artifact: ArtifactSummary {
            digest: stored.manifest_digest.clone(),
            layer_digest: layer.digest.clone(),
            size: u64::try_from(layer.size).unwrap_or_default(),
            os: stored.config.os.clone(),
            oci_reference: format!("oci:{}:{}", layout.display(), stored.reference),
            layout,
            reference: stored.reference.clone(),
            created: stored.config.created.clone(),
        },
        inputs_digest: inputs,
        skipped,
        push,
        signature,
        attestation,
        cache: None,
        stages,
    })
}

/// Restores the caches (timed as the restore stage); returns the plan to build with
/// when the restore changed it.
async fn restore_cache(
    cache: &crate::cache::Session,
    plan: &Plan,
    timings: &mut Timings<'_>,
) -> Option<Plan> {
    let replanned = cache.restore(plan, timings.reporter).await;
    if let Some(elapsed) = cache.restore_time().await {
        timings.stages.push(StageTiming {
            stage: Stage::Restore,
            seconds: elapsed.as_secs_f64(),
        });
    }
    replanned
}

async fn build_project(plan: &Plan, reporter: &dyn Reporter) -> anyhow::Result<Built> {
    Ok(match (&plan.project.kind, &plan.toolchain) {
        (ProjectKind::Rust(rust), ToolchainPlan::Rust { candidates }) => {
            build::rust::build(rust, candidates, reporter).await?
        }
        (ProjectKind::Python(py), ToolchainPlan::Python(toolchain)) => {
            let work_dir = python_work_dir(plan);
            build::python::build(&plan.project, py, toolchain, &work_dir, reporter).await?
        }
        (kind, toolchain) => unreachable!(
            "plan pairs a {} project with a {toolchain:?} toolchain",
            kind.language()
        ),
    })
}

/// Where the Python builder works, and the SBOM later reads what it installed.
fn python_work_dir(plan: &Plan) -> std::path::PathBuf {
    plan.work_dir.join("python")
}

/// kiln's scratch and output directory is never source: like cargo's `target/`, it
/// ignores itself, so nobody commits a layout by accident.
fn keep_out_of_git(kiln_dir: &std::path::Path) {
    let ignore = kiln_dir.join(".gitignore");
    if !ignore.exists() {
        let written = std::fs::create_dir_all(kiln_dir).and_then(|()| {
            std::fs::write(&ignore, "# Written by kiln: build output, not source.\n*\n")
        });
        if let Err(err) = written {
            tracing::debug!(path = %ignore.display(), %err, "could not write .gitignore");
        }
    }
}

/// Parses `--push` with the artifact's tag as the default.
pub fn push_reference(text: &str, plan: &Plan) -> Result<Reference, registry::RegistryError> {
    let default_tag = plan
        .reference
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .unwrap_or("latest");
    registry::parse_reference(text, default_tag)
}
