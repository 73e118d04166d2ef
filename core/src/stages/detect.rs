//! The detect stage: what kind of project is this, and what exactly gets built.
//!
//! 1. Checks that the path is a directory.
//! 2. Chooses the language: `language` in `kiln.toml`, else `Cargo.toml` → Rust, else
//!    `pyproject.toml` or `requirements.txt` → Python.
//! 3. Rust: refuses a `rust-toolchain(.toml)` that names a toolchain `path` (rustup would
//!    run the project's own `rustc` and `cargo`, with kiln's rights, before anything is
//!    built) unless `--allow-toolchain-path`; then asks `cargo metadata` for the packages
//!    and their binary targets, and picks one binary (`--package`/`--bin` or `kiln.toml`
//!    choose among several).
//! 4. Python: reads `pyproject.toml`, then finds the entry point in the documented order:
//!    `kiln.toml`/`--entry`, `[tool.kiln] entry`, `[project.scripts]`, a package's
//!    `__main__.py`, then `app.py`, `main.py`, `__main__.py` at the root.
//!
//! Detection only reads files (and asks `cargo metadata`): it is safe for `--dry-run`,
//! and [`crate::plan::Plan::compute`] runs it first.

use std::path::{Path, PathBuf};

use crate::diagnose::Diagnose;
use crate::env::Env;
use crate::process::{Cmd, ProcessError};
use crate::project::{
    Detected as Project, ProjectKind, PythonEntry, PythonProject, PythonSource, RustProject,
};
use crate::reporter::Reporter;
use crate::settings::{KilnToml, Language};

/// What the detect stage needs.
#[derive(Debug, Clone, Default)]
pub struct DetectRequest {
    /// kiln's environment, for `cargo metadata`.
    pub env: Env,
    /// The project directory.
    pub path: PathBuf,
    /// The project's `kiln.toml`, already read.
    pub config: KilnToml,
    /// `--package`
    pub package: Option<String>,
    /// `--bin`
    pub bin: Option<String>,
    /// `--entry`: a `[project.scripts]` name or an entry spec.
    pub entry: Option<String>,
    /// `--allow-toolchain-path`: a `rust-toolchain.toml` may name a toolchain `path`.
    pub allow_toolchain_path: bool,
}

/// Files whose presence decides the language, in the order they are checked.
pub const MARKERS: &[(&str, &str)] = &[
    ("Cargo.toml", "Rust"),
    ("pyproject.toml", "Python"),
    ("setup.py", "Python"),
    ("requirements.txt", "Python"),
];

/// Detects the project at `req.path`.
pub async fn run(req: &DetectRequest, _reporter: &dyn Reporter) -> Result<Project, DetectError> {
    let path = &req.path;
    if !path.exists() {
        return Err(DetectError::NotFound { path: path.clone() });
    }
    if !path.is_dir() {
        return Err(DetectError::NotADirectory { path: path.clone() });
    }
    let root = path.canonicalize().map_err(|source| DetectError::Read {
        path: path.clone(),
        source,
    })?;
    let language = match req.config.language {
        Some(language) => language,
        None if root.join("Cargo.toml").is_file() => Language::Rust,
        None if MARKERS
            .iter()
            .any(|&(file, language)| language == "Python" && root.join(file).is_file()) =>
        {
            Language::Python
        }
        None => return Err(DetectError::Unknown { path: root }),
    };
    let mut project = match language {
        Language::Rust => detect_rust(&root, req).await?,
        Language::Python => detect_python(&root, req)?,
    };
    if let Some(name) = &req.config.name {
        project.name = name.clone();
    }
    if let Some(version) = &req.config.version {
        project.version = Some(version.clone());
    }
    Ok(project)
}

async fn detect_rust(root: &Path, req: &DetectRequest) -> Result<Project, DetectError> {
    let manifest = root.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(DetectError::MissingFile {
            path: manifest,
            language: "Rust",
        });
    }
    if !req.allow_toolchain_path {
        refuse_toolchain_path(root)?;
    }
    let output = Cmd::new("cargo", &req.env)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .current_dir(root)
        .output()
        .await
        .map_err(|err| match err {
            ProcessError::Failed { stderr, .. } => DetectError::CargoManifest {
                path: manifest.clone(),
                source: CargoSaid(clean_cargo_stderr(&stderr)),
            },
            other => DetectError::NoCargo { source: other },
        })?;
    let metadata = cargo_metadata::MetadataCommand::parse(&output.stdout).map_err(|source| {
        DetectError::CargoMetadata {
            path: manifest.clone(),
            source,
        }
    })?;

    let rust = &req.config.rust;
    let wanted_package = req.package.as_ref().or(rust.package.as_ref());
    let members: Vec<&cargo_metadata::Package> = metadata.workspace_packages();
    let candidates: Vec<&cargo_metadata::Package> = match wanted_package {
        Some(name) => {
            let found: Vec<_> = members
                .iter()
                .copied()
                .filter(|p| &*p.name == name)
                .collect();
            if found.is_empty() {
                return Err(DetectError::PackageNotFound {
                    package: name.clone(),
                    available: members.iter().map(|p| p.name.to_string()).collect(),
                });
            }
            found
        }
        None => {
            let own: Vec<_> = members
                .iter()
                .copied()
                .filter(|p| p.manifest_path.as_std_path() == manifest)
                .collect();
            if own.is_empty() { members.clone() } else { own }
        }
    };

    let bins: Vec<(&cargo_metadata::Package, &str)> = candidates
        .iter()
        .flat_map(|p| {
            p.targets
                .iter()
                .filter(|t| t.is_bin())
                .map(move |t| (*p, t.name.as_str()))
        })
        .collect();
    let wanted_bin = req.bin.as_ref().or(rust.bin.as_ref());
    let chosen =
        match wanted_bin {
            Some(bin) => bins.iter().find(|(_, name)| name == bin).ok_or_else(|| {
                DetectError::BinNotFound {
                    bin: bin.clone(),
                    available: bins.iter().map(|(_, b)| b.to_string()).collect(),
                }
            })?,
            None => match bins.as_slice() {
                [] => {
                    return Err(DetectError::NoBinary {
                        path: manifest,
                        packages: candidates.iter().map(|p| p.name.to_string()).collect(),
                    });
                }
                [one] => one,
                several => {
                    let default_run = match candidates.as_slice() {
                        [only] => only.default_run.as_deref(),
                        _ => None,
                    };
                    match default_run.and_then(|d| several.iter().find(|(_, b)| *b == d)) {
                        Some(chosen) => chosen,
                        None => {
                            return Err(DetectError::SeveralBinaries {
                                path: manifest,
                                bins: several
                                    .iter()
                                    .map(|(p, b)| (p.name.to_string(), b.to_string()))
                                    .collect(),
                            });
                        }
                    }
                }
            },
        };
    let (package, bin) = *chosen;
    Ok(Project {
        root: root.to_path_buf(),
        name: bin.to_string(),
        version: Some(package.version.to_string()),
        kind: ProjectKind::Rust(RustProject {
            manifest_path: package.manifest_path.clone().into_std_path_buf(),
            workspace_root: metadata.workspace_root.clone().into_std_path_buf(),
            package: package.name.to_string(),
            bin: bin.to_string(),
            features: rust.features.clone(),
            no_default_features: rust.no_default_features,
            target_dir: metadata.target_directory.clone().into_std_path_buf(),
        }),
    })
}

/// The nearest `rust-toolchain.toml` or `rust-toolchain` above `root` (the one rustup
/// reads), when it names a toolchain by `path`: rustup would run that directory's
/// programs, which the project controls.
fn refuse_toolchain_path(root: &Path) -> Result<(), DetectError> {
    for dir in root.ancestors() {
        for name in ["rust-toolchain.toml", "rust-toolchain"] {
            let file = dir.join(name);
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let path = match toml::from_str::<toml::Table>(&text) {
                Ok(table) => table
                    .get("toolchain")
                    .and_then(|t| t.get("path"))
                    .and_then(|p| p.as_str())
                    .map(str::to_string),
                // The legacy one-line form names a toolchain; a `/` makes it a path.
                Err(_) => Some(text.trim().to_string()).filter(|line| line.contains('/')),
            };
            return match path {
                Some(path) => Err(DetectError::ToolchainPath { file, path }),
                None => Ok(()),
            };
        }
    }
    Ok(())
}

/// cargo's stderr without its `error: ` prefix and trailing blank lines.
fn clean_cargo_stderr(stderr: &str) -> String {
    let trimmed = stderr.trim();
    trimmed
        .strip_prefix("error: ")
        .unwrap_or(trimmed)
        .to_string()
}

/// The parts of `pyproject.toml` detection reads.
#[derive(Debug, Default, serde::Deserialize)]
struct Pyproject {
    project: Option<PyprojectProject>,
    #[serde(rename = "build-system")]
    build_system: Option<toml::Table>,
    #[serde(default)]
    tool: PyprojectTool,
}

#[derive(Debug, Default, serde::Deserialize)]
struct PyprojectProject {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    scripts: toml::Table,
    #[serde(default, rename = "gui-scripts")]
    gui_scripts: toml::Table,
}

#[derive(Debug, Default, serde::Deserialize)]
struct PyprojectTool {
    #[serde(default)]
    kiln: PyprojectKiln,
    #[serde(default)]
    poetry: Option<PoetryTool>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct PyprojectKiln {
    entry: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct PoetryTool {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    scripts: toml::Table,
}

fn detect_python(root: &Path, req: &DetectRequest) -> Result<Project, DetectError> {
    let pyproject_path = root.join("pyproject.toml");
    let pyproject: Option<Pyproject> = if pyproject_path.is_file() {
        let text =
            std::fs::read_to_string(&pyproject_path).map_err(|source| DetectError::Read {
                path: pyproject_path.clone(),
                source,
            })?;
        Some(
            toml::from_str(&text).map_err(|source| DetectError::Pyproject {
                path: pyproject_path.clone(),
                source,
            })?,
        )
    } else {
        None
    };
    let requirements: Vec<PathBuf> = ["requirements.txt"]
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.is_file())
        .collect();

    let setup_py = root.join("setup.py");
    let source = if pyproject
        .as_ref()
        .is_some_and(|p| p.project.is_some() || p.build_system.is_some())
    {
        PythonSource::Wheel {
            manifest: pyproject_path.clone(),
        }
    } else if setup_py.is_file() {
        PythonSource::Wheel { manifest: setup_py }
    } else if !requirements.is_empty() || pyproject.is_some() {
        PythonSource::Requirements {
            files: requirements,
        }
    } else {
        return Err(DetectError::MissingFile {
            path: pyproject_path,
            language: "Python",
        });
    };

    let py = pyproject.unwrap_or_default();
    let poetry = py.tool.poetry.as_ref();
    let project_table = py.project.as_ref();
    let table_scripts = |table: Option<&toml::Table>| -> Vec<(String, String)> {
        table
            .into_iter()
            .flat_map(|t| t.iter())
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect()
    };
    // Where a project declares its commands: the first kind that has any wins.
    let found = |label: &'static str, scripts: Vec<(String, String)>| {
        (!scripts.is_empty()).then_some((label, scripts))
    };
    let (scripts_label, scripts) = found(
        "[project.scripts]",
        table_scripts(project_table.map(|p| &p.scripts)),
    )
    .or_else(|| {
        found(
            "[tool.poetry.scripts]",
            table_scripts(poetry.map(|p| &p.scripts)),
        )
    })
    .or_else(|| {
        found(
            "[project.gui-scripts]",
            table_scripts(project_table.map(|p| &p.gui_scripts)),
        )
    })
    .or_else(|| {
        found(
            "console_scripts",
            setuptools_entry_points(root, "console_scripts"),
        )
    })
    .or_else(|| found("gui_scripts", setuptools_entry_points(root, "gui_scripts")))
    .unwrap_or(("[project.scripts]", Vec::new()));
    // An sdist (or a tree that was one) says who it is in PKG-INFO.
    let pkg_info = std::fs::read_to_string(root.join("PKG-INFO")).unwrap_or_default();
    let pkg_info_field = |field: &str| {
        pkg_info
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(": ").map(str::trim))
            .map(str::to_string)
    };

    let entry = python_entry(
        root,
        req,
        py.tool.kiln.entry.as_deref(),
        &scripts,
        scripts_label,
        &setuptools_scripts(root),
    )?;
    let dir_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    let name = project_table
        .and_then(|p| p.name.clone())
        .or_else(|| poetry.and_then(|p| p.name.clone()))
        .or_else(|| pkg_info_field("Name"))
        .unwrap_or(dir_name);
    let version = project_table
        .and_then(|p| p.version.clone())
        .or_else(|| poetry.and_then(|p| p.version.clone()))
        .or_else(|| pkg_info_field("Version"));
    Ok(Project {
        root: root.to_path_buf(),
        name,
        version,
        kind: ProjectKind::Python(PythonProject { source, entry }),
    })
}

/// The `group` entry points (`console_scripts`, `gui_scripts`) of a setuptools project
/// that declares them outside pyproject.toml: `[options.entry_points]` in `setup.cfg`,
/// or `entry_points=` in `setup.py`. Only literal `name = module:function` strings are
/// read; nothing is executed.
fn setuptools_entry_points(root: &Path, group: &str) -> Vec<(String, String)> {
    let setup_cfg = std::fs::read_to_string(root.join("setup.cfg")).unwrap_or_default();
    let mut found: Vec<(String, String)> = setup_cfg_values(&setup_cfg, group)
        .iter()
        .filter_map(|value| parse_script(value))
        .collect();
    if let Ok(setup) = std::fs::read_to_string(root.join("setup.py"))
        && let Some(start) = setup.find(group)
        && let Some(rest) = setup.get(start..)
    {
        let list = rest.split_once(']').map_or(rest, |(list, _)| list);
        found.extend(list.split(['\'', '"']).filter_map(parse_script));
    }
    found
}

/// The values of `key` in `setup.cfg`: on its line after `=`, then on the indented
/// lines that continue it.
fn setup_cfg_values(cfg: &str, key: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut in_key = false;
    for line in cfg.lines() {
        let trimmed = line.trim();
        let continues = line.starts_with([' ', '\t']) && !trimmed.is_empty();
        if let Some(value) = trimmed
            .strip_prefix(key)
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            && !continues
        {
            in_key = true;
            values.extend(
                Some(value.trim())
                    .filter(|v| !v.is_empty())
                    .map(String::from),
            );
        } else if in_key && continues {
            values.push(trimmed.to_string());
        } else if !trimmed.is_empty() {
            in_key = false;
        }
    }
    values
}

/// The legacy `scripts` of a setuptools project (`setup(scripts=["bin/tool"])`, or
/// `scripts =` under `[options]` in `setup.cfg`): files pip copies into `bin/` and
/// runs with the project's installed packages. Read as literals; nothing is executed.
fn setuptools_scripts(root: &Path) -> Vec<PathBuf> {
    let setup_cfg = std::fs::read_to_string(root.join("setup.cfg")).unwrap_or_default();
    let mut found: Vec<PathBuf> = setup_cfg_values(&setup_cfg, "scripts")
        .iter()
        .flat_map(|value| value.split(',').map(str::trim))
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .collect();
    let setup = std::fs::read_to_string(root.join("setup.py")).unwrap_or_default();
    for (at, key) in setup.match_indices("scripts") {
        let before = setup.get(..at).and_then(|text| text.chars().next_back());
        let Some(after) = setup.get(at + key.len()..).map(str::trim_start) else {
            continue;
        };
        // `scripts=[...]` or `'scripts': [...]`, not `console_scripts`, `gui_scripts`
        // or `scripts==`.
        let quoted = before.is_some_and(|c| c == '\'' || c == '"');
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let value = if quoted {
            after
                .strip_prefix(['\'', '"'])
                .map(str::trim_start)
                .and_then(|after| after.strip_prefix(':'))
        } else {
            after
                .strip_prefix('=')
                .filter(|list| !list.starts_with('='))
        };
        let Some(list) = value
            .map(str::trim_start)
            .and_then(|list| list.strip_prefix(['[', '(']))
        else {
            continue;
        };
        let list = list.split_once([']', ')']).map_or(list, |(list, _)| list);
        found.extend(
            list.split(',')
                .filter_map(|item| python_string(item.trim(), &setup))
                .filter(|path| !path.trim().is_empty())
                .map(PathBuf::from),
        );
        break;
    }
    found
}

/// A string literal (`'bin/tool'`), or a name that `setup.py` assigns one to at the start
/// of a line (`CLI_script = 'smartypants'`).
fn python_string(item: &str, setup: &str) -> Option<String> {
    let literal = |text: &str| {
        let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = text.get(1..)?;
        inner.split_once(quote).map(|(value, _)| value.to_string())
    };
    if let Some(value) = literal(item) {
        return Some(value);
    }
    if !is_dotted_name(item) || item.contains('.') {
        return None;
    }
    setup.lines().find_map(|line| {
        let value = line.strip_prefix(item)?.trim_start().strip_prefix('=')?;
        literal(value.trim())
    })
}

/// `name = module:function` → (name, spec).
fn parse_script(text: &str) -> Option<(String, String)> {
    let (name, spec) = text.split_once('=')?;
    let (name, spec) = (name.trim(), spec.trim());
    (!name.is_empty() && spec.contains(':')).then(|| (name.to_string(), spec.to_string()))
}

/// Where detection looked for a Python entry point, for the error message.
const ENTRY_ORDER: &str = "`[python] entry` in kiln.toml, `[tool.kiln] entry`, \
    `[project.scripts]` or `[project.gui-scripts]` in pyproject.toml, `console_scripts`, \
    `gui_scripts` or `scripts` in setup.cfg or setup.py, a package with `__main__.py`, or \
    `app.py`, `main.py`, `__main__.py` at the root";

fn python_entry(
    root: &Path,
    req: &DetectRequest,
    tool_kiln: Option<&str>,
    scripts: &[(String, String)],
    scripts_label: &str,
    legacy_scripts: &[PathBuf],
) -> Result<PythonEntry, DetectError> {
    // `--entry NAME` picks a [project.scripts] entry by name, or is itself a spec.
    if let Some(wanted) = &req.entry {
        if let Some((name, spec)) = scripts.iter().find(|(name, _)| name == wanted) {
            return parse_entry(root, spec, &format!("{scripts_label} {name}"));
        }
        return parse_entry(root, wanted, "--entry");
    }
    if let Some(spec) = &req.config.python.entry {
        return parse_entry(root, spec, "[python] entry in kiln.toml");
    }
    if let Some(spec) = tool_kiln {
        return parse_entry(root, spec, "[tool.kiln] entry in pyproject.toml");
    }
    if let Some((name, spec)) = scripts.first() {
        return parse_entry(root, spec, &format!("{scripts_label} {name}"));
    }
    if let Some(script) = legacy_scripts.first() {
        let spec = script.to_string_lossy();
        return script_entry(root, &spec, "setuptools scripts");
    }
    if let Some(entry) = main_package(root)? {
        return Ok(entry);
    }
    for script in ["app.py", "main.py", "__main__.py"] {
        if root.join(script).is_file() {
            return Ok(PythonEntry::Script {
                path: PathBuf::from(script),
            });
        }
    }
    Err(DetectError::NoEntry {
        path: root.to_path_buf(),
    })
}

/// Parses `pkg.mod:func`, `app.py` or a module/package name into an entry.
fn parse_entry(root: &Path, spec: &str, origin: &str) -> Result<PythonEntry, DetectError> {
    let invalid = || DetectError::InvalidEntry {
        spec: spec.to_string(),
        origin: origin.to_string(),
    };
    let spec = spec.trim();
    if let Some((module, function)) = spec.split_once(':') {
        // `[project.scripts]` may carry extras: `pkg.mod:func [extra]`.
        let function = function.split('[').next().unwrap_or("").trim();
        let module = module.trim();
        if !is_dotted_name(module) || !is_dotted_name(function) {
            return Err(invalid());
        }
        return Ok(PythonEntry::Function {
            module: module.to_string(),
            function: function.to_string(),
            origin: origin.to_string(),
        });
    }
    if spec.ends_with(".py") {
        return script_entry(root, spec, origin);
    }
    if !is_dotted_name(spec) {
        return Err(invalid());
    }
    let rel = PathBuf::from(spec.replace('.', "/"));
    for base in [PathBuf::new(), PathBuf::from("src")] {
        let main = base.join(&rel).join("__main__.py");
        if root.join(&main).is_file() {
            return Ok(PythonEntry::Package {
                package: spec.to_string(),
                path: main,
            });
        }
        let module = base.join(rel.with_extension("py"));
        if root.join(&module).is_file() {
            return Ok(PythonEntry::Script { path: module });
        }
    }
    Err(DetectError::EntryNotFound {
        path: root.join(rel),
    })
}

/// A script file of the project run as `__main__` (`app.py`, or a legacy `bin/tool`).
fn script_entry(root: &Path, spec: &str, origin: &str) -> Result<PythonEntry, DetectError> {
    let path = PathBuf::from(spec);
    if !root.join(&path).is_file() {
        return Err(DetectError::EntryNotFound {
            path: root.join(path),
        });
    }
    // The script is copied into the artifact: it must be the project's own file,
    // not `/etc/…`, `../…`, or a link out of the project.
    let inside = std::fs::canonicalize(root.join(&path))
        .ok()
        .zip(std::fs::canonicalize(root).ok())
        .is_some_and(|(file, root)| file.starts_with(root));
    if path.is_absolute() || !inside {
        return Err(DetectError::EntryOutside {
            spec: spec.to_string(),
            origin: origin.to_string(),
        });
    }
    Ok(PythonEntry::Script { path })
}

fn is_dotted_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// A top-level package (at the root or under `src/`) with a `__main__.py`.
fn main_package(root: &Path) -> Result<Option<PythonEntry>, DetectError> {
    let mut found = Vec::new();
    for base in [PathBuf::new(), PathBuf::from("src")] {
        let Ok(entries) = std::fs::read_dir(root.join(&base)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_dotted_name(&name) || name.contains('.') {
                continue;
            }
            let main = base.join(&name).join("__main__.py");
            if root.join(&main).is_file() {
                found.push(PythonEntry::Package {
                    package: name,
                    path: main,
                });
            }
        }
    }
    found.sort_by_key(|e| e.to_string());
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(DetectError::SeveralEntries {
            entries: found.iter().map(ToString::to_string).collect(),
        }),
    }
}

/// What cargo said about a manifest it could not read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CargoSaid(pub String);

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("Project directory `{}` does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("`{}` is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("No Rust or Python project found in `{}`", path.display())]
    Unknown { path: PathBuf },
    #[error("kiln.toml says this is a {language} project, but `{}` does not exist", path.display())]
    MissingFile {
        path: PathBuf,
        language: &'static str,
    },
    #[error("Failed to read the Cargo manifest `{}`", path.display())]
    CargoManifest {
        path: PathBuf,
        #[source]
        source: CargoSaid,
    },
    #[error("Failed to read the Cargo manifest `{}`", path.display())]
    CargoMetadata {
        path: PathBuf,
        #[source]
        source: cargo_metadata::Error,
    },
    #[error("`{}` names the toolchain `path = \"{path}\"`: rustup would run the project's own programs as the compiler", file.display())]
    ToolchainPath { file: PathBuf, path: String },
    #[error("cargo could not be run, so the Rust project cannot be read")]
    NoCargo {
        #[source]
        source: ProcessError,
    },
    #[error("Package `{package}` is not in this workspace")]
    PackageNotFound {
        package: String,
        available: Vec<String>,
    },
    #[error("No binary target in `{}` (packages: {})", path.display(), packages.join(", "))]
    NoBinary {
        path: PathBuf,
        packages: Vec<String>,
    },
    #[error("`{}` has several binaries: {}", path.display(), bins.iter().map(|(p, b)| format!("`{b}` ({p})")).collect::<Vec<_>>().join(", "))]
    SeveralBinaries {
        path: PathBuf,
        bins: Vec<(String, String)>,
    },
    #[error("No binary named `{bin}` (available: {})", available.join(", "))]
    BinNotFound { bin: String, available: Vec<String> },
    #[error("Failed to parse `{}`", path.display())]
    Pyproject {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("No entry point found for the Python project in `{}`", path.display())]
    NoEntry { path: PathBuf },
    #[error(
        "Entry point `{spec}` from {origin} is not `module:function`, a `.py` file or a module name"
    )]
    InvalidEntry { spec: String, origin: String },
    #[error("Entry point `{}` does not exist", path.display())]
    EntryNotFound { path: PathBuf },
    #[error("Entry point `{spec}` from {origin} is outside the project")]
    EntryOutside { spec: String, origin: String },
    #[error("Several packages have a `__main__.py`: {}", entries.join(", "))]
    SeveralEntries { entries: Vec<String> },
}

impl Diagnose for DetectError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            DetectError::NotFound { .. } | DetectError::NotADirectory { .. } => {
                "pass the directory that holds `Cargo.toml`, `pyproject.toml` or \
                 `requirements.txt`: `kiln build path/to/project`"
                    .into()
            }
            DetectError::Read { .. } => "check the file's permissions".into(),
            DetectError::Unknown { .. } => format!(
                "kiln looks for {}; for another layout, set `language = \"rust\"` or \
                 `language = \"python\"` in a kiln.toml at the project root",
                MARKERS
                    .iter()
                    .map(|(f, l)| format!("`{f}` ({l})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DetectError::MissingFile { .. } => {
                "fix `language` in kiln.toml, or remove it and let kiln detect the project".into()
            }
            DetectError::CargoManifest { path, .. } | DetectError::CargoMetadata { path, .. } => {
                format!(
                    "fix the manifest; `cargo metadata --no-deps --manifest-path {}` shows the same error",
                    path.display()
                )
            }
            DetectError::ToolchainPath { .. } => "name a released toolchain (`channel = \"1.95\"`) \
                 instead; if you trust this project's files, pass `--allow-toolchain-path`"
                .into(),
            DetectError::NoCargo { .. } => {
                "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip1`"
                    .into()
            }
            DetectError::PackageNotFound { available, .. } => format!(
                "choose one of: {}",
                available
                    .iter()
                    .map(|p| format!("`--package {p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DetectError::NoBinary { .. } => {
                "kiln builds programs: add `src/main.rs` or a `[[bin]]` target, or pick a package \
                 that has one with `--package`"
                    .into()
            }
            DetectError::SeveralBinaries { bins, .. } => format!(
                "choose one with {}, or set `[rust] bin = \"...\"` in kiln.toml",
                bins.iter()
                    .map(|(p, b)| format!("`--package {p} --bin {b}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DetectError::BinNotFound { .. } => "pass one of the available names to `--bin`".into(),
            DetectError::Pyproject { .. } => "fix the TOML syntax at the position shown above".into(),
            DetectError::NoEntry { .. } => format!(
                "kiln looks for {ENTRY_ORDER}; add `[project.scripts]` to pyproject.toml or set \
                 `[python] entry = \"package.module:function\"` in kiln.toml"
            ),
            DetectError::InvalidEntry { .. } | DetectError::EntryNotFound { .. } => {
                "an entry is `package.module:function`, `app.py`, or a package with `__main__.py`"
                    .into()
            }
            DetectError::SeveralEntries { .. } => {
                "choose one with `--entry PACKAGE` or `[python] entry` in kiln.toml".into()
            }
            DetectError::EntryOutside { .. } => "a script entry is a path inside the project \
                                                 (no absolute path, `..`, or link out of it)"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn detect(dir: &Path) -> Result<Project, DetectError> {
        let request = DetectRequest {
            path: dir.to_path_buf(),
            ..Default::default()
        };
        block_on(run(&request, &crate::reporter::Silent))
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn entry_of(project: Project) -> PythonEntry {
        match project.kind {
            ProjectKind::Python(py) => py.entry,
            other => panic!("not python: {other:?}"),
        }
    }

    #[test]
    fn python_entry_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "requirements.txt", "");
        write(dir.path(), "main.py", "");
        assert_eq!(
            entry_of(detect(dir.path()).unwrap()),
            PythonEntry::Script {
                path: "main.py".into()
            }
        );
        write(dir.path(), "app.py", "");
        assert_eq!(
            entry_of(detect(dir.path()).unwrap()),
            PythonEntry::Script {
                path: "app.py".into()
            }
        );
        write(dir.path(), "src/tool/__main__.py", "");
        assert_eq!(
            entry_of(detect(dir.path()).unwrap()),
            PythonEntry::Package {
                package: "tool".into(),
                path: "src/tool/__main__.py".into()
            }
        );
        write(
            dir.path(),
            "pyproject.toml",
            "[project]\nname = \"t\"\n[project.scripts]\nzed = \"tool.z:main\"\nalpha = \"tool.a:run\"\n",
        );
        // The first script as written, not alphabetical.
        assert_eq!(
            entry_of(detect(dir.path()).unwrap()),
            PythonEntry::Function {
                module: "tool.z".into(),
                function: "main".into(),
                origin: "[project.scripts] zed".into()
            }
        );
        let by_name = block_on(run(
            &DetectRequest {
                path: dir.path().to_path_buf(),
                entry: Some("alpha".into()),
                ..Default::default()
            },
            &crate::reporter::Silent,
        ))
        .unwrap();
        assert!(
            matches!(entry_of(by_name), PythonEntry::Function { function, .. } if function == "run")
        );
        write(
            dir.path(),
            "pyproject.toml",
            "[project]\nname = \"t\"\n[project.scripts]\nzed = \"tool.z:main\"\n[tool.kiln]\nentry = \"tool\"\n",
        );
        assert!(matches!(
            entry_of(detect(dir.path()).unwrap()),
            PythonEntry::Package { .. }
        ));
    }

    #[test]
    fn setuptools_scripts_without_running_setup_py() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "setup.py",
            "setup(name='cow', entry_points={'console_scripts': ['cowsay=cowsay.__main__:cli', \"moo = cowsay.moo:main\"]}, packages=['x'])\n",
        );
        write(dir.path(), "cowsay/__main__.py", "");
        write(
            dir.path(),
            "PKG-INFO",
            "Metadata-Version: 2.1\nName: cowsay\nVersion: 6.0\n",
        );
        let project = detect(dir.path()).unwrap();
        assert_eq!(
            (project.name.as_str(), project.version.as_deref()),
            ("cowsay", Some("6.0"))
        );
        assert_eq!(
            entry_of(project),
            PythonEntry::Function {
                module: "cowsay.__main__".into(),
                function: "cli".into(),
                origin: "console_scripts cowsay".into()
            }
        );
        write(
            dir.path(),
            "setup.cfg",
            "[metadata]\nname = cow\n[options.entry_points]\nconsole_scripts =\n    moo = cow.cli:run\n[options]\nzip_safe = False\n",
        );
        assert_eq!(
            setuptools_entry_points(dir.path(), "console_scripts")[0],
            ("moo".to_string(), "cow.cli:run".to_string())
        );
    }

    #[test]
    fn gui_scripts_are_entry_points_too() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "pyproject.toml",
            "[project]\nname = \"viewer\"\n[project.gui-scripts]\nview = \"viewer.app:main\"\n",
        );
        let project = detect_python(dir.path(), &DetectRequest::default()).unwrap();
        let ProjectKind::Python(py) = project.kind else {
            panic!("not Python")
        };
        assert_eq!(py.entry.to_string(), "viewer.app:main");
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "setup.cfg",
            "[options.entry_points]\ngui_scripts =\n    view = viewer.app:main\n",
        );
        assert_eq!(
            setuptools_entry_points(dir.path(), "gui_scripts"),
            [("view".to_string(), "viewer.app:main".to_string())]
        );
    }

    #[test]
    fn legacy_scripts_are_read_as_literals() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "setup.py",
            "from setuptools import setup\nsetup(\n    name='legacy',\n    \
             entry_points={'gui_scripts': []},\n    scripts = [\"bin/legacy-tool\", 'bin/other.py'],\n)\n",
        );
        assert_eq!(
            setuptools_scripts(dir.path()),
            [
                PathBuf::from("bin/legacy-tool"),
                PathBuf::from("bin/other.py")
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "setup.cfg",
            "[options]\npackages = find:\nscripts =\n    bin/tool\n    bin/more\n[options.entry_points]\n",
        );
        assert_eq!(
            setuptools_scripts(dir.path()),
            [PathBuf::from("bin/tool"), PathBuf::from("bin/more")]
        );
        // A script without `.py` is an entry, inside the project only.
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        write(dir.path(), "bin/tool", "print('legacy')\n");
        let entry = python_entry(
            dir.path(),
            &DetectRequest::default(),
            None,
            &[],
            "console_scripts",
            &setuptools_scripts(dir.path()),
        )
        .unwrap();
        assert_eq!(
            entry,
            PythonEntry::Script {
                path: PathBuf::from("bin/tool")
            }
        );
        assert!(matches!(
            script_entry(dir.path(), "/etc/passwd", "setuptools scripts"),
            Err(DetectError::EntryOutside { .. })
        ));
    }

    #[test]
    fn entry_specs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            parse_entry(dir.path(), "a.b:c [extra]", "x"),
            Ok(PythonEntry::Function { function, .. }) if function == "c"
        ));
        assert!(matches!(
            parse_entry(dir.path(), "a-b:c", "x"),
            Err(DetectError::InvalidEntry { .. })
        ));
        assert!(matches!(
            parse_entry(dir.path(), "missing.py", "x"),
            Err(DetectError::EntryNotFound { .. })
        ));
    }

    #[test]
    fn a_script_entry_stays_inside_the_project() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("app");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(outer.path().join("secret.py"), "print('outside')").unwrap();
        std::fs::write(root.join("main.py"), "print('inside')").unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret.py"), root.join("link.py")).unwrap();
        let absolute = outer.path().join("secret.py");
        for spec in ["../secret.py", "link.py", absolute.to_str().unwrap()] {
            assert!(
                matches!(
                    parse_entry(&root, spec, "kiln.toml"),
                    Err(DetectError::EntryOutside { .. })
                ),
                "{spec}"
            );
        }
        assert!(matches!(
            parse_entry(&root, "main.py", "kiln.toml"),
            Ok(PythonEntry::Script { .. })
        ));
    }

    #[test]
    fn unknown_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            detect(dir.path()),
            Err(DetectError::Unknown { .. })
        ));
        assert!(matches!(
            detect(&dir.path().join("nope")),
            Err(DetectError::NotFound { .. })
        ));
        write(dir.path(), "pyproject.toml", "[project\nname=");
        assert!(matches!(
            detect(dir.path()),
            Err(DetectError::Pyproject { .. })
        ));
    }
}
