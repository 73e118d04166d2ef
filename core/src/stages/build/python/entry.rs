//! The generated entry module: it imports the app's graph at pre-initialisation and
//! starts the app the way `python` would.

use std::path::{Path, PathBuf};

use crate::project::PythonEntry;

/// The entry module template: see the module itself for what it does.
pub(super) const ENTRY_TEMPLATE: &str = include_str!("entry.py");
pub(super) const ENTRY_MODULE: &str = "kiln_entry";
/// Where a script entry's source is copied for the entry module to compile.
pub(super) const SCRIPT_COPY: &str = "kiln_main_source.py.txt";
/// What the entry module writes at pre-initialisation: each module it imported or
/// failed to import, then how many modules the component carries.
pub(super) const CARRIED_REPORT: &str = "kiln-carried.txt";

/// The entry module's source for `entry`, and for a script entry the script to copy
/// beside it (relative to the project root).
pub(super) fn render_entry(entry: &PythonEntry, carry: &[String]) -> (String, Option<PathBuf>) {
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

pub(super) fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// How many modules the entry module's report says the component carries.
pub(super) fn carried_count(report: &str) -> Option<usize> {
    report
        .lines()
        .find_map(|line| line.strip_prefix("total ")?.trim().parse().ok())
}
