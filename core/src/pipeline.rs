//! Runs a computed [`Plan`]: build → package → store → push, and returns the
//! [`Summary`].
//!
//! 1. Computes the inputs digest. Unless `--force`, looks for an artifact with the same
//!    inputs: under the push destination's tag (then nothing is built or sent), then
//!    anywhere in the local layout (then nothing is built; it is re-tagged and pushed).
//! 2. Otherwise builds, packages (recording the inputs digest) and stores.
//! 3. Pushes from the layout when asked: blobs first, the tag last.
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
use crate::project::ProjectKind;
use crate::registry::{self, Registry, RegistryOptions};
use crate::reporter::{Reporter, Stage};
use crate::stages::build::{self, Built};
use crate::stages::package::WasmConfig;
use crate::stages::{package, store};
use crate::summary::{
    ArtifactSummary, BuildSummary, Fact, ProjectSummary, PushSummary, SCHEMA_VERSION, StageTiming,
    Summary,
};

/// What `kiln build` does beyond building.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Push to this reference after storing.
    pub push: Option<Reference>,
    /// Build even when an artifact with the same inputs exists.
    pub force: bool,
    pub registry: RegistryOptions,
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

/// Runs every stage after detection.
pub async fn build(
    plan: &Plan,
    detect_time: Duration,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<Summary> {
    let mut timings = Timings {
        reporter,
        stages: vec![StageTiming {
            stage: Stage::Detect,
            seconds: detect_time.as_secs_f64(),
        }],
    };
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
    if let (Some(registry), false) = (&registry, options.force)
        && let Some((manifest, digest)) = registry.fetch_manifest().await?
        && inputs_of(&manifest).as_deref() == Some(inputs.as_str())
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
        return summary(plan, &stored, inputs, true, Some(push), timings.stages);
    }

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
        None => (build_and_store(plan, &inputs, &mut timings).await?, false),
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
    summary(plan, &stored, inputs, skipped, push, timings.stages)
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
    inputs: String,
    skipped: bool,
    push: Option<PushSummary>,
    stages: Vec<StageTiming>,
) -> anyhow::Result<Summary> {
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
        stages,
    })
}

async fn build_project(plan: &Plan, reporter: &dyn Reporter) -> anyhow::Result<Built> {
    Ok(match (&plan.project.kind, &plan.toolchain) {
        (ProjectKind::Rust(rust), ToolchainPlan::Rust { candidates }) => {
            build::rust::build(rust, candidates, reporter).await?
        }
        (ProjectKind::Python(py), ToolchainPlan::Python(toolchain)) => {
            let work_dir = plan.work_dir.join("python");
            build::python::build(&plan.project, py, toolchain, &work_dir, reporter).await?
        }
        (kind, toolchain) => unreachable!(
            "plan pairs a {} project with a {toolchain:?} toolchain",
            kind.language()
        ),
    })
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
