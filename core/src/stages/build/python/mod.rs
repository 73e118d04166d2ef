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
//! 3. Generates the `wasi:cli/run` world, the in-memory site (`site.py`) and the entry
//!    module. A component has no file system, and componentize-py carries only what is
//!    in memory when pre-initialisation ends; so at pre-initialisation the entry module
//!    first keeps every file of the app's distributions and of the standard library in
//!    memory, compressed, and serves imports, resources, metadata and reads from there
//!    (whatever computes a module's name, whatever file the app reads beside its code),
//!    then imports the entry point. It starts the app the way `python` would.
//! 4. Runs componentize-py and returns the component.

use std::path::{Path, PathBuf};

use crate::diagnose::{Blame, Diagnose};
use crate::process::{Cmd, ProcessError};
use crate::project::{Project, PythonEntry, PythonProject, PythonSource};
use crate::reporter::Reporter;

pub mod cache;
mod entry;
mod pip;
mod provision;
mod toolchain;

pub use toolchain::{ComponentizePy, PythonToolchain, resolve_toolchain};

use entry::{
    CARRIED_REPORT, Carried, ENTRY_MODULE, ENTRY_TEMPLATE, PROJECT_FILES, SCRIPT_COPY, SITE_MODULE,
    SITE_MODULE_SOURCE, render_entry, slash_path,
};
use pip::{install_dependencies, pip_python};
use provision::provision;

use super::{Built, Context, SbomInputs, WasmKind};
use crate::toolchain::{COMPONENTIZE_PY_VERSION, TARGET_ABI, TARGET_PYTHON};

/// The WIT world the component targets: it exports `wasi:cli/run`.
const WIT: &str = include_str!("wit/kiln.wit");
/// See the script.
const PURIFY_PY: &str = include_str!("purify.py");
const WORLD: &str = "kiln-command";
/// What the entry module prints at pre-initialisation when the entry point fails.
const ENTRY_FAILED_MARKER: &str = "kiln: the entry point";

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
                "native extensions cannot run in a WASI component, and `{package}` did not \
                 build without them from its source distribution (with `KILN_LOG=debug`, \
                 kiln shows why): use a pure-Python alternative to `{package}` or drop it"
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
            Componentize { .. } | NoOutput { .. } | Io { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

/// A digest of everything this builder generates into a component (the world, the
/// entry and site modules, the wheel purifier), for the inputs digest.
pub fn generated_sources_digest() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for source in [WIT, PURIFY_PY, ENTRY_TEMPLATE, SITE_MODULE_SOURCE] {
        hasher.update((source.len() as u64).to_le_bytes());
        hasher.update(source);
    }
    let digest = hasher.finalize();
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// The Python builder's directory under kiln's scratch directory.
pub const WORK_DIR: &str = "python";

/// What the last build in `work_dir` left for the SBOM of what it built.
pub fn previous_sbom_inputs(work_dir: &Path) -> SbomInputs {
    let layout = Layout::new(work_dir);
    SbomInputs::Python {
        project_dist: project_dist(&layout),
        deps_dir: layout.deps,
    }
}

/// The project's own distribution name, read from the wheel its build backend made
/// (`legacy_tool-2.5.0-py3-none-any.whl`: a `setup.py` may name its distribution unlike
/// its directory). `None` for requirements-only apps.
fn project_dist(layout: &Layout) -> Option<String> {
    std::fs::read_dir(&layout.wheel_dir)
        .ok()
        .and_then(|entries| {
            entries.flatten().find_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".whl")?;
                stem.split('-').next().map(str::to_string)
            })
        })
}

/// The scratch layout of one build, under the `work_dir` kiln gives the builder.
pub(super) struct Layout {
    /// The generated entry module (and a script entry's source).
    pub(super) gen_dir: PathBuf,
    /// The WIT world.
    pub(super) wit_dir: PathBuf,
    /// The dependencies, installed for CPython 3.14 on WASI.
    pub(super) deps: PathBuf,
    /// The project's own wheel (pyproject projects).
    pub(super) wheel_dir: PathBuf,
    /// An empty virtual environment, so componentize-py adds no host site-packages.
    pub(super) isolated_env: PathBuf,
    /// The script that makes a pure wheel of a package built without its speed-ups.
    pub(super) purify_py: PathBuf,
    /// A copy of the project's source files, when its wheel cannot be built in its tree.
    pub(super) source_copy: PathBuf,
    pub(super) output: PathBuf,
}

impl Layout {
    fn new(work_dir: &Path) -> Layout {
        Layout {
            gen_dir: work_dir.join("entry"),
            wit_dir: work_dir.join("wit"),
            deps: work_dir.join("deps"),
            wheel_dir: work_dir.join("wheel"),
            isolated_env: work_dir.join("no-site"),
            purify_py: work_dir.join("purify.py"),
            source_copy: work_dir.join("source"),
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
        write(&self.purify_py, PURIFY_PY)?;
        write(
            &self.gen_dir.join(format!("{SITE_MODULE}.py")),
            SITE_MODULE_SOURCE,
        )
    }
}

/// Builds `project` into a component in `work_dir`.
pub async fn build(
    project: &Project,
    py: &PythonProject,
    toolchain: &PythonToolchain,
    work_dir: &Path,
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> Result<Built, PythonBuildError> {
    let componentize_py = match &toolchain.componentize_py {
        ComponentizePy::Found { path } => path.clone(),
        ComponentizePy::Provision { venv } => {
            reporter.step(&format!(
                "Installing componentize-py {COMPONENTIZE_PY_VERSION} into {}",
                venv.display()
            ));
            provision(&toolchain.python, venv, ctx, reporter).await?
        }
    };
    let pip_python = pip_python(&componentize_py, &toolchain.python);

    let layout = Layout::new(work_dir);
    layout.prepare().await?;

    let installed = install_dependencies(project, py, &pip_python, &layout, ctx, reporter).await?;

    // The directories componentize-py reads, in `sys.path` order: the generated entry
    // module's, then the app's: like `python app.py`, a script's directory comes before
    // the installed packages.
    let mut app_path = Vec::new();
    let carries_project = matches!(py.source, PythonSource::Requirements { .. })
        || matches!(py.entry, PythonEntry::Script { .. });
    if carries_project {
        app_path.push(project.root.clone());
    }
    app_path.push(layout.deps.clone());

    if carries_project {
        // Only the project's source files (what git tracks or would track, as the
        // inputs digest reads them) go into the artifact: not an ignored `config.ini`
        // with a password in it, not a local virtual environment.
        let files = crate::inputs::source_files(&project.root, ctx.env)
            .await
            .map_err(|e| io_error("list the source files of", &project.root, e))?;
        let listed: String = files
            .iter()
            .filter_map(|file| file.strip_prefix(&project.root).ok())
            .map(slash_path)
            .filter(|rel| !rel.contains('\n'))
            .map(|rel| rel + "\n")
            .collect();
        write(&layout.gen_dir.join(PROJECT_FILES), listed)?;
    }
    let (rendered, script_source) = render_entry(&py.entry, app_path.len());
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
    // componentize-py runs the app's top-level code to snapshot it.
    let mut cmd = Cmd::new(&componentize_py, ctx.env)
        .isolated(ctx.sandbox)
        .arg("-d")
        .arg(&layout.wit_dir)
        .args(["-w", WORLD, "componentize", ENTRY_MODULE]);
    for dir in std::iter::once(&layout.gen_dir).chain(&app_path) {
        cmd = cmd.arg("-p").arg(dir);
    }
    cmd.arg("-o")
        .arg(&layout.output)
        .current_dir(work_dir)
        // Without this, componentize-py appends the site-packages of whatever python or
        // pipenv it finds, and host packages could be carried.
        .env("VIRTUAL_ENV", &layout.isolated_env)
        // A failure's tail should be the app's Python traceback, not a Rust backtrace.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .run(reporter)
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
    let carried = Carried::parse(&std::fs::read_to_string(&report).unwrap_or_default());
    Ok(Built {
        wasm: layout.output.clone(),
        kind: WasmKind::Component,
        toolchain: format!(
            "componentize-py {COMPONENTIZE_PY_VERSION} (CPython {TARGET_PYTHON} for WASI)"
        ),
        facts: carried
            .facts()
            .into_iter()
            .chain([(
                "dependencies".to_string(),
                installed.dependencies.to_string(),
            )])
            .collect(),
        version: installed.version,
        sbom: SbomInputs::Python {
            project_dist: project_dist(&layout),
            deps_dir: layout.deps,
        },
    })
}

pub(super) fn io_error(
    action: &'static str,
    path: &Path,
    source: std::io::Error,
) -> PythonBuildError {
    PythonBuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn create_dir(path: &Path) -> Result<(), PythonBuildError> {
    std::fs::create_dir_all(path).map_err(|e| io_error("create", path, e))
}

pub(super) fn remove_file(path: &Path) -> Result<(), PythonBuildError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("remove", path, err))
        }
        _ => Ok(()),
    }
}

pub(super) fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), PythonBuildError> {
    std::fs::write(path, contents).map_err(|e| io_error("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::entry::*;
    use super::pip::*;
    use super::provision::*;
    use super::toolchain::*;
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
            let (source, script) = render_entry(&entry, 2);
            for placeholder in [
                "@KIND@",
                "@TARGET@",
                "@ATTRIBUTE@",
                "@FILENAME@",
                "@APP_PATHS@",
            ] {
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
        let (source, _) = render_entry(&entries()[0], 1);
        assert!(source.contains("_KIND = \"function\"\n"), "{source}");
        assert!(source.contains("_APP_PATHS = 1\n"), "{source}");
        assert!(source.contains("_ATTRIBUTE = \"App.main\"\n"), "{source}");
        let (source, _) = render_entry(&entries()[2], 2);
        assert!(
            source.contains(r#"_FILENAME = "app \"quoted\".py""#),
            "{source}"
        );
    }

    /// The rendered entry module is valid Python (checked by the host's python3, when
    /// there is one: the module itself only runs inside componentize-py).
    #[tokio::test]
    async fn entry_module_parses_as_python() {
        let env = crate::env::Env::from_process();
        let Some(python) = crate::process::find_program("python3", &env) else {
            return;
        };
        for entry in entries() {
            let (source, _) = render_entry(&entry, 2);
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("entry.py");
            std::fs::write(&file, &source).unwrap();
            let parsed = Cmd::new(&python, &env)
                .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
                .arg(&file)
                .output()
                .await;
            assert!(parsed.is_ok(), "{entry}:\n{source}\n{parsed:?}");
        }
    }

    #[test]
    fn carried_figures_are_read_from_the_preinit_report() {
        let report = "app-files 12\napp-bytes 2500000\napp-kept 600000\nstdlib-files 700\n\
            stdlib-bytes 11000000\nstdlib-kept 2400000\nmodules 212\n";
        let carried = Carried::parse(report);
        assert_eq!(carried.modules, Some(212));
        let facts = carried.facts();
        assert_eq!(facts[0], ("carried modules".to_string(), "212".to_string()));
        assert_eq!(facts[1].1, "12 files, 600.00 kB kept of 2.50 MB");
        assert_eq!(facts[2].1, "700 files, 2.40 MB kept of 11.00 MB");
        // A report cut short (pre-initialisation failed to write it) says so.
        let partial = Carried::parse("app-files 3\nbogus line\nmodules x\n");
        assert_eq!(partial.modules, None);
        assert_eq!(partial.facts()[1].1, "unknown");
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
