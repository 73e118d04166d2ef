//! The store stage: writes the artifact into an OCI image layout on disk.
//!
//! 1. Creates the layout if needed (`oci-layout`, `index.json`, `blobs/sha256`).
//! 2. Writes the blobs first: the Wasm layer, the config, then the manifest.
//! 3. Tags the manifest last, so the tag never points at missing content.

use std::path::PathBuf;

use crate::oci::layout::{Layout, LayoutError};
use crate::stages::package::Artifact;

#[derive(Debug, Clone)]
pub struct StoreRequest<'a> {
    pub artifact: &'a Artifact,
    pub layout: PathBuf,
    /// `NAME:TAG`, the `org.opencontainers.image.ref.name` in the layout.
    pub reference: String,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub layout: PathBuf,
    pub reference: String,
}

pub async fn run(req: StoreRequest<'_>) -> Result<Stored, LayoutError> {
    let StoreRequest {
        artifact,
        layout,
        reference,
    } = req;
    let layout_dir = layout.clone();
    let artifact = artifact.clone();
    let reference_for_task = reference.clone();
    tokio::task::spawn_blocking(move || {
        let layout = Layout::create(&layout_dir)?;
        layout.put_blob_file(&artifact.layer_path, &artifact.layer_digest)?;
        layout.put_blob(&artifact.config_bytes)?;
        let manifest_digest = layout.put_blob(&artifact.manifest_bytes)?;
        layout.tag(
            &reference_for_task,
            &manifest_digest,
            artifact.manifest_bytes.len() as u64,
            None,
        )
    })
    .await
    .expect("store task does not panic")?;
    Ok(Stored {
        layout: std::path::absolute(&layout).unwrap_or(layout),
        reference,
    })
}
