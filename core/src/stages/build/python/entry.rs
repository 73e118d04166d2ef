//! The generated entry module: it imports the app's graph at pre-initialisation and
//! starts the app the way `python` would.

use std::path::{Path, PathBuf};

use indicatif::DecimalBytes;

use crate::project::PythonEntry;

/// The entry module template: see the module itself for what it does.
pub(super) const ENTRY_TEMPLATE: &str = include_str!("entry.py");
pub(super) const ENTRY_MODULE: &str = "kiln_entry";
/// Where a script entry's source is copied for the entry module to compile.
pub(super) const SCRIPT_COPY: &str = "kiln_main_source.py.txt";
/// The in-memory site the entry module installs first (`site.py`), and its module name.
pub(super) const SITE_MODULE_SOURCE: &str = include_str!("site.py");
pub(super) const SITE_MODULE: &str = "kiln_site";
/// The project's source files, one relative path a line, when the project's directory
/// is carried (a requirements app, a script): the only files of it kept.
pub(super) const PROJECT_FILES: &str = "kiln-project-files.txt";
/// What the entry module writes at pre-initialisation: `name value` lines, the in-memory
/// site's figures, then how many modules pre-initialisation imported.
pub(super) const CARRIED_REPORT: &str = "kiln-carried.txt";

/// The entry module's source for `entry`, whose app is in the `app_paths` directories
/// after the entry module's own, and for a script entry the script to copy beside it
/// (relative to the project root).
pub(super) fn render_entry(entry: &PythonEntry, app_paths: usize) -> (String, Option<PathBuf>) {
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
        .replace("@APP_PATHS@", &app_paths.to_string());
    (rendered, script)
}

pub(super) fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// What the entry module's report says about what the component carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Carried {
    /// Modules imported at pre-initialisation (in the memory snapshot).
    pub(super) modules: Option<u64>,
    /// The app's files kept in memory: how many, their size on disk, their size kept.
    pub(super) app: [Option<u64>; 3],
    /// The same for the standard library.
    pub(super) stdlib: [Option<u64>; 3],
}

impl Carried {
    pub(super) fn parse(report: &str) -> Carried {
        let mut carried = Carried::default();
        for line in report.lines() {
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<u64>() else {
                continue;
            };
            let slot = match name {
                "modules" => &mut carried.modules,
                "app-files" => &mut carried.app[0],
                "app-bytes" => &mut carried.app[1],
                "app-kept" => &mut carried.app[2],
                "stdlib-files" => &mut carried.stdlib[0],
                "stdlib-bytes" => &mut carried.stdlib[1],
                "stdlib-kept" => &mut carried.stdlib[2],
                _ => continue,
            };
            *slot = Some(value);
        }
        carried
    }

    /// The summary's facts: modules in the snapshot, then the two parts of the
    /// in-memory site (`312 files, 1.2 MB kept of 4.5 MB`).
    pub(super) fn facts(&self) -> Vec<(String, String)> {
        let unknown = || "unknown".to_string();
        let part = |[files, bytes, kept]: [Option<u64>; 3]| match (files, bytes, kept) {
            (Some(files), Some(bytes), Some(kept)) => {
                format!(
                    "{files} files, {} kept of {}",
                    DecimalBytes(kept),
                    DecimalBytes(bytes)
                )
            }
            _ => unknown(),
        };
        vec![
            (
                "carried modules".to_string(),
                self.modules.map_or_else(unknown, |n| n.to_string()),
            ),
            ("in-memory app files".to_string(), part(self.app)),
            ("in-memory standard library".to_string(), part(self.stdlib)),
        ]
    }
}
