//! What detection found: the project model every later stage reads.

use std::path::PathBuf;

use serde::Serialize;

/// A project kiln knows how to build, as detected (and overridden by `kiln.toml`).
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "language", rename_all = "lowercase")]
#[non_exhaustive]
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct PythonProject {
    /// How the project declares itself and its dependencies.
    pub source: PythonSource,
    /// What runs when the component starts.
    pub entry: PythonEntry,
}

/// How a Python project declares itself and its dependencies.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

impl std::fmt::Display for PythonEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PythonEntry::Function {
                module, function, ..
            } => write!(f, "{module}:{function}"),
            PythonEntry::Package { package, .. } => write!(f, "python -m {package}"),
            PythonEntry::Script { path } => write!(f, "python {}", path.display()),
        }
    }
}
