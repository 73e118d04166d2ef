//! Which host Python and which componentize-py a build uses, resolved without
//! installing anything (so the plan and `--dry-run` can show it).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::PythonBuildError;
use crate::env::Env;
use crate::process::{self, Cmd};
use crate::toolchain::{COMPONENTIZE_PY_VERSION, TARGET_PYTHON};

/// Which componentize-py and which host python kiln will use.
///
/// Resolving it is cheap (nothing is installed), so the plan and `--dry-run` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PythonToolchain {
    /// The host python that drives pip and the project's build backend.
    pub python: PathBuf,
    pub componentize_py: ComponentizePy,
}

impl std::fmt::Display for PythonToolchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "componentize-py {COMPONENTIZE_PY_VERSION} (CPython {TARGET_PYTHON} for WASI) with {}",
            match &self.componentize_py {
                ComponentizePy::Found { path } => path.display().to_string(),
                ComponentizePy::Provision { venv } =>
                    format!("(to be installed into {})", venv.display()),
            }
        )
    }
}

/// Where componentize-py comes from.
#[derive(Debug, Clone, Serialize)]
pub enum ComponentizePy {
    /// Already installed at the pinned version.
    Found { path: PathBuf },
    /// kiln will create this virtual environment and install the pinned version in it.
    Provision { venv: PathBuf },
}

/// Resolves the host python and componentize-py without installing anything.
///
/// The host python is `KILN_PYTHON`, else `python3` on `PATH`. componentize-py is kiln's
/// own provisioned copy when present, else one on `PATH` whose version is the pinned
/// one, else it is to be provisioned under `tools_dir`.
pub async fn resolve_toolchain(
    tools_dir: &Path,
    env: &Env,
) -> Result<PythonToolchain, PythonBuildError> {
    let python = match env.var(crate::env::KILN_PYTHON) {
        Some(value) => process::find_program(&value, env)
            .ok_or(PythonBuildError::KilnPythonMissing { value })?,
        None => process::find_program("python3", env).ok_or(PythonBuildError::PythonNotFound)?,
    };
    let venv = provisioned_venv(tools_dir);
    let provisioned = venv_bin(&venv).join("componentize-py");
    let componentize_py = if provisioned.is_file() {
        ComponentizePy::Found { path: provisioned }
    } else if let Some(path) = pinned_on_path(env).await {
        ComponentizePy::Found { path }
    } else {
        ComponentizePy::Provision { venv }
    };
    Ok(PythonToolchain {
        python,
        componentize_py,
    })
}

pub(crate) fn provisioned_venv(tools_dir: &Path) -> PathBuf {
    tools_dir.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"))
}

pub(crate) fn venv_bin(venv: &Path) -> PathBuf {
    venv.join(if cfg!(windows) { "Scripts" } else { "bin" })
}

/// A `componentize-py` on `PATH`, if it reports exactly the pinned version.
async fn pinned_on_path(env: &Env) -> Option<PathBuf> {
    let path = process::find_program("componentize-py", env)?;
    let output = Cmd::new(&path, env).arg("--version").output().await.ok()?;
    (output.stdout.trim() == format!("componentize-py {COMPONENTIZE_PY_VERSION}")).then_some(path)
}
