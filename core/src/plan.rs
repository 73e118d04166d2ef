//! The whole plan of a `kiln build`, computed before anything runs.
//!
//! Computing it only reads: detection, the toolchain probe and git. `kiln build
//! --dry-run` prints it and `kiln plan --output json` emits it.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use crate::project::{Project, ProjectKind, PythonSource};
use crate::reporter::Stage;
use crate::settings::Settings;
use crate::source::SourceInfo;
use crate::stages::build::python::{self, ComponentizePy, PythonToolchain};
use crate::stages::build::rust::{self, RustToolchain};
use crate::stages::detect::{self, DetectRequest};

/// What `kiln build` will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub project: Project,
    pub toolchain: ToolchainPlan,
    /// kiln's scratch directory for this project (`.kiln/build`).
    pub work_dir: PathBuf,
    /// The OCI image layout the artifact is stored in.
    pub layout: PathBuf,
    /// `NAME:TAG` in the layout. Without `--tag`, a project whose version is only known
    /// once built (dynamic versions) is re-tagged with it after the build.
    pub reference: String,
    /// `--tag` as given.
    pub tag: Option<String>,
    /// Where the artifact is pushed, when it is.
    pub push: Option<String>,
    pub source: SourceInfo,
    pub stages: Vec<Stage>,
}

/// The toolchain the build stage will use.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "language", rename_all = "lowercase")]
pub enum ToolchainPlan {
    /// Tried in order until one works.
    Rust {
        candidates: Vec<RustToolchain>,
    },
    Python(PythonToolchain),
}

impl Plan {
    pub fn compute(settings: &Settings) -> anyhow::Result<Plan> {
        let project = detect::run(&DetectRequest {
            path: settings.project_dir.clone(),
            config: settings.config.clone(),
            package: settings.package.clone(),
            bin: settings.bin.clone(),
            entry: settings.entry.clone(),
        })?;
        let toolchain = match &project.kind {
            ProjectKind::Rust(rust) => ToolchainPlan::Rust {
                candidates: rust::resolve_toolchain(rust, settings.rust_toolchain)?,
            },
            ProjectKind::Python(_) => {
                ToolchainPlan::Python(python::resolve_toolchain(&settings.tools_dir())?)
            }
        };
        let reference = reference(settings.tag.as_deref(), &project)?;
        let layout = std::path::absolute(&settings.layout)
            .with_context(|| format!("Failed to resolve `{}`", settings.layout.display()))?;
        Ok(Plan {
            work_dir: project.root.join(".kiln").join("build"),
            source: SourceInfo::read(&project.root),
            project,
            toolchain,
            layout,
            reference,
            tag: settings.tag.clone(),
            push: None,
            stages: vec![
                Stage::Detect,
                Stage::Restore,
                Stage::Build,
                Stage::Package,
                Stage::Store,
                Stage::Sign,
                Stage::Attest,
                Stage::Save,
                Stage::Summary,
            ],
        })
    }

    /// Drops the cache restore and save stages (`--no-cache`).
    pub fn without_cache(mut self) -> Plan {
        self.stages
            .retain(|stage| !matches!(stage, Stage::Restore | Stage::Save));
        self
    }

    /// Adds a push to `reference` after the store stage.
    pub fn with_push(mut self, reference: String) -> Plan {
        let at = self
            .stages
            .iter()
            .position(|s| *s == Stage::Store)
            .map_or(self.stages.len(), |i| i + 1);
        self.stages.insert(at, Stage::Push);
        self.push = Some(reference);
        self
    }

    /// The entry point or binary, as shown to people.
    pub fn entry(&self) -> String {
        match &self.project.kind {
            ProjectKind::Rust(rust) => format!("bin `{}` of package `{}`", rust.bin, rust.package),
            ProjectKind::Python(py) => py.entry.to_string(),
        }
    }
}

/// `--tag` or the default `NAME:VERSION`, made valid for OCI (lowercase repository
/// name; tag of `[A-Za-z0-9_.-]`, at most 128 characters).
pub fn reference(tag: Option<&str>, project: &Project) -> anyhow::Result<String> {
    let (name, tag) = match tag {
        Some(given) => match given.rsplit_once(':') {
            Some((name, tag)) => (name.to_string(), tag.to_string()),
            None => (given.to_string(), default_tag(project)),
        },
        None => (project.name.clone(), default_tag(project)),
    };
    let name: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    anyhow::ensure!(
        !name.is_empty() && !tag.is_empty(),
        "`{}` is not a valid artifact reference; use `NAME[:TAG]`",
        tag
    );
    Ok(format!("{name}:{tag}"))
}

fn default_tag(project: &Project) -> String {
    project.version.clone().unwrap_or_else(|| "latest".into())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.project;
        writeln!(f, "project    {} ({})", p.root.display(), p.kind.language())?;
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
        match &p.kind {
            ProjectKind::Rust(rust) => {
                if rust.no_default_features || !rust.features.is_empty() {
                    writeln!(
                        f,
                        "features   {}{}",
                        if rust.no_default_features {
                            "no default features; "
                        } else {
                            ""
                        },
                        if rust.features.is_empty() {
                            "none".to_string()
                        } else {
                            rust.features.join(", ")
                        }
                    )?;
                }
            }
            ProjectKind::Python(py) => match &py.source {
                PythonSource::Wheel { manifest } => {
                    writeln!(f, "source     {} (built as a wheel)", manifest.display())?
                }
                PythonSource::Requirements { files } => writeln!(
                    f,
                    "source     project files + {}",
                    if files.is_empty() {
                        "no requirements".to_string()
                    } else {
                        files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )?,
            },
        }
        match &self.toolchain {
            ToolchainPlan::Rust { candidates } => {
                for (i, toolchain) in candidates.iter().enumerate() {
                    let label = if i == 0 { "toolchain" } else { "  or" };
                    writeln!(f, "{label:<10} {toolchain}")?;
                }
            }
            ToolchainPlan::Python(py) => writeln!(
                f,
                "toolchain  componentize-py {} with {}",
                python::COMPONENTIZE_PY_VERSION,
                match &py.componentize_py {
                    ComponentizePy::Found { path } => format!("{}", path.display()),
                    ComponentizePy::Provision { venv } =>
                        format!("(to be installed into {})", venv.display()),
                }
            )?,
        }
        writeln!(
            f,
            "store      {} as `{}`",
            self.layout.display(),
            self.reference
        )?;
        if let Some(push) = &self.push {
            writeln!(f, "push       {push}")?;
        }
        if let (Some(created), Some(from)) = (&self.source.created, &self.source.created_from) {
            writeln!(f, "created    {created} (from {from})")?;
        }
        write!(
            f,
            "stages     {}",
            self.stages
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" → ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{PythonEntry, PythonProject};

    fn project(name: &str, version: Option<&str>) -> Project {
        Project {
            root: "/p".into(),
            name: name.into(),
            version: version.map(Into::into),
            kind: ProjectKind::Python(PythonProject {
                source: PythonSource::Requirements { files: vec![] },
                entry: PythonEntry::Script {
                    path: "app.py".into(),
                },
            }),
        }
    }

    #[test]
    fn default_reference_is_valid_oci() {
        assert_eq!(
            reference(None, &project("My_App", Some("1.0.0+build.5"))).unwrap(),
            "my_app:1.0.0_build.5"
        );
        assert_eq!(
            reference(None, &project("app", None)).unwrap(),
            "app:latest"
        );
        assert_eq!(
            reference(Some("acme/tool:v2"), &project("app", Some("1"))).unwrap(),
            "acme/tool:v2"
        );
        assert_eq!(
            reference(Some("tool"), &project("app", Some("3.1"))).unwrap(),
            "tool:3.1"
        );
    }
}
