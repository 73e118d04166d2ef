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

use crate::diagnose::{Blame, Diagnose};
use crate::oci::layout::Layout;
use crate::registry::Registry;
use crate::reporter::Reporter;
use crate::sign::attached::{AttachError, Attached, Entry, attach, existing};
use crate::sign::{self, Signing};

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

/// Why the artifact could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("Failed to sign the artifact")]
    Sign(#[from] sign::SignError),
    #[error("Failed to store the artifact's signature")]
    Attach(#[from] AttachError),
}

impl Diagnose for SignError {
    fn hint(&self) -> Option<String> {
        match self {
            SignError::Sign(err) => err.hint(),
            SignError::Attach(err) => err.hint(),
        }
    }

    fn blame(&self) -> Blame {
        match self {
            SignError::Sign(err) => err.blame(),
            SignError::Attach(err) => err.blame(),
        }
    }
}

/// Signs the artifact, or keeps this signer's valid signature.
pub async fn run(req: SignRequest<'_>, reporter: &dyn Reporter) -> Result<Attached, SignError> {
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
    Ok(attach(req.layout, req.registry, &tag, entry, reporter).await?)
}
