//! What `kiln run` runs: finds the Wasm bytes behind a project directory, an OCI
//! layout reference or a `.wasm` file.
//!
//! 1. `oci:DIR[:NAME:TAG]` (skopeo's syntax): that layout, that tag (or its only one).
//! 2. A `.wasm` file: its bytes.
//! 3. A directory with an `oci-layout` file: that layout's only artifact.
//! 4. Another directory: a project; its default layout and default tag.
//! 5. Anything else: `NAME[:TAG]` in `--layout` (default `./.kiln/oci`).
//!
//! An artifact from a layout must be a Wasm OCI artifact with one `application/wasm`
//! layer, whose digest is checked when it is read.

use std::path::{Path, PathBuf};

use crate::diagnose::Diagnose;
use crate::env::Env;
use crate::oci::layout::{Layout, LayoutError};
use crate::oci::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, annotations, digest};
use crate::settings::{self, KilnToml};
use crate::stages::detect::{self, DetectRequest};

/// Wasm bytes ready to run.
#[derive(Debug)]
pub struct Loaded {
    pub wasm: Vec<u8>,
    /// `sha256:<hex>` of `wasm`.
    pub digest: String,
    /// argv\[0\] for the guest.
    pub name: String,
}

/// An artifact found in an OCI image layout.
#[derive(Debug)]
pub struct Located {
    pub layout: Layout,
    /// Its `org.opencontainers.image.ref.name` in the layout.
    pub name: String,
    pub manifest_digest: String,
}

/// Where the last `kiln build` of a project stored its artifact, kept in the project's
/// scratch directory (`.kiln/build/last.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastBuild {
    /// The OCI image layout, absolute.
    pub layout: PathBuf,
    /// `NAME:TAG` in it.
    pub reference: String,
}

impl LastBuild {
    const FILE: &str = "last.json";

    /// Records it in the project's scratch directory (best effort: without it, `kiln run`
    /// detects the project instead).
    pub fn record(&self, work_dir: &Path) {
        let written = std::fs::create_dir_all(work_dir).and_then(|()| {
            let bytes = serde_json::to_vec(self).expect("a record serialises");
            kiln_cache::fsutil::write_atomic(&work_dir.join(Self::FILE), &bytes)
        });
        if let Err(err) = written {
            tracing::debug!(dir = %work_dir.display(), %err, "could not record the last build");
        }
    }

    /// The last build of the project at `project_dir`, if one was recorded.
    pub fn read(project_dir: &Path) -> Option<LastBuild> {
        let path = project_dir.join(".kiln").join("build").join(Self::FILE);
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// Loads what `target` names.
pub async fn load(target: &str, layout: Option<&Path>, env: &Env) -> Result<Loaded, TargetError> {
    let path = Path::new(target);
    if path.is_file() {
        let wasm = std::fs::read(path).map_err(|source| TargetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if crate::stages::build::WasmKind::of(&wasm).is_none() {
            return Err(TargetError::NotWasm {
                path: path.to_path_buf(),
            });
        }
        return Ok(Loaded {
            digest: digest(&wasm),
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "main".into()),
            wasm,
        });
    }
    if target.ends_with(".wasm") {
        return Err(TargetError::Missing {
            path: path.to_path_buf(),
        });
    }
    read_wasm(&locate(target, layout, env).await?)
}

/// Finds the artifact `target` names in a layout: `oci:DIR[:NAME:TAG]`, a layout
/// directory, a project directory, or `NAME[:TAG]` in `layout` (default `./.kiln/oci`).
pub async fn locate(
    target: &str,
    layout: Option<&Path>,
    env: &Env,
) -> Result<Located, TargetError> {
    if let Some(rest) = target.strip_prefix("oci:") {
        let (dir, name) = match rest.split_once(':') {
            Some((dir, name)) => (dir, Some(name)),
            None => (rest, None),
        };
        return resolve(Layout::open(Path::new(dir))?, name);
    }
    let path = Path::new(target);
    if path.is_dir() {
        if path.join("oci-layout").is_file() {
            return resolve(Layout::open(path)?, None);
        }
        // What the last `kiln build` of this project stored, without detecting it again:
        // `kiln run` must not pay for `cargo metadata`.
        if let Some(last) = LastBuild::read(path)
            && layout
                .is_none_or(|given| std::path::absolute(given).ok() == Some(last.layout.clone()))
            && let Ok(layout) = Layout::open(&last.layout)
            && let Ok(located) = resolve(layout, Some(&last.reference))
        {
            return Ok(located);
        }
        let config = KilnToml::read(path)?;
        let request = DetectRequest {
            env: env.clone(),
            path: path.to_path_buf(),
            config,
            ..Default::default()
        };
        let project = detect::run(&request, &crate::reporter::Silent).await?;
        let reference =
            crate::project::reference(None, &project.name, &project.version).map_err(|given| {
                TargetError::Reference(format!("`{given}` is not a valid artifact reference"))
            })?;
        let dir = layout
            .map(Path::to_path_buf)
            .unwrap_or_else(|| settings::default_layout(path));
        let layout = open_layout(&dir)?;
        // A dynamic version is only known once built: then the project's one tag is it.
        let reference = match layout.resolve(Some(&reference)) {
            Err(LayoutError::UnknownRef { available, .. }) if project.version.is_none() => {
                let name = reference.split(':').next().unwrap_or_default();
                match available
                    .iter()
                    .filter(|r| r.strip_prefix(name).is_some_and(|t| t.starts_with(':')))
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    [only] => (*only).clone(),
                    _ => reference,
                }
            }
            _ => reference,
        };
        return resolve(layout, Some(&reference));
    }
    let dir = layout
        .map(Path::to_path_buf)
        .unwrap_or_else(|| settings::default_layout(Path::new(".")));
    resolve(open_layout(&dir)?, Some(target))
}

fn open_layout(dir: &Path) -> Result<Layout, TargetError> {
    Layout::open(dir).map_err(|source| TargetError::NotBuilt {
        layout: dir.to_path_buf(),
        source,
    })
}

fn resolve(layout: Layout, name: Option<&str>) -> Result<Located, TargetError> {
    let entry = layout.resolve(name)?;
    let name = entry
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::REF_NAME).cloned())
        .or(name.map(str::to_string))
        .unwrap_or_default();
    Ok(Located {
        layout,
        name,
        manifest_digest: entry.digest,
    })
}

/// The Wasm layer of a located artifact, checked to be a Wasm OCI artifact.
pub fn read_wasm(located: &Located) -> Result<Loaded, TargetError> {
    let layout = &located.layout;
    let manifest = layout.manifest_at(&located.manifest_digest)?;
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(TargetError::NotWasmArtifact {
            reason: format!("its config is `{}`", manifest.config.media_type),
        });
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(TargetError::NotWasmArtifact {
            reason: format!("it has {} layers, not one", manifest.layers.len()),
        });
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(TargetError::NotWasmArtifact {
            reason: format!("its layer is `{}`", layer.media_type),
        });
    }
    let wasm = layout.read_blob(&layer.digest)?;
    let name = manifest
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::TITLE).cloned())
        .unwrap_or_else(|| "main".into());
    Ok(Loaded {
        wasm,
        digest: layer.digest.clone(),
        name,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(transparent)]
    Detect(#[from] detect::DetectError),
    #[error("{0}")]
    Reference(String),
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("`{}` is not a Wasm module or component", path.display())]
    NotWasm { path: PathBuf },
    #[error("The artifact is not a Wasm OCI artifact: {reason}")]
    NotWasmArtifact { reason: String },
    #[error("Nothing has been built into `{}` yet", layout.display())]
    NotBuilt {
        layout: PathBuf,
        #[source]
        source: LayoutError,
    },
}

impl Diagnose for TargetError {
    fn hint(&self) -> Option<String> {
        match self {
            TargetError::Layout(e) => e.hint(),
            TargetError::Settings(e) => e.hint(),
            TargetError::Detect(e) => e.hint(),
            TargetError::NotBuilt { .. } => {
                Some("build it first: `kiln build PROJECT`, then `kiln run PROJECT`".into())
            }
            TargetError::Missing { .. } | TargetError::NotWasm { .. } => Some(
                "`kiln run` takes a project directory, `oci:DIR[:NAME:TAG]`, `NAME:TAG` in the \
                 layout, or a `.wasm` file"
                    .into(),
            ),
            TargetError::NotWasmArtifact { .. } => Some(
                "kiln runs artifacts in the Wasm OCI layout (one `application/wasm` layer)".into(),
            ),
            TargetError::Reference(_) | TargetError::Read { .. } => None,
        }
    }
}
