//! The store stage: puts the artifact into an OCI image layout on disk, tagged.
//!
//! 1. Creates the layout if needed (`oci-layout`, `index.json`, `blobs/sha256`).
//! 2. A new artifact: writes the blobs first (the Wasm layer, the config, then the
//!    manifest). An artifact reused for unchanged inputs: pulls it from the registry
//!    when only the registry has it.
//! 3. Tags the manifest last, so the tag never points at missing content.

use std::path::PathBuf;

use oci_client::manifest::OciImageManifest;

use crate::diagnose::{Blame, Diagnose};
use crate::oci::layout::{Layout, LayoutError};
use crate::registry::{Registry, RegistryError};
use crate::reporter::{Reporter, Silent};
use crate::stages::package::{Artifact, WasmConfig};

/// What to store.
#[derive(Debug, Clone, Copy)]
pub enum Storing<'a> {
    /// What the package stage made.
    New(&'a Artifact),
    /// An artifact with the same inputs, found while planning: its manifest, and the
    /// registry that has it when the layout may not.
    Existing {
        manifest: &'a [u8],
        registry: Option<&'a Registry>,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    pub artifact: Storing<'a>,
    pub layout: &'a std::path::Path,
    /// `NAME:TAG`, the `org.opencontainers.image.ref.name` in the layout.
    pub reference: &'a str,
}

/// The artifact as stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub layout: PathBuf,
    pub reference: String,
    pub manifest_digest: String,
    pub manifest: OciImageManifest,
    pub config: WasmConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Failed to store the artifact in the layout `{}`", layout.display())]
    Layout {
        layout: PathBuf,
        #[source]
        source: LayoutError,
    },
    #[error("Failed to copy the artifact with the same inputs from the registry")]
    Pull(#[source] RegistryError),
    #[error("The stored artifact `{digest}` is not a Wasm OCI artifact kiln can read")]
    Unreadable {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("The store task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Diagnose for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Layout { source, .. } => source.hint(),
            StoreError::Pull(source) => source.hint(),
            StoreError::Unreadable { .. } => {
                Some("build it again with `kiln build --force`".into())
            }
            StoreError::Task(_) => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            StoreError::Layout { source, .. } => source.blame(),
            StoreError::Pull(source) => source.blame(),
            StoreError::Unreadable { .. } => Blame::User,
            StoreError::Task(_) => Blame::Internal,
        }
    }
}

/// Stores the artifact and tags it.
pub async fn run(req: StoreRequest<'_>, _reporter: &dyn Reporter) -> Result<Stored, StoreError> {
    let in_layout = |source| StoreError::Layout {
        layout: req.layout.to_path_buf(),
        source,
    };
    let layout = Layout::create(req.layout).map_err(in_layout)?;
    let (manifest_bytes, config_bytes) = match req.artifact {
        Storing::New(artifact) => {
            let artifact = artifact.clone();
            let layout = layout.clone();
            tokio::task::spawn_blocking(move || {
                layout.put_blob_file(&artifact.layer_path, &artifact.layer_digest)?;
                layout.put_blob(&artifact.config_bytes)?;
                layout.put_blob(&artifact.manifest_bytes)?;
                Ok::<_, LayoutError>((artifact.manifest_bytes, artifact.config_bytes))
            })
            .await
            .map_err(StoreError::Task)?
            .map_err(in_layout)?
        }
        Storing::Existing { manifest, registry } => {
            let digest = crate::oci::digest(manifest);
            if !layout.blob_path(&digest).map_err(in_layout)?.is_file()
                && let Some(registry) = registry
            {
                registry
                    .pull(&layout, req.reference, &Silent)
                    .await
                    .map_err(StoreError::Pull)?;
            }
            let parsed: OciImageManifest =
                serde_json::from_slice(manifest).map_err(|source| StoreError::Unreadable {
                    digest: digest.clone(),
                    source,
                })?;
            let config = layout.read_blob(&parsed.config.digest).map_err(in_layout)?;
            (manifest.to_vec(), config)
        }
    };
    let manifest_digest = crate::oci::digest(&manifest_bytes);
    let unreadable = |source| StoreError::Unreadable {
        digest: manifest_digest.clone(),
        source,
    };
    let manifest: OciImageManifest = serde_json::from_slice(&manifest_bytes).map_err(unreadable)?;
    let config: WasmConfig = serde_json::from_slice(&config_bytes).map_err(unreadable)?;
    layout
        .tag(
            req.reference,
            &manifest_digest,
            manifest_bytes.len() as u64,
            None,
        )
        .map_err(in_layout)?;
    Ok(Stored {
        layout: std::path::absolute(req.layout).unwrap_or(req.layout.to_path_buf()),
        reference: req.reference.to_string(),
        manifest_digest,
        manifest,
        config,
    })
}
