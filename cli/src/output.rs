//! Every document kiln prints with `--output json`, and the build summary wrappers read.
//!
//! Each is a serde + JSON Schema type; [`schemas`] lists them with the file their schema
//! is committed to under `schema/` (`cargo run -p xtask -- generate` writes them, and
//! `generate --check` fails when a type drifts from its file). Bump [`SCHEMA_VERSION`] on
//! any change to a document that is not a pure addition.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The documents' format version.
pub const SCHEMA_VERSION: u32 = 1;

/// Each document and the file under `schema/` its JSON Schema is committed to.
pub fn schemas() -> Vec<(&'static str, String)> {
    fn schema<T: JsonSchema>() -> String {
        let schema = schemars::schema_for!(T);
        let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
        text.push('\n');
        text
    }
    vec![
        ("summary.schema.json", schema::<Summary>()),
        ("plan.schema.json", schema::<PlanOutput>()),
        ("push.schema.json", schema::<PushOutput>()),
        ("verify.schema.json", schema::<VerifyOutput>()),
        ("cache-keys.schema.json", schema::<Vec<CacheKeyOutput>>()),
        ("cache.schema.json", schema::<CacheSummary>()),
    ]
}

/// The stages of `kiln build`, in the order they run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Detect,
    Restore,
    Build,
    Package,
    Store,
    Push,
    Sign,
    Attest,
    Save,
    Summary,
}

impl Stage {
    /// Every stage, in the order they run.
    pub const ALL: [Stage; 10] = [
        Stage::Detect,
        Stage::Restore,
        Stage::Build,
        Stage::Package,
        Stage::Store,
        Stage::Push,
        Stage::Sign,
        Stage::Attest,
        Stage::Save,
        Stage::Summary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Detect => "detect",
            Stage::Restore => "restore",
            Stage::Build => "build",
            Stage::Package => "package",
            Stage::Store => "store",
            Stage::Push => "push",
            Stage::Sign => "sign",
            Stage::Attest => "attest",
            Stage::Save => "save",
            Stage::Summary => "summary",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a build's plan: a stage, and why it will not run when it will not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub stage: Stage,
    /// Why the stage is skipped (`no --push`, `caching is off`, `inputs unchanged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What `kiln plan --output json` and `kiln build --dry-run --output json` print: what
/// `kiln build` will do, computed before anything runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanOutput {
    pub schema_version: u32,
    pub project: Project,
    /// The toolchains the build will try, in order, as shown to people.
    pub toolchains: Vec<String>,
    /// kiln's scratch directory for this project (`.kiln/build`).
    pub work_dir: PathBuf,
    /// The OCI image layout the artifact is stored in.
    pub layout: PathBuf,
    /// `NAME:TAG` in the layout.
    pub reference: String,
    /// Where the artifact is pushed, when it is.
    pub push: Option<String>,
    /// The artifact's creation time (RFC 3339) and where it came from.
    pub created: Option<String>,
    pub created_from: Option<String>,
    /// The digest of everything the build depends on.
    pub inputs_digest: String,
    /// Every stage, in the order `kiln build` runs them; the summary's `stages` lists the
    /// same ones in the same order.
    pub steps: Vec<Step>,
}

/// A project kiln knows how to build, as detected (and overridden by `kiln.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The project directory given on the command line, canonicalised.
    pub root: PathBuf,
    /// The project's name (package name, distribution name or directory name).
    pub name: String,
    /// The project's version, when it declares one.
    pub version: Option<String>,
    /// What kind of project this is, with what the builder needs to know.
    pub kind: ProjectKind,
}

/// The languages kiln builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "language", rename_all = "lowercase")]
pub enum ProjectKind {
    Rust(RustProject),
    Python(PythonProject),
}

impl ProjectKind {
    pub fn language(&self) -> &'static str {
        match self {
            ProjectKind::Rust(_) => "rust",
            ProjectKind::Python(_) => "python",
        }
    }
}

/// A Cargo package with the binary target to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RustProject {
    /// The `Cargo.toml` of the package that owns the binary.
    pub manifest_path: PathBuf,
    /// The workspace root (where `Cargo.lock` lives).
    pub workspace_root: PathBuf,
    /// The package name (`cargo -p`).
    pub package: String,
    /// The binary target name (`cargo --bin`).
    pub bin: String,
    /// Cargo features to enable.
    pub features: Vec<String>,
    /// Build without the package's default features.
    pub no_default_features: bool,
    /// Cargo's target directory for this workspace.
    pub target_dir: PathBuf,
}

/// A Python application and how to start it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PythonProject {
    /// How the project declares itself and its dependencies.
    pub source: PythonSource,
    /// What runs when the component starts.
    pub entry: PythonEntry,
}

/// How a Python project declares itself and its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PythonSource {
    /// A distribution pip can build (`pyproject.toml` with `[project]` or
    /// `[build-system]`, or a legacy `setup.py`): built as its own wheel by its own build
    /// backend, then installed with its dependencies.
    Wheel {
        /// `pyproject.toml` or `setup.py`.
        manifest: PathBuf,
    },
    /// An application whose dependencies are listed in requirements files; its own files
    /// are carried from the project directory.
    Requirements { files: Vec<PathBuf> },
}

/// What the component runs, mirroring how the app is started under `python`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PythonEntry {
    /// `module:function`, as in `[project.scripts]` (`python -c "from m import f; f()"`).
    Function {
        module: String,
        function: String,
        /// Where it was found, for the plan: `[project.scripts] name`, `[tool.kiln] entry`.
        origin: String,
    },
    /// A package with `__main__.py` (`python -m package`).
    Package {
        package: String,
        /// `__main__.py`, relative to the project root.
        path: PathBuf,
    },
    /// A script at the project root (`python app.py`).
    Script {
        /// Relative to the project root.
        path: PathBuf,
    },
}

impl fmt::Display for PythonEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PythonEntry::Function {
                module, function, ..
            } => write!(f, "{module}:{function}"),
            PythonEntry::Package { package, .. } => write!(f, "python -m {package}"),
            PythonEntry::Script { path } => write!(f, "python {}", path.display()),
        }
    }
}

/// What `kiln push --output json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushOutput {
    /// `REGISTRY/REPOSITORY:TAG@sha256:…`: exactly what was pushed.
    pub reference: String,
    /// The manifest digest in the registry.
    pub digest: String,
    /// Bytes uploaded.
    pub bytes_sent: u64,
    /// Bytes of blobs the registry already had.
    pub bytes_skipped: u64,
    /// The `.sig`/`.att` tags pushed with it.
    pub attached: Vec<String>,
}

/// What `kiln verify --output json` prints about an artifact that verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyOutput {
    /// The artifact's manifest digest.
    pub digest: String,
    /// The `.sig` tag whose signature verified.
    pub signature_tag: String,
    /// Who signed, as `kiln verify` names it (a key, or `keyless: IDENTITY from ISSUER`).
    pub signer: String,
    /// The verified SBOM attestation, when there is one.
    pub sbom: Option<VerifiedSbom>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifiedSbom {
    /// The `.att` tag.
    pub tag: String,
    /// How many components the SBOM lists.
    pub components: usize,
    /// Every license id, name or expression it mentions.
    pub licenses: BTreeSet<String>,
}

/// One line of `kiln cache key --output json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheKeyOutput {
    /// `pip` or `cargo`.
    pub kind: String,
    /// The exact key.
    pub key: String,
    /// What a partial hit in the build's own scope shares with the key.
    pub restore_prefix: String,
    /// What a restore tries, in order, for the CI's own `restore-keys`: the exact key in
    /// each scope the build reads (its own, then those it trusts, such as a pull
    /// request's base branch), then the restore prefix in each.
    pub restore_keys: Vec<String>,
    /// The directories the cache holds.
    pub paths: Vec<PathBuf>,
}

/// What a `kiln build` did and produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Format version of this document.
    pub schema_version: u32,
    /// The kiln that wrote it.
    pub kiln_version: String,
    pub project: ProjectSummary,
    pub build: BuildSummary,
    pub artifact: ArtifactSummary,
    /// The digest of everything the build depends on (source tree, lockfiles, toolchain,
    /// kiln, settings), recorded on the manifest as `dev.kiln.inputs.digest`.
    pub inputs_digest: String,
    /// Nothing was built: an artifact with the same inputs digest was already stored or
    /// pushed, and was reused (and re-tagged if needed).
    pub skipped: bool,
    /// The push to a registry, when one was asked for.
    pub push: Option<PushSummary>,
    /// The cosign signature of the artifact; absent after `kiln build --no-publish`,
    /// which signs nothing (`kiln publish` does).
    #[serde(default)]
    pub signature: Option<SignatureSummary>,
    /// The signed CycloneDX SBOM attestation of the artifact; absent after
    /// `kiln build --no-publish`, which stores the SBOM unsigned beside the artifact.
    #[serde(default)]
    pub attestation: Option<AttestationSummary>,
    /// The persisted pip or cargo cache: restored before the build, saved after it.
    /// Absent when caching is off (`--no-cache`) or nothing was built.
    #[serde(default)]
    pub cache: Option<CacheSummary>,
    /// Every stage of the plan in the order they ran, with its wall time or why it was
    /// skipped. The summary stage itself is listed with the time it had taken when this
    /// document was written.
    pub stages: Vec<StageTiming>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSummary {
    /// Where caches are kept: a directory, or `REGISTRY/REPOSITORY`.
    pub store: String,
    /// The trust scope saves went to (`refs/heads/main`, `refs/pull/12`,
    /// `gitlab-protected`); restores read it first.
    pub scope: String,
    /// The scopes restores may also read, in order (a pull request's base branch).
    pub read_scopes: Vec<String>,
    /// One per cache the project has (`cargo` for Rust, `pip` for Python).
    pub kinds: Vec<CacheKindSummary>,
    pub restore_seconds: f64,
    pub save_seconds: f64,
    /// Cache problems the build went on without (store unreachable, corrupt cache).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheKindSummary {
    /// `pip` or `cargo`.
    pub kind: String,
    /// The key this build's cache is saved under.
    pub key: String,
    pub hit: CacheHit,
    /// The key restored: the same as `key` on an exact hit, an older one on a partial hit.
    pub restored_key: Option<String>,
    /// Files and bytes written by the restore (files already in place not counted).
    pub files_restored: u64,
    pub bytes_restored: u64,
    /// A new cache was written under `key`.
    pub saved: bool,
    /// Why it was not saved, when it was not.
    pub save_skipped: Option<String>,
    /// Uncompressed bytes of the saved cache.
    pub bytes_saved: u64,
    /// Compressed bytes of the chunks the store lacked, written or uploaded.
    pub bytes_uploaded: u64,
    pub chunks_uploaded: u64,
    /// Chunks the store already had.
    pub chunks_reused: u64,
}

/// How a restore matched the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheHit {
    Exact,
    Partial,
    Miss,
}

impl fmt::Display for CacheHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheHit::Exact => "exact hit",
            CacheHit::Partial => "partial hit",
            CacheHit::Miss => "miss",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSummary {
    /// `REGISTRY/REPOSITORY:TAG@sha256:…`: exactly what was pushed.
    pub reference: String,
    /// The manifest digest in the registry.
    pub digest: String,
    /// Bytes uploaded.
    pub bytes_sent: u64,
    /// Bytes of blobs the registry already had.
    pub bytes_skipped: u64,
    /// The registry already held this artifact under that tag: nothing was sent.
    pub up_to_date: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureSummary {
    /// The tag cosign looks under: `sha256-<hex>.sig`, in the layout and the registry.
    pub tag: String,
    /// The digest of the `.sig` manifest.
    pub digest: String,
    /// Which key signed (a path, `$KILN_SIGNING_KEY`, or kiln's local development key), or
    /// `keyless: <identity> from <issuer>` for a keyless signature.
    pub key: String,
    /// The tag already held a valid signature by this key: nothing new was signed.
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationSummary {
    /// The tag cosign looks under: `sha256-<hex>.att`, in the layout and the registry.
    pub tag: String,
    /// The digest of the `.att` manifest.
    pub digest: String,
    /// The in-toto predicate type: `https://cyclonedx.org/bom`.
    pub predicate_type: String,
    /// The CycloneDX SBOM, as attested, on disk.
    pub sbom_path: PathBuf,
    /// `sha256:<hex>` of the SBOM document.
    pub sbom_digest: String,
    /// How many components the SBOM lists.
    pub components: usize,
    /// The tag already held a valid attestation by this key: nothing new was signed.
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSummary {
    pub name: String,
    pub version: Option<String>,
    /// `rust` or `python`.
    pub language: String,
    /// The project directory.
    pub path: PathBuf,
    /// The binary (Rust) or entry point (Python) that was built.
    pub entry: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSummary {
    /// The toolchain that produced the Wasm binary.
    pub toolchain: String,
    /// `module` (WASI preview 1) or `component` (WASI p2).
    pub wasm_kind: String,
    /// Builder-specific facts (target, carried Python modules, ...).
    pub facts: Vec<Fact>,
    /// How the steps that ran project code were isolated: `namespaces` (own user, PID
    /// and mount namespaces; kiln's secrets hidden) or `none`. Absent when nothing was
    /// built (the artifact was reused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSummary {
    /// The manifest digest: what identifies the artifact (`sha256:<hex>`).
    pub digest: String,
    /// The Wasm layer's digest.
    pub layer_digest: String,
    /// The Wasm layer's size in bytes.
    pub size: u64,
    /// `wasip1` or `wasip2`, as in the artifact's config.
    pub os: String,
    /// The OCI image layout it was stored in.
    pub layout: PathBuf,
    /// `NAME:TAG` inside the layout.
    pub reference: String,
    /// The same, as other OCI tools address it: `oci:LAYOUT:NAME:TAG`.
    pub oci_reference: String,
    /// RFC 3339 creation time recorded in the artifact, if any.
    pub created: Option<String>,
}

/// A stage of the build as it ran, or why it did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageTiming {
    pub stage: Stage,
    /// Wall time; 0 for a skipped stage.
    pub seconds: f64,
    /// Why the stage did not run, when it did not (as the plan said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Human-readable bytes in SI units: `795.00 kB`, `18.20 MB`.
pub fn human_size(bytes: u64) -> String {
    indicatif::DecimalBytes(bytes).to_string()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.project;
        let a = &self.artifact;
        writeln!(
            f,
            "project    {} {} ({})",
            p.name,
            p.version.as_deref().unwrap_or(""),
            p.language
        )?;
        writeln!(f, "entry      {}", p.entry)?;
        writeln!(f, "toolchain  {}", self.build.toolchain)?;
        for fact in &self.build.facts {
            writeln!(f, "{:<10} {}", fact.name, fact.value)?;
        }
        match self.build.isolation.as_deref() {
            Some("none") => writeln!(f, "isolation  none: build steps saw what this user sees")?,
            Some(kind) => writeln!(f, "isolation  {kind}")?,
            None => {}
        }
        writeln!(
            f,
            "artifact   {} {} ({})",
            self.build.wasm_kind,
            human_size(a.size),
            a.os
        )?;
        writeln!(f, "digest     {}", a.digest)?;
        writeln!(f, "stored     {}", a.oci_reference)?;
        if self.skipped {
            writeln!(f, "skipped    inputs unchanged ({})", self.inputs_digest)?;
        }
        if let Some(push) = &self.push {
            writeln!(
                f,
                "pushed     {} ({})",
                push.reference,
                if push.up_to_date {
                    "already there".to_string()
                } else {
                    format!(
                        "{} sent, {} already there",
                        human_size(push.bytes_sent),
                        human_size(push.bytes_skipped)
                    )
                }
            )?;
        }
        match (&self.signature, &self.attestation) {
            (Some(sig), Some(att)) => {
                writeln!(f, "signed     {} ({})", sig.tag, sig.key)?;
                writeln!(
                    f,
                    "attested   {} (CycloneDX SBOM, {} components, {})",
                    att.tag,
                    att.components,
                    att.sbom_path.display()
                )?;
            }
            _ => writeln!(
                f,
                "unsigned   stored with its SBOM for `kiln publish`, which pushes, signs and attests it"
            )?,
        }
        if let Some(cache) = &self.cache {
            for kind in &cache.kinds {
                writeln!(
                    f,
                    "cache      {} {}, {} restored; {}",
                    kind.kind,
                    kind.hit,
                    human_size(kind.bytes_restored),
                    if kind.saved {
                        format!(
                            "saved, {} uploaded in {} chunks",
                            human_size(kind.bytes_uploaded),
                            kind.chunks_uploaded
                        )
                    } else {
                        format!(
                            "not saved ({})",
                            kind.save_skipped.as_deref().unwrap_or("skipped")
                        )
                    }
                )?;
            }
        }
        write!(
            f,
            "time       {}",
            self.stages
                .iter()
                .filter(|s| s.skipped.is_none())
                .map(|s| format!("{} {:.1}s", s.stage, s.seconds))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_listed_in_the_order_they_run() {
        let mut sorted = Stage::ALL;
        sorted.sort();
        assert_eq!(sorted, Stage::ALL);
    }
}
