//! The sign stage: a cosign-compatible signature of the artifact, where cosign looks.
//!
//! 1. Reads the `sha256-<hex>.sig` manifest already there: from the registry when
//!    pushing (copied into the layout), else from the layout.
//! 2. When one of its signatures already verifies with this key (keyless: this identity,
//!    issuer and Fulcio root), keeps it: re-running a build does not pile up identical
//!    signatures.
//! 3. Otherwise appends a simple-signing layer signed with the key (keyless: with the
//!    certificate and the Rekor bundle in its annotations), as `cosign sign` does, stores
//!    the `.sig` manifest in the layout and pushes it under its tag.
//!
//! `attach` is shared with the attest stage, which does the same for `.att`.

use crate::oci::layout::Layout;
use crate::registry::Registry;
use crate::reporter::Reporter;
use crate::sign::{self, CosignArtifact, Signing};

#[derive(Debug)]
pub struct SignRequest<'a> {
    pub layout: &'a Layout,
    /// Where the artifact was pushed, if it was.
    pub registry: Option<&'a Registry>,
    /// The artifact's manifest digest.
    pub digest: &'a str,
    /// The repository the signature names (`ghcr.io/acme/app`, or the local name).
    pub repository: &'a str,
    pub signer: &'a Signing,
}

/// A signature cosign finds under `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// `sha256-<hex>.sig` or `.att`.
    pub tag: String,
    /// The digest of the manifest under that tag.
    pub digest: String,
    /// The tag already held a valid one by this key: nothing was signed.
    pub reused: bool,
}

pub async fn run(req: SignRequest<'_>, reporter: &dyn Reporter) -> anyhow::Result<Attached> {
    let tag = sign::cosign_tag(req.digest, "sig")?;
    let existing = existing(req.layout, req.registry, &tag).await?;
    let ours = existing.as_deref().is_some_and(|bytes| {
        sign::verify_signature(bytes, req.layout, req.digest, req.signer).is_ok()
    });
    // A signature by someone else stays: ours is appended to it, as cosign does.
    let entry = match existing {
        Some(bytes) if ours => Entry::Valid(bytes),
        base => {
            let payload = sign::simple_signing::payload(req.digest, req.repository);
            let signature = req.signer.sign(req.digest, &payload).await?;
            Entry::New(sign::signature_manifest(
                req.digest,
                payload,
                signature,
                base.as_deref(),
            )?)
        }
    };
    attach(req.layout, req.registry, &tag, entry, reporter).await
}

/// What goes under a cosign tag.
pub(crate) enum Entry {
    /// The manifest there now, already holding this signer's valid entry.
    Valid(Vec<u8>),
    /// A new manifest, with this signer's entry appended.
    New(CosignArtifact),
}

/// The manifest under `tag` now: the registry's when pushing (pulled into the layout, so
/// its layers can be read), else the layout's.
pub(crate) async fn existing(
    layout: &Layout,
    registry: Option<&Registry>,
    tag: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(registry) = registry {
        let pulled = registry
            .at_tag(tag)
            .pull_if_exists(layout, tag, &crate::reporter::Silent)
            .await?;
        return Ok(match pulled {
            Some(digest) => Some(layout.read_blob(&digest)?),
            None => None,
        });
    }
    Ok(layout.tagged(tag)?.map(|(_, bytes)| bytes))
}

/// Keeps a valid entry's manifest as it is, or stores the new manifest in the layout and
/// pushes it under `tag` when there is a registry.
pub(crate) async fn attach(
    layout: &Layout,
    registry: Option<&Registry>,
    tag: &str,
    entry: Entry,
    reporter: &dyn Reporter,
) -> anyhow::Result<Attached> {
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
    artifact.store(layout)?;
    if let Some(registry) = registry {
        registry
            .at_tag(tag)
            .push(layout, &artifact.manifest_digest, reporter)
            .await?;
    }
    Ok(Attached {
        tag: artifact.tag,
        digest: artifact.manifest_digest,
        reused: false,
    })
}
