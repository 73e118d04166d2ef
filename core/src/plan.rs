//! The whole plan of a `kiln build`, computed before anything runs: the plan is the
//! program.
//!
//! 1. Runs detection (the detect stage) and resolves the language's toolchain.
//! 2. Reads what decides the build: the source's revision and time, the inputs digest,
//!    whether an artifact with the same inputs is already pushed under the destination
//!    tag or stored in the layout (then nothing is built), and the caches' keys.
//! 3. Lists the [`Step`]s that will run, in order, each skipped one saying why.
//!    [`crate::pipeline::run`] runs exactly this list; `kiln build --dry-run` prints it.
//!
//! Computing it only reads (files, git, `cargo metadata`, the registry's tag).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_client::RegistryOperation;
use oci_client::manifest::OciImageManifest;

use crate::cache::{CacheLocation, CacheOptions, KindPlan};
use crate::error::Error;
use crate::oci::layout::Layout;
use crate::project::Project;
use crate::registry::{self, Registry, RegistryOptions};
use crate::reporter::{Reporter, Stage};
use crate::settings::Settings;
use crate::sign::Verifier;
use crate::sign::keyring::SigningOptions;
use crate::source::SourceInfo;
use crate::stages::build::Language;
use crate::stages::detect::{self, DetectRequest};
use crate::verify::verify_in_layout;

pub use kiln_cli::output::Step;

/// Which half of the pipeline a run does: both, or one of the two jobs a CI splits it
/// into so that the job running project code never holds the signing identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Publishing {
    /// `kiln build`: build, then push, sign and attest.
    #[default]
    Both,
    /// `kiln build --no-publish`: build and store the artifact with its SBOM, unsigned;
    /// no signing secret is read.
    BuildOnly,
    /// `kiln publish`: push, sign and attest the artifact stored for these inputs; no
    /// project code runs.
    PublishOnly,
}

/// What `kiln build` does beyond building: where the result goes and how it is signed.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--no-publish`, `kiln publish`, or both halves.
    pub publishing: Publishing,
    /// `--push`: `REGISTRY/REPOSITORY[:TAG]` (the tag defaults to the artifact's).
    pub push: Option<String>,
    /// Build even when an artifact with the same inputs exists.
    pub force: bool,
    /// `--require-isolation`: no namespaces for the build steps is an error.
    pub require_isolation: bool,
    pub registry: RegistryOptions,
    /// How to sign: `--key`, keyless, Fulcio and Rekor.
    pub signing: SigningOptions,
    /// The persisted pip and cargo caches (`location: None` is `--no-cache`).
    pub cache: CacheOptions,
    /// `--summary-file`.
    pub summary_file: Option<PathBuf>,
    /// Where the summary is posted, and whether as a comment too (`--no-post`).
    pub post: crate::platform::Posting,
    /// Only planning (`--dry-run`, `kiln plan`): a registry that cannot be reached is a
    /// warning, and the plan says what it could not check.
    pub dry_run: bool,
}

/// An artifact with the same inputs digest, found while planning.
#[derive(Debug, Clone)]
pub enum Reuse {
    /// Under the push destination's tag: nothing is built or sent.
    Registry { manifest: Vec<u8>, digest: String },
    /// In the local layout: nothing is built; it is re-tagged (and pushed).
    Layout { manifest: Vec<u8> },
}

impl Reuse {
    pub fn manifest(&self) -> &[u8] {
        match self {
            Reuse::Registry { manifest, .. } | Reuse::Layout { manifest } => manifest,
        }
    }
}

/// The caches a build restores and saves.
#[derive(Debug, Clone)]
pub struct CachePlan {
    pub location: CacheLocation,
    pub kinds: Vec<KindPlan>,
    /// Keys that could not be computed: the build goes on without caches.
    pub warnings: Vec<String>,
}

/// What `kiln build` will do.
#[derive(Debug)]
pub struct Plan {
    pub project: Project,
    /// The language, its project and the toolchain that builds it.
    pub language: Language,
    /// kiln's scratch directory for this project (`.kiln/build`).
    pub work_dir: PathBuf,
    /// The OCI image layout the artifact is stored in.
    pub layout: PathBuf,
    /// `NAME:TAG` in the layout. Without `--tag`, a project whose version is only known
    /// once built (dynamic versions) is re-tagged with it after the build.
    pub reference: String,
    /// `--tag` as given.
    pub tag: Option<String>,
    /// Where the artifact is pushed (`--push`, with its default tag).
    pub destination: Option<oci_client::Reference>,
    /// The destination, connected for pushing (`None` in a dry run that could not reach
    /// it).
    pub registry: Option<Registry>,
    pub source: SourceInfo,
    /// The inputs digest ([`crate::inputs`]).
    pub inputs: String,
    pub reuse: Option<Reuse>,
    /// `None` when caching is off.
    pub cache: Option<CachePlan>,
    /// How long detection (and the rest of planning) took.
    pub detect_time: Duration,
    /// Every stage, in the order they run.
    pub steps: Vec<Step>,
    pub settings: Settings,
    pub options: BuildOptions,
}

impl Plan {
    /// Whether the plan runs `stage` (it has the step and does not skip it).
    pub fn runs(&self, stage: Stage) -> bool {
        self.steps
            .iter()
            .any(|step| step.stage == stage && step.skipped.is_none())
    }

    /// Detects the project and plans its build.
    pub async fn compute(
        settings: Settings,
        options: BuildOptions,
        reporter: &dyn Reporter,
    ) -> Result<Plan, Error> {
        let started = Instant::now();
        reporter.stage_started(Stage::Detect);
        let detected = detect::run(
            &DetectRequest {
                env: settings.env.clone(),
                path: settings.project_dir.clone(),
                config: settings.config.clone(),
                package: settings.package.clone(),
                bin: settings.bin.clone(),
                entry: settings.entry.clone(),
                allow_toolchain_path: settings.allow_toolchain_path,
            },
            reporter,
        )
        .await?;
        let (project, kind) = Project::from_detected(detected);
        let language = Language::resolve(kind, &settings).await?;
        let reference =
            artifact_reference(settings.tag.as_deref(), &project.name, &project.version)?;
        let layout = std::path::absolute(&settings.layout).map_err(|source| Error::Io {
            what: format!("resolve `{}`", settings.layout.display()),
            source,
        })?;
        let source = SourceInfo::read(&project.root, &settings.env).await;
        let toolchain = language.toolchain_identity();
        let detected = project.detected(language.kind());
        let inputs = crate::inputs::digest(crate::inputs::Inputs {
            project: &detected,
            source_root: language.source_root(&project.root),
            toolchain: &toolchain,
            source: &source,
            env: &settings.env,
        })
        .await
        .map_err(|source| Error::Io {
            what: "hash the project's inputs".into(),
            source,
        })?;
        tracing::debug!(%inputs, "inputs digest");

        let destination = match &options.push {
            Some(text) => {
                let default_tag = reference.rsplit_once(':').map_or("latest", |(_, t)| t);
                Some(registry::parse_reference(text, default_tag)?)
            }
            None => None,
        };
        let registry = match &destination {
            Some(destination) => {
                let connected = Registry::connect(
                    destination.clone(),
                    RegistryOperation::Push,
                    options.registry.clone(),
                )
                .await;
                match connected {
                    Ok(registry) => Some(registry),
                    Err(err) if options.dry_run => {
                        reporter.warn(&format!(
                            "could not check `{}` for an artifact with these inputs ({}): \
                             the plan assumes it has none",
                            destination.whole(),
                            crate::diagnose::one_line(&err)
                        ));
                        None
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            None => None,
        };
        let reuse = match options.publishing {
            // What `kiln build --no-publish` stored for exactly these inputs, or nothing.
            Publishing::PublishOnly => Some(stored_for_publish(&layout, &reference, &inputs)?),
            _ if options.force => None,
            _ => find_reuse(registry.as_ref(), &layout, &inputs).await?,
        };

        let cache = options.cache.location.clone().map(|location| {
            let mut warnings = Vec::new();
            let kinds = language
                .cache_kinds(&project, &options.cache, &settings.home)
                .unwrap_or_else(|err| {
                    warnings.push(format!(
                        "cache: failed to compute the cache keys: {}",
                        crate::diagnose::one_line(&err)
                    ));
                    Vec::new()
                });
            CachePlan {
                location,
                kinds,
                warnings,
            }
        });
        let steps = steps(
            options.publishing,
            destination.is_some(),
            cache.is_some(),
            reuse.as_ref(),
        );
        let detect_time = started.elapsed();
        reporter.stage_finished(Stage::Detect, detect_time);
        Ok(Plan {
            work_dir: project.root.join(".kiln").join("build"),
            project,
            language,
            layout,
            reference,
            tag: settings.tag.clone(),
            destination,
            registry,
            source,
            inputs,
            reuse,
            cache,
            detect_time,
            steps,
            settings,
            options,
        })
    }

    /// The entry point or binary, as shown to people.
    pub fn entry(&self) -> String {
        self.language.entry()
    }

    /// Where the artifact is pushed, as given with its default tag.
    pub fn push(&self) -> Option<String> {
        self.destination.as_ref().map(|r| r.whole())
    }

    /// The layout reference of the artifact once its version is known (from detection
    /// or, for dynamic versions, from the build).
    pub fn reference_for(&self, version: &Option<String>) -> Result<String, Error> {
        artifact_reference(self.tag.as_deref(), &self.project.name, version)
    }

    /// What `kiln plan --output json` prints.
    pub fn output(&self) -> kiln_cli::output::PlanOutput {
        kiln_cli::output::PlanOutput {
            schema_version: kiln_cli::output::SCHEMA_VERSION,
            project: self.project.detected(self.language.kind()),
            toolchains: self.language.toolchains(),
            work_dir: self.work_dir.clone(),
            layout: self.layout.clone(),
            reference: self.reference.clone(),
            push: self.push(),
            created: self.source.created.clone(),
            created_from: self.source.created_from.clone(),
            inputs_digest: self.inputs.clone(),
            steps: self.steps.clone(),
        }
    }
}

/// The artifact's `NAME:TAG`: `--tag`, else the project's name and version. A tag the
/// project's own files chose (its version) may not take a name kiln or cosign reserve,
/// nor `latest`: a pull request could otherwise overwrite another artifact's signature
/// (`sha256-<hex>.sig`) or the tag everyone pulls. Only the command line chooses those.
fn artifact_reference(
    tag: Option<&str>,
    name: &str,
    version: &Option<String>,
) -> Result<String, Error> {
    let reference = crate::project::reference(tag, name, version)
        .map_err(|given| Error::Reference { given })?;
    let from_files = match tag {
        None => version.is_some(),
        Some(given) => !given.contains(':') && version.is_some(),
    };
    let chosen = reference.rsplit_once(':').map_or("", |(_, tag)| tag);
    if from_files && reserved_tag(chosen) {
        return Err(Error::ReservedTag {
            tag: chosen.to_string(),
        });
    }
    Ok(reference)
}

/// Tags that name something other than a build of a version: cosign's signature,
/// attestation and SBOM tags, and `latest`.
fn reserved_tag(tag: &str) -> bool {
    tag == "latest"
        || tag.starts_with("sha256-")
        || [".sig", ".att", ".sbom"]
            .iter()
            .any(|suffix| tag.ends_with(suffix))
}

/// The steps of a build, in order, each skipped one saying why.
fn steps(publishing: Publishing, push: bool, cache: bool, reuse: Option<&Reuse>) -> Vec<Step> {
    const NO_CACHE: &str = "caching is off (--no-cache)";
    const UNCHANGED: &str = "inputs unchanged: an artifact with the same inputs is stored";
    const NO_PUBLISH: &str = "--no-publish: `kiln publish` pushes and signs it";
    const PUBLISH: &str = "`kiln publish` runs no project code";
    Stage::ALL
        .into_iter()
        .map(|stage| {
            let skipped = match stage {
                Stage::Restore | Stage::Build | Stage::Package | Stage::Save
                    if publishing == Publishing::PublishOnly =>
                {
                    Some(PUBLISH)
                }
                Stage::Push | Stage::Sign if publishing == Publishing::BuildOnly => {
                    Some(NO_PUBLISH)
                }
                Stage::Restore | Stage::Save if !cache => Some(NO_CACHE),
                Stage::Restore | Stage::Build | Stage::Package | Stage::Save if reuse.is_some() => {
                    Some(UNCHANGED)
                }
                Stage::Push if !push => Some("no --push"),
                Stage::Push if matches!(reuse, Some(Reuse::Registry { .. })) => {
                    Some("the registry already has it under this tag")
                }
                Stage::Detect
                | Stage::Restore
                | Stage::Build
                | Stage::Package
                | Stage::Store
                | Stage::Push
                | Stage::Sign
                | Stage::Attest
                | Stage::Save
                | Stage::Summary => None,
            };
            Step {
                stage,
                skipped: skipped.map(str::to_string),
            }
        })
        .collect()
}

impl Plan {
    /// Keeps the artifact found by its inputs digest only when a signature by `signer`
    /// (the one this build signs with) verifies on it: the inputs annotation proves
    /// nothing, and anyone who can push to the tag (or commit a layout) could plant an
    /// artifact under it for this build to sign. Otherwise the plan builds again; the
    /// returned reason says why. `None` for the signer is keyless signing, whose own
    /// identity is known only once its certificate is issued, just before signing.
    pub async fn require_vouched(&mut self, signer: Option<&Verifier>) -> Option<String> {
        let reuse = self.reuse.as_ref()?;
        let checked = match signer {
            Some(signer) => self.vouched(reuse, signer).await,
            None => Err("keyless signing cannot check an earlier signature's identity".into()),
        };
        let why = checked.err()?;
        self.reuse = None;
        self.steps = steps(
            self.options.publishing,
            self.destination.is_some(),
            self.cache.is_some(),
            None,
        );
        Some(why)
    }

    /// Whether `signer` verifies a signature on `reuse`, in the layout or the registry.
    async fn vouched(&self, reuse: &Reuse, signer: &Verifier) -> Result<(), String> {
        let failed = |err: &dyn crate::diagnose::Diagnose| crate::diagnose::one_line(err);
        let policy = crate::verify::Policy::default();
        match reuse {
            Reuse::Layout { manifest } => {
                let layout = Layout::open(&self.layout).map_err(|e| failed(&e))?;
                let digest = crate::oci::digest(manifest);
                verify_in_layout(&layout, &digest, signer, &policy).map_err(|e| failed(&e))?;
            }
            Reuse::Registry { digest, .. } => {
                let registry = self.registry.as_ref().ok_or("no registry")?;
                let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
                let layout = Layout::create(scratch.path()).map_err(|e| failed(&e))?;
                let silent = crate::reporter::Silent;
                let pulled = registry
                    .pull(&layout, "artifact", &silent)
                    .await
                    .map_err(|e| failed(&e))?;
                if pulled != *digest {
                    return Err(format!("the tag moved from {digest} to {pulled}"));
                }
                crate::sign::attached::pull(&layout, registry, digest, &silent)
                    .await
                    .map_err(|e| failed(&e))?;
                verify_in_layout(&layout, digest, signer, &policy).map_err(|e| failed(&e))?;
            }
        }
        Ok(())
    }
}

/// The artifact `kiln build --no-publish` stored for `inputs` (under `reference`, or
/// any tag of the layout): `kiln publish` signs nothing else.
fn stored_for_publish(
    layout_dir: &std::path::Path,
    reference: &str,
    inputs: &str,
) -> Result<Reuse, Error> {
    let missing = |recorded: Option<String>| Error::NothingToPublish {
        layout: layout_dir.to_owned(),
        reference: reference.to_string(),
        inputs: inputs.to_string(),
        recorded,
    };
    if !layout_dir.join("index.json").is_file() {
        return Err(missing(None));
    }
    let layout = Layout::open(layout_dir)?;
    let mut recorded = None;
    for entry in layout.index()?.manifests {
        let Ok(manifest) = layout.read_blob(&entry.digest) else {
            continue;
        };
        let found = inputs_of(&manifest);
        if found.as_deref() == Some(inputs) {
            return Ok(Reuse::Layout { manifest });
        }
        let tag = entry
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::oci::annotations::REF_NAME));
        if tag.map(String::as_str) == Some(reference) {
            recorded = found;
        }
    }
    Err(missing(recorded))
}

/// An artifact recording `inputs`: under the destination tag, else in the layout.
async fn find_reuse(
    registry: Option<&Registry>,
    layout: &std::path::Path,
    inputs: &str,
) -> Result<Option<Reuse>, Error> {
    if let Some(registry) = registry
        && let Some((manifest, digest)) = registry.fetch_manifest().await?
        && inputs_of(&manifest).as_deref() == Some(inputs)
    {
        return Ok(Some(Reuse::Registry { manifest, digest }));
    }
    if !layout.join("index.json").is_file() {
        return Ok(None);
    }
    let layout = Layout::open(layout)?;
    for entry in layout.index()?.manifests {
        let Ok(manifest) = layout.read_blob(&entry.digest) else {
            continue;
        };
        if inputs_of(&manifest).as_deref() == Some(inputs) {
            return Ok(Some(Reuse::Layout { manifest }));
        }
    }
    Ok(None)
}

/// The inputs digest a manifest records.
pub fn inputs_of(manifest: &[u8]) -> Option<String> {
    let manifest: OciImageManifest = serde_json::from_slice(manifest).ok()?;
    manifest.annotations?.remove(crate::inputs::ANNOTATION)
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.project;
        writeln!(
            f,
            "project    {} ({})",
            p.root.display(),
            self.language.name()
        )?;
        writeln!(
            f,
            "name       {}{}",
            p.name,
            p.version
                .as_ref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        )?;
        writeln!(f, "entry      {}", self.entry())?;
        for (label, value) in self.language.details() {
            writeln!(f, "{label:<10} {value}")?;
        }
        for (i, toolchain) in self.language.toolchains().iter().enumerate() {
            let label = if i == 0 { "toolchain" } else { "  or" };
            writeln!(f, "{label:<10} {toolchain}")?;
        }
        writeln!(
            f,
            "store      {} as `{}`",
            self.layout.display(),
            self.reference
        )?;
        if let Some(push) = self.push() {
            writeln!(f, "push       {push}")?;
        }
        if let (Some(created), Some(from)) = (&self.source.created, &self.source.created_from) {
            writeln!(f, "created    {created} (from {from})")?;
        }
        writeln!(f, "inputs     {}", self.inputs)?;
        write!(
            f,
            "stages     {}",
            self.steps
                .iter()
                .map(|s| match &s.skipped {
                    None => s.stage.name().to_string(),
                    Some(why) => format!("({} skipped: {why})", s.stage),
                })
                .collect::<Vec<_>>()
                .join(" → ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_from_the_project_cannot_take_a_reserved_tag() {
        let v = |s: &str| Some(s.to_string());
        for version in [
            "latest",
            "sha256-0f3a.sig",
            "1.0.att",
            "x.sbom",
            "sha256-abc",
        ] {
            let err = artifact_reference(None, "app", &v(version)).unwrap_err();
            assert!(matches!(err, Error::ReservedTag { .. }), "{version}: {err}");
            // `--tag app:TAG` on the command line may.
            let given = format!("app:{version}");
            assert_eq!(
                artifact_reference(Some(&given), "app", &v(version)).unwrap(),
                given
            );
        }
        // No version at all: kiln's own default, `latest`.
        assert_eq!(
            artifact_reference(None, "app", &None).unwrap(),
            "app:latest"
        );
        assert_eq!(
            artifact_reference(None, "app", &v("1.2.3")).unwrap(),
            "app:1.2.3"
        );
    }

    #[test]
    fn steps_say_why_they_are_skipped() {
        let names = |steps: Vec<Step>| -> Vec<String> {
            steps
                .into_iter()
                .map(|s| match s.skipped {
                    None => s.stage.to_string(),
                    Some(_) => format!("-{}", s.stage),
                })
                .collect()
        };
        assert_eq!(
            names(steps(Publishing::Both, false, true, None)),
            [
                "detect", "restore", "build", "package", "store", "-push", "sign", "attest",
                "save", "summary"
            ]
        );
        let pushed = Reuse::Registry {
            manifest: Vec::new(),
            digest: String::new(),
        };
        assert_eq!(
            names(steps(Publishing::Both, true, false, Some(&pushed))),
            [
                "detect", "-restore", "-build", "-package", "store", "-push", "sign", "attest",
                "-save", "summary"
            ]
        );
        // The two halves of a split pipeline: no signing where project code runs, no
        // project code where it is signed.
        assert_eq!(
            names(steps(Publishing::BuildOnly, false, true, None)),
            [
                "detect", "restore", "build", "package", "store", "-push", "-sign", "attest",
                "save", "summary"
            ]
        );
        let stored = Reuse::Layout {
            manifest: Vec::new(),
        };
        assert_eq!(
            names(steps(Publishing::PublishOnly, true, true, Some(&stored))),
            [
                "detect", "-restore", "-build", "-package", "store", "push", "sign", "attest",
                "-save", "summary"
            ]
        );
    }
}
