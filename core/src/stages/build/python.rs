//! The Python builder: an ordinary Python project to a WASI p2 component, with
//! componentize-py.
//!
//! 1. Provisions the pinned componentize-py in a virtual environment under kiln's tools
//!    directory when none is there (installed in a temporary directory, then renamed, so
//!    a killed install never leaves half a tool behind).
//! 2. Installs the dependencies for the Python inside the component (CPython 3.14 on
//!    WASI), not for the host's: a `pyproject.toml` project is first built as its own
//!    wheel by its own build backend, then installed with its dependencies; a
//!    requirements project has its requirements installed and its own files carried
//!    from the project directory. A dependency with no pure-Python or WASI wheel is
//!    reported by name here, before componentize-py starts.
//! 3. Finds the app's import graph with the host's `modulefinder` (lazy imports
//!    included), because only modules imported while componentize-py pre-initialises
//!    the component exist when it runs.
//! 4. Generates the `wasi:cli/run` world and the entry module that imports that graph
//!    and every codec at pre-initialisation, then starts the app the way `python` would.
//! 5. Runs componentize-py and returns the component.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::process::Command;

use crate::error::{Blame, Diagnose};
use crate::process::{self, ProcessError};
use crate::project::{Project, PythonEntry, PythonProject, PythonSource};
use crate::reporter::Reporter;

use super::{Built, WasmKind};

/// The componentize-py kiln provisions and builds with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The CPython inside componentize-py's components, which dependencies are resolved for.
const TARGET_PYTHON: &str = "3.14";
const TARGET_ABI: &str = "cp314";
/// The platform tag of WASI wheels (as built for componentize-py); `any` covers pure
/// Python.
const WASI_PLATFORM: &str = "wasi_0_0_0_wasm32";

/// The WIT world the component targets: it exports `wasi:cli/run`.
const WIT: &str = include_str!("python/wit/kiln.wit");
const WORLD: &str = "kiln-command";
/// The entry module template: see the module itself for what it does.
const ENTRY_TEMPLATE: &str = include_str!("python/entry.py");
const ENTRY_MODULE: &str = "kiln_entry";
/// Where a script entry's source is copied for the entry module to compile.
const SCRIPT_COPY: &str = "kiln_main_source.py.txt";
/// The import-graph finder, run by the host python.
const IMPORTS_PY: &str = include_str!("python/imports.py");
/// What the entry module prints at pre-initialisation when the entry point fails.
const ENTRY_FAILED_MARKER: &str = "kiln: the entry point";
/// What the entry module writes at pre-initialisation: each module it imported or
/// failed to import, then how many modules the component carries.
const CARRIED_REPORT: &str = "kiln-carried.txt";

/// Standard-library packages that cannot work in a WASI component or are development
/// tools, so the import graph never follows them. A module that imports one of these
/// when it loads still carries it: this only stops kiln importing them on its own.
const EXCLUDED_MODULES: &[&str] = &[
    // Pure-Python fallbacks of C modules: imported only when the C module is missing,
    // which happens (if at all) while their package loads at pre-initialisation.
    "_py_abc",
    "_py_warnings",
    "_pydatetime",
    "_pydecimal",
    "_pyio",
    // Cannot work in a WASI component, or development tools.
    "__hello__",
    "__phello__",
    "_pyrepl",
    "_tkinter",
    "antigravity",
    "asyncio.windows_events",
    "asyncio.windows_utils",
    "ctypes",
    "curses",
    "_curses",
    "dbm",
    "distutils",
    "doctest",
    "ensurepip",
    "idlelib",
    "lib2to3",
    "multiprocessing",
    "pdb",
    "pip",
    "pydoc",
    "pydoc_data",
    "setuptools",
    "pkg_resources",
    "test",
    "this",
    "tkinter",
    "turtle",
    "turtledemo",
    "unittest",
    "venv",
    "webbrowser",
    "wsgiref",
    "xmlrpc",
    "zipapp",
];

/// Which componentize-py and which host python kiln will use.
///
/// Resolving it is cheap (nothing is installed), so the plan and `--dry-run` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PythonToolchain {
    /// The host python that drives pip, the project's build backend and `modulefinder`.
    pub python: PathBuf,
    pub componentize_py: ComponentizePy,
}

/// Where componentize-py comes from.
#[derive(Debug, Clone, Serialize)]
pub enum ComponentizePy {
    /// Already installed at the pinned version.
    Found { path: PathBuf },
    /// kiln will create this virtual environment and install the pinned version in it.
    Provision { venv: PathBuf },
}

/// Why a Python project could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PythonBuildError {
    #[error("No host Python found: `python3` is not on `PATH`")]
    PythonNotFound,
    #[error("`KILN_PYTHON` is `{value}`, which is not a program that exists")]
    KilnPythonMissing { value: String },
    #[error("Failed to install componentize-py {COMPONENTIZE_PY_VERSION} into `{}`", venv.display())]
    Provision {
        venv: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error("Failed to build the wheel of `{project}` with its build backend")]
    ProjectWheel {
        project: String,
        #[source]
        source: ProcessError,
    },
    #[error("The wheel built for `{project}` is `{wheel}`, which is not pure Python")]
    NativeProjectWheel { project: String, wheel: String },
    #[error("Dependency `{package}` has no pure-Python or WASI wheel for CPython {TARGET_PYTHON}")]
    NoWasiWheel {
        package: String,
        #[source]
        source: ProcessError,
    },
    #[error(
        "No version of dependency `{requirement}` has a pure-Python or WASI wheel for CPython {TARGET_PYTHON}"
    )]
    NoMatchingVersion {
        requirement: String,
        available: String,
        #[source]
        source: ProcessError,
    },
    #[error(
        "`{package}` does not support CPython {TARGET_PYTHON} (it requires Python `{specifier}`)"
    )]
    RequiresPython {
        package: String,
        specifier: String,
        #[source]
        source: ProcessError,
    },
    #[error("Could not reach the package index to install dependencies")]
    IndexUnreachable {
        #[source]
        source: ProcessError,
    },
    #[error("Failed to install the dependencies for CPython {TARGET_PYTHON} on WASI")]
    Dependencies {
        #[source]
        source: ProcessError,
    },
    #[error("Entry script `{}` does not exist", path.display())]
    EntryMissing { path: PathBuf },
    #[error("Failed to find the import graph of `{entry}`")]
    ImportGraph {
        entry: String,
        #[source]
        source: ProcessError,
    },
    #[error("The import graph finder wrote unreadable output to `{}`", path.display())]
    ImportGraphOutput {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("Entry point `{entry}` failed to load while componentize-py pre-initialised it")]
    EntryPoint {
        entry: String,
        #[source]
        source: ProcessError,
    },
    #[error("componentize-py failed to build the component")]
    Componentize {
        #[source]
        source: ProcessError,
    },
    #[error("componentize-py reported success but wrote no `{}`", path.display())]
    NoOutput { path: PathBuf },
    #[error("Failed to {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for PythonBuildError {
    fn hint(&self) -> Option<String> {
        use PythonBuildError::*;
        Some(match self {
            PythonNotFound => {
                "install Python 3 (`apt-get install -y python3 python3-venv`) or point \
                 `KILN_PYTHON` at a python3 executable"
                    .to_string()
            }
            KilnPythonMissing { .. } => {
                "set `KILN_PYTHON` to a python3 executable (a path, or a name on `PATH`), or \
                 unset it to use `python3`"
                    .to_string()
            }
            Provision { venv, .. } => format!(
                "kiln needs `python3 -m venv` (Debian: `apt-get install -y python3-venv`) and \
                 access to PyPI; to check, run `python3 -m venv {venv} && {venv}/bin/pip \
                 install componentize-py=={COMPONENTIZE_PY_VERSION}`",
                venv = venv.display()
            ),
            ProjectWheel { .. } => {
                "the project must build with `pip wheel --no-deps .`; run it in \
                 the project directory to see the build backend's error"
                    .to_string()
            }
            NativeProjectWheel { .. } => "the project compiles native extensions, which cannot \
                 run in a WASI component: make them optional or ship pure-Python fallbacks"
                .to_string(),
            NoWasiWheel { package, .. } => format!(
                "native extensions cannot run in a WASI component: use a pure-Python \
                 alternative to `{package}` or drop it; if `{package}` is pure Python but \
                 publishes only a source distribution, build its wheel (`pip wheel --no-deps \
                 {package}`) into a directory named by `PIP_FIND_LINKS`"
            ),
            NoMatchingVersion { available, .. } => format!(
                "versions with a usable wheel: {available}; change the version constraint to \
                 one of these"
            ),
            RequiresPython { package, .. } => format!(
                "the component runs CPython {TARGET_PYTHON}: use a version of `{package}` that \
                 supports it"
            ),
            IndexUnreachable { .. } => "check the network and the index settings \
                 (`PIP_INDEX_URL`, `PIP_FIND_LINKS`, proxies) that pip uses"
                .to_string(),
            Dependencies { .. } => format!(
                "pip's output is above; reproduce with `pip install --target deps \
                 --python-version {TARGET_PYTHON} --implementation cp --abi {TARGET_ABI} \
                 --platform any --only-binary=:all: ...`"
            ),
            EntryMissing { .. } => "set the entry point in `[tool.kiln] entry` of \
                 `pyproject.toml`, or in `kiln.toml`"
                .to_string(),
            ImportGraph { .. } | ImportGraphOutput { .. } => {
                "this is a kiln defect: rerun with `KILN_LOG=debug` and report it".to_string()
            }
            EntryPoint { .. } => "the traceback above comes from CPython 3.14 inside the \
                 component: make the entry point importable there (no native extensions, no \
                 host-only modules at import time)"
                .to_string(),
            Componentize { .. } | NoOutput { .. } => format!(
                "componentize-py {COMPONENTIZE_PY_VERSION}'s output is above; rerun with \
                 `KILN_LOG=debug` to see the command"
            ),
            Io { .. } => return None,
        })
    }

    fn blame(&self) -> Blame {
        use PythonBuildError::*;
        match self {
            ImportGraph { .. }
            | ImportGraphOutput { .. }
            | Componentize { .. }
            | NoOutput { .. }
            | Io { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

/// Resolves the host python and componentize-py without installing anything.
///
/// The host python is `KILN_PYTHON`, else `python3` on `PATH`. componentize-py is kiln's
/// own provisioned copy when present, else one on `PATH` whose version is the pinned
/// one, else it is to be provisioned under `tools_dir`.
pub fn resolve_toolchain(tools_dir: &Path) -> Result<PythonToolchain, PythonBuildError> {
    let python = match crate::env::var(crate::env::KILN_PYTHON) {
        Some(value) => {
            process::find_program(&value).ok_or(PythonBuildError::KilnPythonMissing { value })?
        }
        None => process::find_program("python3").ok_or(PythonBuildError::PythonNotFound)?,
    };
    let venv = provisioned_venv(tools_dir);
    let provisioned = venv_bin(&venv).join("componentize-py");
    let componentize_py = if provisioned.is_file() {
        ComponentizePy::Found { path: provisioned }
    } else if let Some(path) = pinned_on_path() {
        ComponentizePy::Found { path }
    } else {
        ComponentizePy::Provision { venv }
    };
    Ok(PythonToolchain {
        python,
        componentize_py,
    })
}

fn provisioned_venv(tools_dir: &Path) -> PathBuf {
    tools_dir.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"))
}

fn venv_bin(venv: &Path) -> PathBuf {
    venv.join(if cfg!(windows) { "Scripts" } else { "bin" })
}

/// A `componentize-py` on `PATH`, if it reports exactly the pinned version.
fn pinned_on_path() -> Option<PathBuf> {
    let path = which::which("componentize-py").ok()?;
    let output = std::process::Command::new(&path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    (output.status.success()
        && version.trim() == format!("componentize-py {COMPONENTIZE_PY_VERSION}"))
    .then_some(path)
}

/// What a finished build in `work_dir` leaves for its SBOM: the directory the
/// dependencies were installed into, and the project's own distribution name, read from
/// the wheel its build backend made (`legacy_tool-2.5.0-py3-none-any.whl`: a `setup.py`
/// may name its distribution unlike its directory). `None` for requirements-only apps.
pub fn sbom_inputs(work_dir: &Path) -> (PathBuf, Option<String>) {
    let layout = Layout::new(work_dir);
    let dist = std::fs::read_dir(&layout.wheel_dir)
        .ok()
        .and_then(|entries| {
            entries.flatten().find_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".whl")?;
                stem.split('-').next().map(str::to_string)
            })
        });
    (layout.deps, dist)
}

/// The scratch layout of one build, under the `work_dir` kiln gives the builder.
struct Layout {
    /// The generated entry module (and a script entry's source).
    gen_dir: PathBuf,
    /// The WIT world.
    wit_dir: PathBuf,
    /// The dependencies, installed for CPython 3.14 on WASI.
    deps: PathBuf,
    /// The project's own wheel (pyproject projects).
    wheel_dir: PathBuf,
    /// An empty virtual environment, so componentize-py adds no host site-packages.
    isolated_env: PathBuf,
    /// The import-graph finder, its input and its output.
    imports_py: PathBuf,
    imports_spec: PathBuf,
    imports_out: PathBuf,
    output: PathBuf,
}

impl Layout {
    fn new(work_dir: &Path) -> Layout {
        Layout {
            gen_dir: work_dir.join("entry"),
            wit_dir: work_dir.join("wit"),
            deps: work_dir.join("deps"),
            wheel_dir: work_dir.join("wheel"),
            isolated_env: work_dir.join("no-site"),
            imports_py: work_dir.join("imports.py"),
            imports_spec: work_dir.join("imports-spec.json"),
            imports_out: work_dir.join("imports.json"),
            output: work_dir.join("app.wasm"),
        }
    }

    async fn prepare(&self) -> Result<(), PythonBuildError> {
        for dir in [&self.gen_dir, &self.wit_dir, &self.deps, &self.wheel_dir] {
            match tokio::fs::remove_dir_all(dir).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error("remove", dir, source)),
            }
            create_dir(dir)?;
        }
        create_dir(&self.isolated_env.join("lib").join("site-packages"))?;
        remove_file(&self.output)?;
        write(&self.wit_dir.join("kiln.wit"), WIT)?;
        write(&self.imports_py, IMPORTS_PY)
    }
}

/// Builds `project` into a component in `work_dir`.
pub async fn build(
    project: &Project,
    py: &PythonProject,
    toolchain: &PythonToolchain,
    work_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<Built, PythonBuildError> {
    let componentize_py = match &toolchain.componentize_py {
        ComponentizePy::Found { path } => path.clone(),
        ComponentizePy::Provision { venv } => {
            reporter.step(&format!(
                "Installing componentize-py {COMPONENTIZE_PY_VERSION} into {}",
                venv.display()
            ));
            provision(&toolchain.python, venv, reporter).await?
        }
    };
    let pip_python = pip_python(&componentize_py, &toolchain.python);

    let layout = Layout::new(work_dir);
    layout.prepare().await?;

    let installed = install_dependencies(project, py, &pip_python, &layout, reporter).await?;

    // The directories componentize-py reads, in `sys.path` order: like `python app.py`,
    // a script's directory comes before the installed packages.
    let mut python_path = vec![layout.gen_dir.clone()];
    let carries_project = matches!(py.source, PythonSource::Requirements { .. })
        || matches!(py.entry, PythonEntry::Script { .. });
    if carries_project {
        python_path.push(project.root.clone());
    }
    python_path.push(layout.deps.clone());

    reporter.step("Finding the app's import graph");
    let graph = import_graph(project, py, toolchain, &python_path[1..], &layout, reporter).await?;

    let (rendered, script_source) = render_entry(&py.entry, &graph);
    if let Some(source) = script_source {
        let path = project.root.join(source);
        let bytes = std::fs::read(&path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => PythonBuildError::EntryMissing { path: path.clone() },
            _ => io_error("read", &path, err),
        })?;
        write(&layout.gen_dir.join(SCRIPT_COPY), bytes)?;
    }
    write(&layout.gen_dir.join(format!("{ENTRY_MODULE}.py")), rendered)?;

    reporter.step(&format!(
        "Building the component with componentize-py {COMPONENTIZE_PY_VERSION}"
    ));
    let mut cmd = Command::new(&componentize_py);
    cmd.arg("-d")
        .arg(&layout.wit_dir)
        .args(["-w", WORLD, "componentize", ENTRY_MODULE]);
    for dir in &python_path {
        cmd.arg("-p").arg(dir);
    }
    cmd.arg("-o")
        .arg(&layout.output)
        .current_dir(work_dir)
        // Without this, componentize-py appends the site-packages of whatever python or
        // pipenv it finds, and host packages could be carried.
        .env("VIRTUAL_ENV", &layout.isolated_env)
        .env_remove("PYTHONPATH")
        // A failure's tail should be the app's Python traceback, not a Rust backtrace.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    process::run(&mut cmd, reporter)
        .await
        .map_err(|source| match &source {
            ProcessError::Failed { stderr, stdout, .. }
                if stderr.contains(ENTRY_FAILED_MARKER) || stdout.contains(ENTRY_FAILED_MARKER) =>
            {
                PythonBuildError::EntryPoint {
                    entry: py.entry.to_string(),
                    source,
                }
            }
            _ => PythonBuildError::Componentize { source },
        })?;
    if !layout.output.is_file() {
        return Err(PythonBuildError::NoOutput {
            path: layout.output,
        });
    }

    let report = layout.gen_dir.join(CARRIED_REPORT);
    let carried = std::fs::read_to_string(&report)
        .ok()
        .and_then(|report| carried_count(&report))
        .map_or_else(|| "unknown".to_string(), |n| n.to_string());
    Ok(Built {
        wasm: layout.output,
        kind: WasmKind::Component,
        toolchain: format!(
            "componentize-py {COMPONENTIZE_PY_VERSION} (CPython {TARGET_PYTHON} for WASI)"
        ),
        facts: vec![
            ("carried modules".to_string(), carried),
            (
                "dependencies".to_string(),
                installed.dependencies.to_string(),
            ),
        ],
        version: installed.version,
    })
}

/// Creates the virtual environment with the pinned componentize-py, atomically: it is
/// installed in a temporary sibling directory that is renamed into place when complete.
async fn provision(
    python: &Path,
    venv: &Path,
    reporter: &dyn Reporter,
) -> Result<PathBuf, PythonBuildError> {
    let parent = venv.parent().unwrap_or(Path::new("."));
    create_dir(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".componentize-py-")
        .tempdir_in(parent)
        .map_err(|source| io_error("create a directory in", parent, source))?;
    let failed = |source| PythonBuildError::Provision {
        venv: venv.to_path_buf(),
        source,
    };
    process::run(
        // `--copies`: no link to the host's python, so the cache can carry the venv.
        Command::new(python)
            .args(["-m", "venv", "--copies"])
            .arg(staging.path()),
        reporter,
    )
    .await
    .map_err(failed)?;
    let staged_bin = venv_bin(staging.path());
    process::run(
        Command::new(staged_bin.join("python"))
            .env("PIP_CACHE_DIR", crate::cache::pip_cache_dir())
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
        reporter,
    )
    .await
    .map_err(failed)?;

    // pip wrote the staging path into the launcher's `#!` line: point it at the final one.
    let launcher = staged_bin.join("componentize-py");
    let script = std::fs::read(&launcher).map_err(|e| io_error("read", &launcher, e))?;
    let fixed = replace_bytes(
        &script,
        staging.path().as_os_str().as_encoded_bytes(),
        venv.as_os_str().as_encoded_bytes(),
    );
    write(&launcher, fixed)?;

    let staged = staging.keep();
    match std::fs::rename(&staged, venv) {
        Ok(()) => {}
        // Another kiln finished first: use its copy.
        Err(_) if venv_bin(venv).join("componentize-py").is_file() => {
            let _ = std::fs::remove_dir_all(&staged);
        }
        Err(source) => {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(io_error("move the provisioned venv to", venv, source));
        }
    }
    Ok(venv_bin(venv).join("componentize-py"))
}

/// The python whose pip installs dependencies: the one of componentize-py's virtual
/// environment (which has pip), else the host's.
fn pip_python(componentize_py: &Path, host: &Path) -> PathBuf {
    let in_venv = componentize_py.parent().map(|bin| bin.join("python"));
    match in_venv {
        Some(python)
            if python.is_file()
                && componentize_py
                    .parent()
                    .and_then(Path::parent)
                    .is_some_and(|venv| venv.join("pyvenv.cfg").is_file()) =>
        {
            python
        }
        _ => host.to_path_buf(),
    }
}

/// The pip options that resolve for the Python inside the component.
fn target_options() -> Vec<String> {
    [
        "--python-version",
        TARGET_PYTHON,
        "--implementation",
        "cp",
        "--abi",
        TARGET_ABI,
        "--abi",
        "abi3",
        "--abi",
        "none",
        "--platform",
        "any",
        "--platform",
        WASI_PLATFORM,
        "--only-binary=:all:",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn pip(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip"])
        // A cache kiln can save and restore (`PIP_CACHE_DIR` when the user set one).
        .env("PIP_CACHE_DIR", crate::cache::pip_cache_dir())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// What [`install_dependencies`] put in `layout.deps`.
struct Installed {
    /// How many distributions are dependencies (the project's own wheel excluded).
    dependencies: usize,
    /// The version the project's own wheel was built with (dynamic versions included).
    version: Option<String>,
}

/// Installs what the component imports into `layout.deps`.
async fn install_dependencies(
    project: &Project,
    py: &PythonProject,
    python: &Path,
    layout: &Layout,
    reporter: &dyn Reporter,
) -> Result<Installed, PythonBuildError> {
    let mut install = pip(python);
    install
        .args([
            "install",
            "--no-compile",
            "--no-warn-script-location",
            "--target",
        ])
        .arg(&layout.deps)
        .args(target_options());
    let own = match &py.source {
        PythonSource::Wheel { .. } => {
            reporter.step(&format!("Building the wheel of {}", project.name));
            let before = backend_leftovers(&project.root);
            let built = process::run(
                pip(python)
                    .args(["wheel", "--no-deps", "--wheel-dir"])
                    .arg(&layout.wheel_dir)
                    .arg(&project.root),
                reporter,
            )
            .await;
            // setuptools builds in the source tree (`build/`, `*.egg-info`): leave the
            // project as it was.
            for leftover in backend_leftovers(&project.root).difference(&before) {
                if let Err(err) = std::fs::remove_dir_all(leftover) {
                    tracing::debug!(path = %leftover.display(), %err, "could not remove");
                }
            }
            built.map_err(|source| PythonBuildError::ProjectWheel {
                project: project.name.clone(),
                source,
            })?;
            let wheel = built_wheel(&layout.wheel_dir)?;
            let name = wheel.file_name().unwrap_or_default().to_string_lossy();
            if !is_pure_wheel(&name) {
                return Err(PythonBuildError::NativeProjectWheel {
                    project: project.name.clone(),
                    wheel: name.into_owned(),
                });
            }
            // `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
            let version = name.split('-').nth(1).map(str::to_string);
            install.arg(&wheel);
            (1, version)
        }
        PythonSource::Requirements { files } => {
            if files.is_empty() {
                return Ok(Installed {
                    dependencies: 0,
                    version: None,
                });
            }
            for file in files {
                install.arg("-r").arg(project.root.join(file));
            }
            (0, None)
        }
    };
    let (own, version) = own;
    reporter.step(&format!(
        "Installing dependencies for CPython {TARGET_PYTHON} on WASI"
    ));
    // Pure-Python packages that publish only a source distribution (docopt, ...) are
    // built into wheels here, one at a time, and offered to the next attempt.
    let sdist_wheels = layout.wheel_dir.join("from-sdist");
    create_dir(&sdist_wheels)?;
    install.arg("--find-links").arg(&sdist_wheels);
    let mut built_from_sdist = Vec::new();
    loop {
        let Err(source) = process::run(&mut install, reporter).await else {
            break;
        };
        let failure = match &source {
            ProcessError::Failed { stdout, stderr, .. } => {
                parse_pip_failure(&format!("{stdout}\n{stderr}"))
            }
            ProcessError::Spawn { .. } => PipFailure::Other,
        };
        match failure {
            PipFailure::NoWheel {
                package,
                requirement,
            } if !built_from_sdist.contains(&package)
                && wheel_from_sdist(python, &requirement, &sdist_wheels, reporter).await =>
            {
                built_from_sdist.push(package);
            }
            _ => return Err(pip_error(source)),
        }
    }
    let installed = std::fs::read_dir(&layout.deps)
        .map_err(|e| io_error("read", &layout.deps, e))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".dist-info"))
        .count();
    Ok(Installed {
        dependencies: installed.saturating_sub(own),
        version,
    })
}

/// Builds a pure-Python wheel for `requirement` from its source distribution into
/// `dir`, when it has no wheel at all. Returns whether one was built: a package with a
/// wheel for the host only (a native extension) or whose build gives a platform wheel
/// is not pure, and stays an error.
async fn wheel_from_sdist(
    python: &Path,
    requirement: &str,
    dir: &Path,
    reporter: &dyn Reporter,
) -> bool {
    let Ok(probe) = tempfile::tempdir() else {
        return false;
    };
    // A wheel for this machine but none for the component means native code.
    let has_binary = process::run(
        pip(python)
            .args(["download", "--no-deps", "--only-binary=:all:", "--dest"])
            .arg(probe.path())
            .arg(requirement),
        reporter,
    )
    .await
    .is_ok();
    if has_binary {
        return false;
    }
    reporter.step(&format!(
        "Building `{requirement}` from its source distribution"
    ));
    let Ok(staging) = tempfile::tempdir() else {
        return false;
    };
    let built = process::run(
        pip(python)
            .args(["wheel", "--no-deps", "--no-binary=:all:", "--wheel-dir"])
            .arg(staging.path())
            .arg(requirement),
        reporter,
    )
    .await;
    let Ok(Some(wheel)) = built.map(|_| {
        std::fs::read_dir(staging.path())
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
    }) else {
        return false;
    };
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    if !is_pure_wheel(&name) {
        tracing::debug!(%name, "the source distribution built a platform wheel");
        return false;
    }
    std::fs::copy(&wheel, dir.join(&*name)).is_ok()
}

/// What build backends leave in a source tree: `build/` and `*.egg-info` at the root, in
/// `src/` or in a top-level package directory.
fn backend_leftovers(root: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    let build = root.join("build");
    if build.is_dir() {
        found.insert(build);
    }
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir() && !path.ends_with(".git")),
        );
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        found.extend(
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "egg-info")),
        );
    }
    found
}

/// The one wheel `pip wheel` wrote.
fn built_wheel(dir: &Path) -> Result<PathBuf, PythonBuildError> {
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error("read", dir, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    wheels.sort();
    wheels.pop().ok_or_else(|| {
        io_error(
            "find the built wheel in",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// Whether a wheel file name's tags (`name-version-python-abi-platform.whl`) say it runs
/// on any platform, or on WASI.
fn is_pure_wheel(file_name: &str) -> bool {
    let stem = file_name.strip_suffix(".whl").unwrap_or(file_name);
    stem.rsplit('-').next().is_some_and(|platforms| {
        platforms
            .split('.')
            .all(|p| p == "any" || p.starts_with("wasi"))
    })
}

/// What a failed `pip install` for the target said, as far as kiln can tell.
#[derive(Debug, PartialEq, Eq)]
enum PipFailure {
    NoWheel {
        package: String,
        /// The requirement as pip reported it (`docopt>=0.6`).
        requirement: String,
    },
    NoMatchingVersion {
        requirement: String,
        available: String,
    },
    RequiresPython {
        package: String,
        specifier: String,
    },
    Unreachable,
    Other,
}

fn parse_pip_failure(output: &str) -> PipFailure {
    const UNREACHABLE: &[&str] = &[
        "NewConnectionError",
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Max retries exceeded",
        "Could not fetch URL",
        "ProxyError",
        "ConnectTimeoutError",
    ];
    for line in output.lines() {
        // pip: "Package 'x' requires a different Python: 3.14.0 not in '<3.12'"
        if let Some(rest) = line.split("Package '").nth(1)
            && let Some((package, rest)) = rest.split_once("' requires a different Python")
        {
            let specifier = rest
                .rsplit(" not in ")
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('\'')
                .to_string();
            return PipFailure::RequiresPython {
                package: package.to_string(),
                specifier,
            };
        }
    }
    if UNREACHABLE.iter().any(|needle| output.contains(needle)) {
        return PipFailure::Unreachable;
    }
    let Some(requirement) = output.lines().find_map(|line| {
        line.split("No matching distribution found for ")
            .nth(1)
            .map(|r| r.trim().to_string())
    }) else {
        return PipFailure::Other;
    };
    // "Could not find a version that satisfies the requirement numpy>=1.26 (from pandas)
    // (from versions: none)"
    let available = output
        .lines()
        .filter(|line| line.contains("satisfies the requirement"))
        .filter(|line| line.contains(&requirement))
        .find_map(|line| {
            line.rsplit_once("(from versions: ")
                .map(|(_, rest)| rest.trim_end().trim_end_matches(')').to_string())
        })
        .unwrap_or_else(|| "none".to_string());
    if available == "none" {
        PipFailure::NoWheel {
            package: requirement_name(&requirement).to_string(),
            requirement,
        }
    } else {
        PipFailure::NoMatchingVersion {
            requirement,
            available,
        }
    }
}

/// The distribution name at the start of a requirement (`numpy>=1.26; python_version>"3"`).
fn requirement_name(requirement: &str) -> &str {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .unwrap_or(requirement.len());
    &requirement[..end]
}

fn pip_error(source: ProcessError) -> PythonBuildError {
    let output = match &source {
        ProcessError::Failed { stdout, stderr, .. } => format!("{stdout}\n{stderr}"),
        ProcessError::Spawn { .. } => return PythonBuildError::Dependencies { source },
    };
    match parse_pip_failure(&output) {
        PipFailure::NoWheel { package, .. } => PythonBuildError::NoWasiWheel { package, source },
        PipFailure::NoMatchingVersion {
            requirement,
            available,
        } => PythonBuildError::NoMatchingVersion {
            requirement,
            available,
            source,
        },
        PipFailure::RequiresPython { package, specifier } => PythonBuildError::RequiresPython {
            package,
            specifier,
            source,
        },
        PipFailure::Unreachable => PythonBuildError::IndexUnreachable { source },
        PipFailure::Other => PythonBuildError::Dependencies { source },
    }
}

/// What `imports.py` reads.
#[derive(Debug, Serialize)]
struct GraphSpec<'a> {
    script: Option<PathBuf>,
    modules: Vec<String>,
    path: &'a [PathBuf],
    excludes: &'a [&'a str],
}

/// What `imports.py` writes.
#[derive(Debug, serde::Deserialize)]
struct GraphFound {
    modules: Vec<String>,
    missing: Vec<String>,
}

/// The modules the entry module imports at pre-initialisation: what `modulefinder`
/// found from the entry point, then what it could not find on the host (they may be in
/// the component's newer standard library).
async fn import_graph(
    project: &Project,
    py: &PythonProject,
    toolchain: &PythonToolchain,
    path: &[PathBuf],
    layout: &Layout,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, PythonBuildError> {
    let (script, modules) = match &py.entry {
        PythonEntry::Function { module, .. } => (None, vec![module.clone()]),
        PythonEntry::Package { package, .. } => {
            (None, vec![package.clone(), format!("{package}.__main__")])
        }
        PythonEntry::Script { path } => (Some(project.root.join(path)), vec![]),
    };
    if let Some(script) = &script
        && !script.is_file()
    {
        return Err(PythonBuildError::EntryMissing {
            path: script.clone(),
        });
    }
    let spec = GraphSpec {
        script,
        modules,
        path,
        excludes: EXCLUDED_MODULES,
    };
    write(
        &layout.imports_spec,
        serde_json::to_vec_pretty(&spec).expect("the spec serialises"),
    )?;
    process::run(
        Command::new(&toolchain.python)
            .arg(&layout.imports_py)
            .arg(&layout.imports_spec)
            .arg(&layout.imports_out)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH"),
        reporter,
    )
    .await
    .map_err(|source| PythonBuildError::ImportGraph {
        entry: py.entry.to_string(),
        source,
    })?;
    let bytes =
        std::fs::read(&layout.imports_out).map_err(|e| io_error("read", &layout.imports_out, e))?;
    let found: GraphFound =
        serde_json::from_slice(&bytes).map_err(|source| PythonBuildError::ImportGraphOutput {
            path: layout.imports_out.clone(),
            source,
        })?;
    let mut graph = found.modules;
    graph.extend(found.missing);
    Ok(graph)
}

/// The entry module's source for `entry`, and for a script entry the script to copy
/// beside it (relative to the project root).
fn render_entry(entry: &PythonEntry, carry: &[String]) -> (String, Option<PathBuf>) {
    let (kind, target, attribute, filename, script) = match entry {
        PythonEntry::Function {
            module, function, ..
        } => (
            "function",
            module.clone(),
            function.clone(),
            String::new(),
            None,
        ),
        PythonEntry::Package { package, path } => (
            "package",
            package.clone(),
            String::new(),
            slash_path(path),
            None,
        ),
        PythonEntry::Script { path } => (
            "script",
            slash_path(path),
            String::new(),
            slash_path(path),
            Some(path.clone()),
        ),
    };
    // A JSON string or list of strings is also a valid Python literal.
    let literal = |value: &str| serde_json::to_string(value).expect("a string serialises");
    let rendered = ENTRY_TEMPLATE
        .replace("@KIND@", &literal(kind))
        .replace("@TARGET@", &literal(&target))
        .replace("@ATTRIBUTE@", &literal(&attribute))
        .replace("@FILENAME@", &literal(&filename))
        .replace(
            "@CARRY@",
            &serde_json::to_string_pretty(carry).expect("strings serialise"),
        );
    (rendered, script)
}

fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// How many modules the entry module's report says the component carries.
fn carried_count(report: &str) -> Option<usize> {
    report
        .lines()
        .find_map(|line| line.strip_prefix("total ")?.trim().parse().ok())
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> PythonBuildError {
    PythonBuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn create_dir(path: &Path) -> Result<(), PythonBuildError> {
    std::fs::create_dir_all(path).map_err(|e| io_error("create", path, e))
}

fn remove_file(path: &Path) -> Result<(), PythonBuildError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("remove", path, err))
        }
        _ => Ok(()),
    }
}

fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), PythonBuildError> {
    std::fs::write(path, contents).map_err(|e| io_error("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMPY: &str = "Looking in links: /opt/wheels
ERROR: Could not find a version that satisfies the requirement numpy>=1.26 (from versions: none)
ERROR: No matching distribution found for numpy>=1.26
";

    #[test]
    fn native_dependency_is_named() {
        assert_eq!(
            parse_pip_failure(NUMPY),
            PipFailure::NoWheel {
                package: "numpy".to_string(),
                requirement: "numpy>=1.26".to_string()
            }
        );
    }

    #[test]
    fn unavailable_version_lists_the_usable_ones() {
        let output = "ERROR: Could not find a version that satisfies the requirement \
            tabulate==0.1.0 (from versions: 0.8.10, 0.9.0)\n\
            ERROR: No matching distribution found for tabulate==0.1.0\n";
        assert_eq!(
            parse_pip_failure(output),
            PipFailure::NoMatchingVersion {
                requirement: "tabulate==0.1.0".to_string(),
                available: "0.8.10, 0.9.0".to_string()
            }
        );
    }

    #[test]
    fn requires_python_names_package_and_specifier() {
        let output = "Processing ./wheel/app-1.0-py3-none-any.whl\n\
            ERROR: Package 'app' requires a different Python: 3.14.0 not in '<3.12,>=3.9'\n";
        assert_eq!(
            parse_pip_failure(output),
            PipFailure::RequiresPython {
                package: "app".to_string(),
                specifier: "<3.12,>=3.9".to_string()
            }
        );
    }

    #[test]
    fn connection_errors_are_told_apart() {
        let output = "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, \
            status=None)) after connection broken by 'NewConnectionError(...)': /simple/six/\n\
            ERROR: Could not find a version that satisfies the requirement six (from versions: none)\n\
            ERROR: No matching distribution found for six\n";
        assert_eq!(parse_pip_failure(output), PipFailure::Unreachable);
        assert_eq!(
            parse_pip_failure("ERROR: something else\n"),
            PipFailure::Other
        );
    }

    #[test]
    fn requirement_names() {
        assert_eq!(requirement_name("numpy"), "numpy");
        assert_eq!(requirement_name("typed-ast==1.5.5"), "typed-ast");
        assert_eq!(
            requirement_name("zope.interface[test]>=5"),
            "zope.interface"
        );
        assert_eq!(requirement_name("numpy; python_version > \"3\""), "numpy");
    }

    #[test]
    fn wheel_tags() {
        assert!(is_pure_wheel("rot13_cli-1.2.0-py3-none-any.whl"));
        assert!(is_pure_wheel("six-1.17.0-py2.py3-none-any.whl"));
        assert!(is_pure_wheel("x-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl"));
        assert!(!is_pure_wheel("x-1.0-cp311-cp311-linux_x86_64.whl"));
        assert!(!is_pure_wheel(
            "x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
    }

    fn entries() -> [PythonEntry; 3] {
        [
            PythonEntry::Function {
                module: "pkg.cli".to_string(),
                function: "App.main".to_string(),
                origin: "[project.scripts] app".to_string(),
            },
            PythonEntry::Package {
                package: "pkg".to_string(),
                path: PathBuf::from("src/pkg/__main__.py"),
            },
            PythonEntry::Script {
                path: PathBuf::from("app \"quoted\".py"),
            },
        ]
    }

    #[test]
    fn entry_module_has_every_placeholder_filled() {
        for entry in entries() {
            let (source, script) = render_entry(&entry, &["json".to_string()]);
            for placeholder in ["@KIND@", "@TARGET@", "@ATTRIBUTE@", "@FILENAME@", "@CARRY@"] {
                assert!(
                    !source.contains(placeholder),
                    "{placeholder} left in {entry}"
                );
            }
            assert_eq!(
                script.is_some(),
                matches!(entry, PythonEntry::Script { .. })
            );
        }
        let (source, _) = render_entry(&entries()[0], &[]);
        assert!(source.contains("_KIND = \"function\"\n"), "{source}");
        assert!(source.contains("_ATTRIBUTE = \"App.main\"\n"), "{source}");
        let (source, _) = render_entry(&entries()[2], &[]);
        assert!(
            source.contains(r#"_FILENAME = "app \"quoted\".py""#),
            "{source}"
        );
    }

    /// The rendered entry module is valid Python (checked by the host's python3, when
    /// there is one: the module itself only runs inside componentize-py).
    #[test]
    fn entry_module_parses_as_python() {
        let Some(python) = process::find_program("python3") else {
            return;
        };
        for entry in entries() {
            let (source, _) = render_entry(&entry, &["json".to_string(), "a.b".to_string()]);
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("entry.py");
            std::fs::write(&file, &source).unwrap();
            let status = std::process::Command::new(&python)
                .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
                .arg(&file)
                .status()
                .unwrap();
            assert!(status.success(), "{entry}:\n{source}");
        }
    }

    #[test]
    fn carried_count_is_read_from_the_preinit_report() {
        let report = "carried json\nfailed winreg: ModuleNotFoundError: No module named 'winreg'\ntotal 212\n";
        assert_eq!(carried_count(report), Some(212));
        assert_eq!(carried_count("nothing"), None);
    }

    #[test]
    fn launcher_paths_are_rewritten() {
        let script = b"#!/tools/.componentize-py-abc/bin/python\nimport x\n";
        assert_eq!(
            replace_bytes(
                script,
                b"/tools/.componentize-py-abc",
                b"/tools/componentize-py-0.25.1"
            ),
            b"#!/tools/componentize-py-0.25.1/bin/python\nimport x\n"
        );
    }

    #[test]
    fn errors_read_as_sentences_with_hints() {
        let err = PythonBuildError::NoWasiWheel {
            package: "numpy".to_string(),
            source: ProcessError::Spawn {
                command: "pip".to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
        };
        assert_eq!(
            err.to_string(),
            "Dependency `numpy` has no pure-Python or WASI wheel for CPython 3.14"
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("pure-Python alternative to `numpy`")
        );
        assert_eq!(err.blame(), Blame::User);
    }

    #[test]
    fn provisioned_venv_is_versioned() {
        let venv = provisioned_venv(Path::new("/tools"));
        assert_eq!(venv, Path::new("/tools/componentize-py-0.25.1"));
    }
}
