//! Installs the pinned componentize-py into kiln's tools directory, atomically.

use std::path::{Path, PathBuf};

use super::toolchain::venv_bin;
use super::{Context, PythonBuildError, create_dir, io_error, write};
use crate::process::Cmd;
use crate::reporter::Reporter;
use crate::toolchain::COMPONENTIZE_PY_REQUIREMENTS;

/// Creates the virtual environment with the pinned componentize-py, atomically: it is
/// installed in a temporary sibling directory that is renamed into place when complete.
pub(super) async fn provision(
    python: &Path,
    venv: &Path,
    ctx: &Context<'_>,
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
    // `--copies`: no link to the host's python, so the venv can move into place.
    Cmd::new(python, ctx.env)
        .args(["-m", "venv", "--copies"])
        .arg(staging.path())
        .run(reporter)
        .await
        .map_err(failed)?;
    let staged_bin = venv_bin(staging.path());
    // Pinned by hash: pip's cache comes from a restored cache others may have written.
    let pinned = staging.path().join("componentize-py.requirements");
    write(&pinned, COMPONENTIZE_PY_REQUIREMENTS)?;
    Cmd::new(staged_bin.join("python"), ctx.env)
        .env("PIP_CACHE_DIR", ctx.home.pip_cache())
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-deps",
            "-r",
        ])
        .arg(&pinned)
        .run(reporter)
        .await
        .map_err(failed)?;
    let _ = std::fs::remove_file(&pinned);

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

pub(super) fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    // A window found at `at` is in `rest`: the split and the strip always succeed.
    while let Some(at) = rest.windows(from.len()).position(|w| w == from)
        && let Some((before, found)) = rest.split_at_checked(at)
        && let Some(after) = found.strip_prefix(from)
    {
        out.extend_from_slice(before);
        out.extend_from_slice(to);
        rest = after;
    }
    out.extend_from_slice(rest);
    out
}
