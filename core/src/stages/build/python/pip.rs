//! pip, driven for the Python inside the component: the project's own wheel, its
//! dependencies resolved for CPython on WASI, pure-Python wheels built from source
//! distributions, and pip's failures read into errors that name the package.

use std::path::{Path, PathBuf};

use super::{Context, Layout, PythonBuildError, create_dir, io_error};
use crate::process::{Cmd, ProcessError};
use crate::project::{Project, PythonProject, PythonSource};
use crate::reporter::Reporter;
use crate::toolchain::{TARGET_ABI, TARGET_PYTHON, WASI_PLATFORM};

/// The python whose pip installs dependencies: the one of componentize-py's virtual
/// environment (which has pip), else the host's.
pub(super) fn pip_python(componentize_py: &Path, host: &Path) -> PathBuf {
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
pub(super) fn target_options() -> Vec<String> {
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

pub(super) fn pip(python: &Path, ctx: &Context<'_>) -> Cmd {
    // Building an sdist runs its `setup.py` or build backend: project code.
    Cmd::new(python, ctx.env)
        .isolated(ctx.sandbox)
        .args(["-m", "pip"])
        // A cache kiln can save and restore (`PIP_CACHE_DIR` when the user set one).
        .env("PIP_CACHE_DIR", ctx.home.pip_cache())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
}

/// What [`install_dependencies`] put in `layout.deps`.
pub(super) struct Installed {
    /// How many distributions are dependencies (the project's own wheel excluded).
    pub(super) dependencies: usize,
    /// The version the project's own wheel was built with (dynamic versions included).
    pub(super) version: Option<String>,
}

/// Installs what the component imports into `layout.deps`.
pub(super) async fn install_dependencies(
    project: &Project,
    py: &PythonProject,
    python: &Path,
    layout: &Layout,
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> Result<Installed, PythonBuildError> {
    let mut install = pip(python, ctx)
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
            build_project_wheel(project, python, layout, ctx, reporter).await?;
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
            install = install.arg(&wheel);
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
                install = install.arg("-r").arg(project.root.join(file));
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
    let install = install.arg("--find-links").arg(&sdist_wheels);
    let mut built_from_sdist = Vec::new();
    loop {
        let Err(source) = install.run(reporter).await else {
            break;
        };
        let failure = match &source {
            ProcessError::Failed { stdout, stderr, .. } => {
                parse_pip_failure(&format!("{stdout}\n{stderr}"))
            }
            ProcessError::Spawn { .. } | ProcessError::TimedOut { .. } => PipFailure::Other,
        };
        match failure {
            PipFailure::NoWheel {
                package,
                requirement,
            } if !built_from_sdist.contains(&package)
                && wheel_from_sdist(
                    python,
                    &requirement,
                    &package,
                    &sdist_wheels,
                    layout,
                    ctx,
                    reporter,
                )
                .await =>
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

/// Builds the project's own wheel into `layout.wheel_dir` with its build backend: in its
/// tree, as pip does (setuptools-scm needs `.git`), then, when that fails, from a copy
/// of its source files in kiln's scratch directory. Build backends write into the tree
/// (`*.egg-info`, `build/`), which fails when kiln may not write there: an unpacked
/// sdist owned by another user, a workspace mounted read-only.
async fn build_project_wheel(
    project: &Project,
    python: &Path,
    layout: &Layout,
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> Result<(), PythonBuildError> {
    let wheel = |tree: &Path| {
        pip(python, ctx)
            .args(["wheel", "--no-deps", "--wheel-dir"])
            .arg(&layout.wheel_dir)
            .arg(tree)
    };
    let before = backend_leftovers(&project.root);
    let in_tree = wheel(&project.root).run(reporter).await;
    // setuptools builds in the source tree (`build/`, `*.egg-info`): leave the project
    // as it was.
    for leftover in backend_leftovers(&project.root).difference(&before) {
        if let Err(err) = std::fs::remove_dir_all(leftover) {
            tracing::debug!(path = %leftover.display(), %err, "could not remove");
        }
    }
    let Err(in_tree) = in_tree else {
        return Ok(());
    };
    tracing::debug!(%in_tree, "building the wheel in the project's tree failed; trying a copy");
    let copy = &layout.source_copy;
    copy_source(&project.root, copy, ctx).await?;
    reporter.step("Building the wheel from a copy of the project's source files");
    wheel(copy)
        .run(reporter)
        .await
        .map(drop)
        .map_err(|source| PythonBuildError::ProjectWheel {
            project: project.name.clone(),
            source,
        })
}

/// Copies the project's source files (those the inputs digest covers) into `copy`.
async fn copy_source(root: &Path, copy: &Path, ctx: &Context<'_>) -> Result<(), PythonBuildError> {
    match std::fs::remove_dir_all(copy) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("remove", copy, err));
        }
        _ => {}
    }
    let files = crate::inputs::source_files(root, ctx.env)
        .await
        .map_err(|e| io_error("list the source files of", root, e))?;
    for file in files {
        let Ok(rel) = file.strip_prefix(root) else {
            continue;
        };
        let to = copy.join(rel);
        if let Some(parent) = to.parent() {
            create_dir(parent)?;
        }
        // Not `fs::copy`: the copy is kiln's, with kiln's owner and write permission.
        let bytes = std::fs::read(&file).map_err(|e| io_error("read", &file, e))?;
        std::fs::write(&to, bytes).map_err(|e| io_error("write", &to, e))?;
    }
    Ok(())
}

/// Switches that common packages read to skip their optional C speed-ups, beside having
/// no C compiler (`CC=false`), which makes optional extensions fall back on their own.
const NO_SPEEDUPS: &[(&str, &str)] = &[
    ("CC", "false"),
    ("CXX", "false"),
    ("PYYAML_FORCE_LIBYAML", "0"),
    ("MSGPACK_PUREPYTHON", "1"),
    // simplejson
    ("DISABLE_SPEEDUPS", "1"),
    ("WRAPT_INSTALL_EXTENSIONS", "false"),
    // websockets
    ("BUILD_EXTENSION", "no"),
    ("DISABLE_SQLALCHEMY_CEXT", "1"),
];

/// Builds a pure-Python wheel for `requirement` (distribution `package`) from its source
/// distribution into `dir`, when it has no pure or WASI wheel. The build has no C
/// compiler and the common speed-up switches off, so a package whose C code is an
/// optional speed-up (PyYAML, simplejson, msgpack, the aio-libs) builds its pure form;
/// a wheel that still holds native code, or whose modules do not import without it, is
/// not kept, and the dependency stays an error. Returns whether a wheel was kept.
pub(super) async fn wheel_from_sdist(
    python: &Path,
    requirement: &str,
    package: &str,
    dir: &Path,
    layout: &Layout,
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> bool {
    reporter.step(&format!(
        "Building `{requirement}` from its source distribution, without C extensions"
    ));
    let Ok(staging) = tempfile::tempdir() else {
        return false;
    };
    // The aio-libs (`multidict`, `yarl`, `frozenlist`, ...) read `{NAME}_NO_EXTENSIONS`.
    let aio_switch = format!(
        "{}_NO_EXTENSIONS",
        package.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    let built = NO_SPEEDUPS
        .iter()
        .fold(pip(python, ctx), |cmd, (key, value)| cmd.env(key, value))
        .env(&aio_switch, "1")
        .args(["wheel", "--no-deps", "--wheel-dir"])
        .arg(staging.path())
        .arg(format!("--no-binary={package}"))
        .arg(requirement)
        .run(reporter)
        .await;
    if built.is_err() {
        return false;
    }
    let Ok(wheel) = built_wheel(staging.path()) else {
        return false;
    };
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    if is_pure_wheel(&name) {
        return std::fs::copy(&wheel, dir.join(&*name)).is_ok();
    }
    // Tagged for this machine because the package declares extensions: pure when
    // none was built and its modules import without them.
    let purified = Cmd::new(python, ctx.env)
        .isolated(ctx.sandbox)
        .arg(&layout.purify_py)
        .arg(&wheel)
        .arg(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .run(reporter)
        .await;
    if let Err(err) = &purified {
        tracing::debug!(%name, %err, "the source distribution did not give a pure wheel");
    }
    purified.is_ok()
}

/// What build backends leave in a source tree: `build/` and `*.egg-info` at the root, in
/// `src/` or in a top-level package directory.
pub(super) fn backend_leftovers(root: &Path) -> std::collections::BTreeSet<PathBuf> {
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
pub(super) fn built_wheel(dir: &Path) -> Result<PathBuf, PythonBuildError> {
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
pub(super) fn is_pure_wheel(file_name: &str) -> bool {
    let stem = file_name.strip_suffix(".whl").unwrap_or(file_name);
    stem.rsplit('-').next().is_some_and(|platforms| {
        platforms
            .split('.')
            .all(|p| p == "any" || p.starts_with("wasi"))
    })
}

/// What a failed `pip install` for the target said, as far as kiln can tell.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PipFailure {
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

pub(super) fn parse_pip_failure(output: &str) -> PipFailure {
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
pub(super) fn requirement_name(requirement: &str) -> &str {
    // Up to the first character that cannot be in a name (`split` yields at least one).
    requirement
        .split(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .next()
        .unwrap_or_default()
}

pub(super) fn pip_error(source: ProcessError) -> PythonBuildError {
    let output = match &source {
        ProcessError::Failed { stdout, stderr, .. } => format!("{stdout}\n{stderr}"),
        ProcessError::Spawn { .. } | ProcessError::TimedOut { .. } => {
            return PythonBuildError::Dependencies { source };
        }
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
