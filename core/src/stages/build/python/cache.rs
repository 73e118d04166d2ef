//! What a Python build caches: pip's cache directory, keyed on componentize-py's version,
//! the host Python, kiln's tools directory and the project's name, OS and architecture,
//! then the lockfiles. Never kiln's own tools: componentize-py is installed from its
//! hash-pinned wheel (from pip's cache when it is there).

use std::path::Path;

use kiln_cache::{CacheKey, CacheKind, Root, Selection};

use super::toolchain::PythonToolchain;
use crate::cache::{CacheOptions, KindPlan};
use crate::settings::KilnHome;
use crate::toolchain::COMPONENTIZE_PY_VERSION;

/// The pip cache of the project at `root`.
pub fn kinds(
    toolchain: &PythonToolchain,
    root: &Path,
    name: &str,
    options: &CacheOptions,
    home: &KilnHome,
) -> std::io::Result<Vec<KindPlan>> {
    let python =
        std::fs::canonicalize(&toolchain.python).unwrap_or_else(|_| toolchain.python.clone());
    let tools = home.tools();
    let key = CacheKey::compute(&options.key_inputs(
        CacheKind::Pip,
        vec![
            format!("componentize-py {COMPONENTIZE_PY_VERSION}"),
            format!("python {}", python.display()),
            format!("tools {}", tools.display()),
            format!("project {name}"),
        ],
        root,
    ))?;
    // pip's cache only: kiln's own tools are never restored from a cache someone else
    // may have written; componentize-py is installed from its hash-pinned wheel.
    let roots = vec![Root::new("pip", home.pip_cache(), Selection::all())];
    Ok(vec![KindPlan {
        kind: CacheKind::Pip,
        key,
        roots,
        // pip keeps no lock over its cache: its writes are atomic renames.
        locks: Vec::new(),
    }])
}
