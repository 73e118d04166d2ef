//! The build stage: turns the detected project into a `.wasm` file.
//!
//! 1. Takes the [`Language`] the plan resolved: each variant carries its project and the
//!    toolchain that builds it, so this module is the one place that dispatches on the
//!    language (resolving, building, caching, the SBOM's inputs).
//! 2. Hands the project to the language's builder ([`rust`], [`python`]), whose
//!    subprocesses all start from kiln's environment allowlist.
//! 3. Returns the [`Built`] file, whether it is a core module or a component, which
//!    toolchain produced it, and what the SBOM needs to list its contents.

pub mod python;
pub mod rust;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cache::{CacheOptions, KindPlan};
use crate::diagnose::{Blame, Diagnose};
use crate::env::Env;
use crate::isolation::Sandbox;
use crate::project::{Project, ProjectKind, PythonProject, PythonSource, RustProject};
use crate::reporter::Reporter;
use crate::settings::{KilnHome, Settings};

pub use python::PythonBuildError;
pub use rust::RustBuildError;

/// A project in a language kiln builds, with the toolchain that will build it.
#[derive(Debug, Clone)]
pub enum Language {
    Rust {
        project: RustProject,
        /// Tried in order until one works.
        toolchains: Vec<rust::RustToolchain>,
    },
    Python {
        project: PythonProject,
        toolchain: python::PythonToolchain,
    },
}

impl Language {
    /// Finds the toolchain for what detection found, without installing anything.
    pub async fn resolve(kind: ProjectKind, settings: &Settings) -> Result<Language, BuildError> {
        Ok(match kind {
            ProjectKind::Rust(project) => {
                let facts = settings.home.root().join("toolchains.json");
                let probe = rust::Probe {
                    env: &settings.env,
                    facts: Some(&facts),
                };
                Language::Rust {
                    toolchains: rust::resolve_toolchain(&project, settings.rust_toolchain, probe)
                        .await?,
                    project,
                }
            }
            ProjectKind::Python(project) => Language::Python {
                toolchain: python::resolve_toolchain(&settings.home.tools(), &settings.env).await?,
                project,
            },
        })
    }

    /// What detection found, as `kiln plan` prints it.
    pub fn kind(&self) -> ProjectKind {
        match self {
            Language::Rust { project, .. } => ProjectKind::Rust(project.clone()),
            Language::Python { project, .. } => ProjectKind::Python(project.clone()),
        }
    }

    /// `rust` or `python`.
    pub fn name(&self) -> &'static str {
        match self {
            Language::Rust { .. } => "rust",
            Language::Python { .. } => "python",
        }
    }

    /// The toolchains the build will try, in order, as shown to people.
    pub fn toolchains(&self) -> Vec<String> {
        match self {
            Language::Rust { toolchains, .. } => {
                toolchains.iter().map(ToString::to_string).collect()
            }
            Language::Python { toolchain, .. } => vec![toolchain.to_string()],
        }
    }

    /// What else the plan shows people about the project (label, value): the features
    /// of a Rust build, where a Python project's dependencies are declared.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        match self {
            Language::Rust { project, .. } => {
                if !project.no_default_features && project.features.is_empty() {
                    return Vec::new();
                }
                let features = if project.features.is_empty() {
                    "none".to_string()
                } else {
                    project.features.join(", ")
                };
                let default = if project.no_default_features {
                    "no default features; "
                } else {
                    ""
                };
                vec![("features", format!("{default}{features}"))]
            }
            Language::Python { project, .. } => vec![(
                "source",
                match &project.source {
                    PythonSource::Wheel { manifest } => {
                        format!("{} (built as a wheel)", manifest.display())
                    }
                    PythonSource::Requirements { files } if files.is_empty() => {
                        "project files + no requirements".to_string()
                    }
                    PythonSource::Requirements { files } => format!(
                        "project files + {}",
                        files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            )],
        }
    }

    /// The binary or entry point, as shown to people.
    pub fn entry(&self) -> String {
        match self {
            Language::Rust { project, .. } => {
                format!("bin `{}` of package `{}`", project.bin, project.package)
            }
            Language::Python { project, .. } => project.entry.to_string(),
        }
    }

    /// What identifies the toolchain for the inputs digest: versions, not the paths
    /// they were found at.
    pub fn toolchain_identity(&self) -> String {
        match self {
            Language::Rust { .. } => self.toolchains().join("|"),
            // What kiln generates into the component is an input too: a kiln whose
            // entry or site module changed must not reuse an artifact built before.
            Language::Python { .. } => format!(
                "componentize-py {}, kiln {}",
                crate::toolchain::COMPONENTIZE_PY_VERSION,
                python::generated_sources_digest()
            ),
        }
    }

    /// The caches a build of this project fills, with their keys.
    pub fn cache_kinds(
        &self,
        project: &Project,
        options: &CacheOptions,
        home: &KilnHome,
    ) -> std::io::Result<Vec<KindPlan>> {
        match self {
            Language::Rust {
                project: rust,
                toolchains,
            } => rust::cache::kinds(rust, toolchains, &project.name, options, home),
            Language::Python { toolchain, .. } => {
                python::cache::kinds(toolchain, &project.root, &project.name, options, home)
            }
        }
    }

    /// Whether a cache is still worth saving after the build failed: only a cargo cache
    /// whose downloads all finished (the next run does not download again); pip's
    /// cannot tell.
    pub fn worth_saving_after_failure(&self, home: &KilnHome) -> bool {
        match self {
            Language::Rust { project, .. } => rust::cache::downloads_complete(project, home),
            Language::Python { .. } => false,
        }
    }

    /// What the SBOM of an artifact built earlier from this project lists: the build
    /// that made it left it in `work_dir`.
    pub fn previous_sbom_inputs(&self, work_dir: &Path) -> SbomInputs {
        match self {
            Language::Rust { project, .. } => SbomInputs::Rust(project.clone()),
            Language::Python { .. } => {
                python::previous_sbom_inputs(&work_dir.join(python::WORK_DIR))
            }
        }
    }

    /// The directory whose files are the build's source: a Rust workspace member's build
    /// also depends on the workspace's manifest and lockfile.
    pub fn source_root<'a>(&'a self, project_root: &'a Path) -> &'a Path {
        match self {
            Language::Rust { project, .. } => &project.workspace_root,
            Language::Python { .. } => project_root,
        }
    }
}

/// What builders read from kiln beyond their project: its environment and home, and the
/// sandbox every step that runs project code goes through.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub env: &'a Env,
    pub home: &'a KilnHome,
    pub sandbox: &'a Sandbox,
}

/// What the build stage needs.
#[derive(Debug)]
pub struct BuildRequest<'a> {
    pub project: &'a Project,
    pub language: &'a Language,
    /// kiln's scratch directory for this project (`.kiln/build`).
    pub work_dir: &'a Path,
    pub context: Context<'a>,
}

/// Builds the project.
pub async fn run(req: BuildRequest<'_>, reporter: &dyn Reporter) -> Result<Built, BuildError> {
    Ok(match req.language {
        Language::Rust {
            project,
            toolchains,
        } => rust::build(project, toolchains, &req.context, reporter).await?,
        Language::Python { project, toolchain } => {
            python::build(
                req.project,
                project,
                toolchain,
                &req.work_dir.join(python::WORK_DIR),
                &req.context,
                reporter,
            )
            .await?
        }
    })
}

/// Why the project could not be built (or its toolchain not found).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Rust(#[from] RustBuildError),
    #[error(transparent)]
    Python(#[from] PythonBuildError),
}

impl Diagnose for BuildError {
    fn hint(&self) -> Option<String> {
        match self {
            BuildError::Rust(err) => err.hint(),
            BuildError::Python(err) => err.hint(),
        }
    }

    fn blame(&self) -> Blame {
        match self {
            BuildError::Rust(err) => err.blame(),
            BuildError::Python(err) => err.blame(),
        }
    }
}

/// What a Wasm binary is, which decides the artifact's `os` and how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WasmKind {
    /// A core module importing WASI preview 1 (`os: wasip1`).
    Module,
    /// A component targeting WASI p2 (`os: wasip2`).
    Component,
}

impl WasmKind {
    /// Tells a component from a core module by its header.
    pub fn of(bytes: &[u8]) -> Option<WasmKind> {
        if wasmparser::Parser::is_component(bytes) {
            Some(WasmKind::Component)
        } else if wasmparser::Parser::is_core_wasm(bytes) {
            Some(WasmKind::Module)
        } else {
            None
        }
    }

    /// The artifact config's `os` value (Wasm OCI artifact spec).
    pub fn os(self) -> &'static str {
        match self {
            WasmKind::Module => "wasip1",
            WasmKind::Component => "wasip2",
        }
    }
}

/// What the SBOM lists, as the build left it.
#[derive(Debug, Clone)]
pub enum SbomInputs {
    /// The package's `wasm32-wasip1` build graph (from `cargo metadata`).
    Rust(RustProject),
    /// The distributions installed into the component.
    Python {
        /// Where the dependencies were installed.
        deps_dir: PathBuf,
        /// The project's own distribution name, read from the wheel its build backend
        /// made; `None` for requirements-only apps.
        project_dist: Option<String>,
    },
    /// The CycloneDX document `kiln build --no-publish` stored beside the artifact, which
    /// `kiln publish` attests as it is.
    Stored(Vec<u8>),
}

/// The result of a successful build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `.wasm` file that was produced.
    pub wasm: PathBuf,
    /// Module or component.
    pub kind: WasmKind,
    /// The toolchain that produced it, as shown to the user
    /// ("rustc 1.95.0 with rustup's wasm32-wasip1 target").
    pub toolchain: String,
    /// Facts worth reporting in the summary (name, value): carried modules, sizes.
    pub facts: Vec<(String, String)>,
    /// The version the build itself determined, for projects whose version is dynamic
    /// (setuptools_scm, hatch-vcs): it names the artifact when detection found none.
    pub version: Option<String>,
    /// What the SBOM needs to list the artifact's contents.
    pub sbom: SbomInputs,
}
