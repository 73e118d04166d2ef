//! The push stage: copies the stored artifact from the layout to a registry.
//!
//! 1. Reads the manifest from the layout and uploads each blob the registry lacks (HEAD
//!    first; the layer streamed, never held whole).
//! 2. Puts the manifest under the tag last, so the tag never names missing content.
//! 3. With [`PushRequest::attached`], also pushes the artifact's cosign `.sig`/`.att`
//!    manifests found in the layout, as `cosign copy` does (`kiln push`); `kiln build`
//!    signs after pushing instead.

use crate::diagnose::{Blame, Diagnose};
use crate::oci::layout::Layout;
use crate::registry::{Registry, RegistryError};
use crate::reporter::Reporter;

#[derive(Debug)]
pub struct PushRequest<'a> {
    pub layout: &'a Layout,
    /// Connected for pushing, at the destination tag.
    pub registry: &'a Registry,
    /// The artifact's manifest digest in the layout.
    pub digest: &'a str,
    /// Also push the artifact's `.sig`/`.att` manifests from the layout.
    pub attached: bool,
}

/// What was pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `REGISTRY/REPOSITORY:TAG@sha256:…`
    pub reference: String,
    pub digest: String,
    pub bytes_sent: u64,
    pub bytes_skipped: u64,
    /// The `.sig`/`.att` tags pushed with it.
    pub attached: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("Failed to push the artifact to `{destination}`")]
    Artifact {
        destination: String,
        #[source]
        source: RegistryError,
    },
    #[error("Failed to push the artifact's signatures and attestations to `{destination}`")]
    Attached {
        destination: String,
        #[source]
        source: RegistryError,
    },
}

impl PushError {
    fn source_error(&self) -> &RegistryError {
        match self {
            PushError::Artifact { source, .. } | PushError::Attached { source, .. } => source,
        }
    }
}

impl Diagnose for PushError {
    fn hint(&self) -> Option<String> {
        self.source_error().hint()
    }

    fn blame(&self) -> Blame {
        self.source_error().blame()
    }
}

/// Pushes the artifact (and, when asked, what is attached to it).
pub async fn run(req: PushRequest<'_>, reporter: &dyn Reporter) -> Result<Pushed, PushError> {
    let destination = req.registry.reference().whole();
    let outcome = req
        .registry
        .push(req.layout, req.digest, reporter)
        .await
        .map_err(|source| PushError::Artifact {
            destination: destination.clone(),
            source,
        })?;
    let attached = if req.attached {
        crate::sign::attached::push(req.layout, req.registry, req.digest, reporter)
            .await
            .map_err(|source| PushError::Attached {
                destination,
                source,
            })?
    } else {
        Vec::new()
    };
    Ok(Pushed {
        reference: outcome.reference,
        digest: outcome.digest,
        bytes_sent: outcome.bytes_sent,
        bytes_skipped: outcome.bytes_skipped,
        attached,
    })
}
