//! What a Python build caches: pip's cache directory and kiln's componentize-py virtual
//! environment, keyed on componentize-py's version, the host Python, kiln's tools
//! directory and the project's name, OS and architecture, then the lockfiles.

use std::path::{Path, PathBuf};

use kiln_cache::{CacheKey, CacheKind, KeyInputs, Root, Selection};

use super::toolchain::{ComponentizePy, PythonToolchain, provisioned_venv, venv_bin};
use crate::cache::KindPlan;
use crate::settings::KilnHome;
use crate::toolchain::COMPONENTIZE_PY_VERSION;

/// The pip cache of the project at `root`.
pub fn kinds(
    toolchain: &PythonToolchain,
    root: &Path,
    name: &str,
    prefix: &str,
    home: &KilnHome,
) -> std::io::Result<Vec<KindPlan>> {
    let python =
        std::fs::canonicalize(&toolchain.python).unwrap_or_else(|_| toolchain.python.clone());
    let tools = home.tools();
    let key = CacheKey::compute(&KeyInputs {
        prefix: prefix.into(),
        kind: CacheKind::Pip,
        toolchains: vec![
            format!("componentize-py {COMPONENTIZE_PY_VERSION}"),
            format!("python {}", python.display()),
            format!("tools {}", tools.display()),
            format!("project {name}"),
        ],
        project: root.to_path_buf(),
    })?;
    let mut roots = vec![Root::new("pip", home.pip_cache(), Selection::all())];
    let venv = provisioned_venv(&tools);
    // A venv whose python is a symlink to the host's cannot be restored (links out of a
    // cache are refused): only venvs made with `--copies` are kept.
    let linked = std::fs::symlink_metadata(venv_bin(&venv).join("python"))
        .is_ok_and(|m| m.file_type().is_symlink());
    if !linked {
        let name = venv.file_name().map(PathBuf::from).unwrap_or_default();
        roots.push(Root::new(
            "tools",
            &tools,
            Selection {
                include: Some(vec![name]),
                exclude: Vec::new(),
            },
        ));
    }
    Ok(vec![KindPlan {
        kind: CacheKind::Pip,
        key,
        roots,
    }])
}

/// After a restore: componentize-py, to be provisioned when the plan was made, may have
/// come back with the cache.
pub fn after_restore(toolchain: &mut PythonToolchain) {
    if let ComponentizePy::Provision { venv } = &toolchain.componentize_py {
        let path = venv_bin(venv).join("componentize-py");
        if path.is_file() {
            toolchain.componentize_py = ComponentizePy::Found { path };
        }
    }
}
