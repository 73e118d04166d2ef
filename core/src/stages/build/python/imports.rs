//! The app's import graph, found with `modulefinder` so that lazily imported modules
//! exist in the component (only what pre-initialisation imports is carried).

use std::path::PathBuf;

use serde::Serialize;

use super::{Context, Layout, PythonBuildError, PythonToolchain, io_error, write};
use crate::process::Cmd;
use crate::project::{Project, PythonEntry, PythonProject};
use crate::reporter::Reporter;

/// The import-graph finder, run by the host python.
pub(super) const IMPORTS_PY: &str = include_str!("imports.py");

/// Standard-library packages that cannot work in a WASI component or are development
/// tools, so the import graph never follows them. A module that imports one of these
/// when it loads still carries it: this only stops kiln importing them on its own.
pub(super) const EXCLUDED_MODULES: &[&str] = &[
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

/// What `imports.py` reads.
#[derive(Debug, Serialize)]
pub(super) struct GraphSpec<'a> {
    script: Option<PathBuf>,
    modules: Vec<String>,
    path: &'a [PathBuf],
    excludes: &'a [&'a str],
}

/// What `imports.py` writes.
#[derive(Debug, serde::Deserialize)]
pub(super) struct GraphFound {
    modules: Vec<String>,
    missing: Vec<String>,
}

/// The modules the entry module imports at pre-initialisation: what `modulefinder`
/// found from the entry point, then what it could not find on the host (they may be in
/// the component's newer standard library).
pub(super) async fn import_graph(
    project: &Project,
    py: &PythonProject,
    toolchain: &PythonToolchain,
    path: &[PathBuf],
    layout: &Layout,
    ctx: &Context<'_>,
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
    Cmd::new(&toolchain.python, ctx.env)
        .isolated(ctx.sandbox)
        .arg(&layout.imports_py)
        .arg(&layout.imports_spec)
        .arg(&layout.imports_out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .run(reporter)
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
