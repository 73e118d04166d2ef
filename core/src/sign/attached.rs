//! An artifact's cosign tags (`sha256-<hex>.sig`, `.att`): reading what is there,
//! attaching a new entry, and carrying them along when the artifact moves.
//!
//! The sign and attest stages both go through [`existing`] and [`attach`]; `kiln push`
//! and `kiln pull` copy the tags with the artifact, as `cosign copy` does, so that what
//! was verifiable in one place stays verifiable in the other.

use crate::oci::layout::{Layout, LayoutError};
use crate::registry::{Registry, RegistryError};
use crate::reporter::{Reporter, Silent};
use crate::sign::CosignArtifact;

/// A signature or attestation cosign finds under `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// `sha256-<hex>.sig` or `.att`.
    pub tag: String,
    /// The digest of the manifest under that tag.
    pub digest: String,
    /// The tag already held a valid one by this signer: nothing was signed.
    pub reused: bool,
}

/// What goes under a cosign tag.
#[derive(Debug)]
pub enum Entry {
    /// The manifest there now, already holding this signer's valid entry.
    Valid(Vec<u8>),
    /// A new manifest, with this signer's entry appended.
    New(CosignArtifact),
}

/// Why a cosign tag could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("Failed to read or write `{tag}` in the layout")]
    Layout {
        tag: String,
        #[source]
        source: LayoutError,
    },
    #[error("Failed to read or push `{tag}` in the registry")]
    Registry {
        tag: String,
        #[source]
        source: RegistryError,
    },
}

impl crate::diagnose::Diagnose for AttachError {
    fn hint(&self) -> Option<String> {
        match self {
            AttachError::Layout { source, .. } => source.hint(),
            AttachError::Registry { source, .. } => source.hint(),
        }
    }

    fn blame(&self) -> crate::diagnose::Blame {
        match self {
            AttachError::Layout { source, .. } => source.blame(),
            AttachError::Registry { source, .. } => source.blame(),
        }
    }
}

/// The manifest under `tag` now: the registry's when pushing (pulled into the layout, so
/// its layers can be read), else the layout's.
pub async fn existing(
    layout: &Layout,
    registry: Option<&Registry>,
    tag: &str,
) -> Result<Option<Vec<u8>>, AttachError> {
    let in_layout = |source| AttachError::Layout {
        tag: tag.to_string(),
        source,
    };
    if let Some(registry) = registry {
        let pulled = registry
            .at_tag(tag)
            .pull_if_exists(layout, tag, &Silent)
            .await
            .map_err(|source| AttachError::Registry {
                tag: tag.to_string(),
                source,
            })?;
        return match pulled {
            Some(digest) => Ok(Some(layout.read_blob(&digest).map_err(in_layout)?)),
            None => Ok(None),
        };
    }
    Ok(layout
        .tagged(tag)
        .map_err(in_layout)?
        .map(|(_, bytes)| bytes))
}

/// Keeps a valid entry's manifest as it is, or stores the new manifest in the layout and
/// pushes it under `tag` when there is a registry.
pub async fn attach(
    layout: &Layout,
    registry: Option<&Registry>,
    tag: &str,
    entry: Entry,
    reporter: &dyn Reporter,
) -> Result<Attached, AttachError> {
    let artifact = match entry {
        Entry::Valid(bytes) => {
            reporter.step(&format!(
                "`{tag}` already holds a valid entry by this signer"
            ));
            return Ok(Attached {
                tag: tag.to_string(),
                digest: crate::oci::digest(&bytes),
                reused: true,
            });
        }
        Entry::New(artifact) => artifact,
    };
    artifact
        .store(layout)
        .map_err(|source| AttachError::Layout {
            tag: tag.to_string(),
            source,
        })?;
    if let Some(registry) = registry {
        registry
            .at_tag(tag)
            .push(layout, &artifact.manifest_digest, reporter)
            .await
            .map_err(|source| AttachError::Registry {
                tag: tag.to_string(),
                source,
            })?;
    }
    Ok(Attached {
        tag: artifact.tag,
        digest: artifact.manifest_digest,
        reused: false,
    })
}

/// The suffixes of the tags cosign attaches to an artifact: signatures, attestations.
pub const SUFFIXES: [&str; 2] = ["sig", "att"];

/// Pushes the layout's `.sig`/`.att` manifests of `digest` to `registry`'s repository.
/// Returns the tags pushed.
pub async fn push(
    layout: &Layout,
    registry: &Registry,
    digest: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, RegistryError> {
    let mut pushed = Vec::new();
    for tag in tags(digest, &SUFFIXES) {
        let Some((manifest_digest, _)) = layout.tagged(&tag)? else {
            continue;
        };
        registry
            .at_tag(&tag)
            .push(layout, &manifest_digest, reporter)
            .await?;
        pushed.push(tag);
    }
    Ok(pushed)
}

/// Pulls `registry`'s `.sig`/`.att` manifests of `digest` into the layout, tagged as in
/// the registry. Returns the tags pulled.
pub async fn pull(
    layout: &Layout,
    registry: &Registry,
    digest: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, RegistryError> {
    pull_these(layout, registry, digest, &SUFFIXES, reporter).await
}

/// [`pull`] of the attachments with these suffixes only (`["sig"]`).
pub async fn pull_these(
    layout: &Layout,
    registry: &Registry,
    digest: &str,
    suffixes: &[&str],
    reporter: &dyn Reporter,
) -> Result<Vec<String>, RegistryError> {
    let mut pulled = Vec::new();
    for tag in tags(digest, suffixes) {
        let found = registry
            .at_tag(&tag)
            .pull_if_exists(layout, &tag, reporter)
            .await?;
        if found.is_some() {
            pulled.push(tag);
        }
    }
    Ok(pulled)
}

fn tags<'a>(digest: &'a str, suffixes: &'a [&str]) -> impl Iterator<Item = String> + 'a {
    suffixes
        .iter()
        .filter_map(move |suffix| super::cosign_tag(digest, suffix).ok())
}
