//! The attest stage: a signed CycloneDX SBOM attestation of the artifact.
//!
//! 1. Reads the `sha256-<hex>.att` manifest already there (registry when pushing, else
//!    the layout); one holding a CycloneDX attestation about this artifact signed by this
//!    signer is kept as it is.
//! 2. Otherwise lists what went into the artifact ([`crate::sbom`]) from what the build
//!    left ([`SbomInputs`]): the Rust build graph for `wasm32-wasip1`, or the Python
//!    distributions installed for the component.
//! 3. Wraps the SBOM in an in-toto Statement whose subject is the artifact digest, signs
//!    it as a DSSE envelope, appends it to the `.att` manifest as `cosign attest` does,
//!    stores it in the layout and pushes it under its tag. Keylessly, Rekor gets the
//!    SHA-256 of the envelope's PAE, never the SBOM.
//! 4. Writes the SBOM next to the build (`sbom.cdx.json`) and reports its digest: the
//!    SHA-256 of exactly those bytes.

use std::path::PathBuf;

use crate::diagnose::{Blame, Diagnose};
use crate::oci::layout::Layout;
use crate::registry::Registry;
use crate::reporter::Reporter;
use crate::sbom::{self, SbomError, SbomInput};
use crate::sign::attached::{AttachError, Attached, Entry, attach, existing};
use crate::sign::{self, Signing};
use crate::stages::build::SbomInputs;

pub use crate::sbom::CYCLONEDX_PREDICATE_TYPE;

#[derive(Debug)]
pub struct AttestRequest<'a> {
    pub layout: &'a Layout,
    pub registry: Option<&'a Registry>,
    pub sbom: SbomInput<'a>,
    /// What the build left for the SBOM (for a reused artifact, what the build that
    /// made it left).
    pub source: &'a SbomInputs,
    pub sbom_path: PathBuf,
    pub signer: &'a Signing,
}

#[derive(Debug, Clone)]
pub struct Attested {
    pub attached: Attached,
    pub sbom_path: PathBuf,
    pub sbom_digest: String,
    pub components: usize,
}

/// Why the artifact could not be attested.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("Failed to list the artifact's components")]
    Sbom(#[from] SbomError),
    #[error(
        "The Python dependencies this artifact was built from are gone from `{}`",
        path.display()
    )]
    DependenciesGone { path: PathBuf },
    #[error("Failed to sign the SBOM attestation")]
    Sign(#[from] sign::SignError),
    #[error("Failed to store the SBOM attestation")]
    Attach(#[from] AttachError),
    #[error("Failed to write the SBOM to `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for AttestError {
    fn hint(&self) -> Option<String> {
        match self {
            AttestError::Sbom(err) => err.hint(),
            AttestError::DependenciesGone { .. } => {
                Some("rebuild with `kiln build --force` to attest it".into())
            }
            AttestError::Sign(err) => err.hint(),
            AttestError::Attach(err) => err.hint(),
            AttestError::Write { .. } => {
                Some("check that the project directory is writable".into())
            }
        }
    }

    fn blame(&self) -> Blame {
        match self {
            AttestError::Sbom(err) => err.blame(),
            AttestError::DependenciesGone { .. } | AttestError::Write { .. } => Blame::User,
            AttestError::Sign(err) => err.blame(),
            AttestError::Attach(err) => err.blame(),
        }
    }
}

/// Attests the artifact's SBOM, or keeps this signer's valid attestation.
pub async fn run(req: AttestRequest<'_>, reporter: &dyn Reporter) -> Result<Attested, AttestError> {
    let digest = req.sbom.artifact_digest;
    let tag = sign::cosign_tag(digest, "att")?;
    let existing = existing(req.layout, req.registry, &tag).await?;
    let ours = existing.as_deref().and_then(|bytes| {
        sign::verify_attestation(
            bytes,
            req.layout,
            digest,
            CYCLONEDX_PREDICATE_TYPE,
            req.signer,
        )
        .ok()
    });

    let (predicate, valid, base) = match ours {
        Some(statement) => (statement.predicate, existing, None),
        None => {
            reporter.step("Listing the artifact's components (CycloneDX SBOM)");
            let document = match req.source {
                SbomInputs::Rust(project) => sbom::rust(project, &req.sbom).await?,
                SbomInputs::Python {
                    deps_dir,
                    project_dist,
                } => {
                    if !deps_dir.is_dir() {
                        return Err(AttestError::DependenciesGone {
                            path: deps_dir.clone(),
                        });
                    }
                    sbom::python(deps_dir, project_dist.as_deref(), &req.sbom)?
                }
            };
            let predicate: serde_json::Value =
                serde_json::from_str(&document).expect("kiln's SBOM is JSON");
            (predicate, None, existing)
        }
    };

    let entry = match valid {
        Some(bytes) => Entry::Valid(bytes),
        None => {
            let body = sign::dsse::statement(
                digest,
                req.sbom.artifact_name,
                CYCLONEDX_PREDICATE_TYPE,
                &predicate,
            )?;
            let pae = sign::dsse::pae(sign::dsse::IN_TOTO_PAYLOAD_TYPE, &body);
            let signature = req.signer.sign(digest, &pae).await?;
            Entry::New(sign::dsse::attestation_manifest(
                digest,
                CYCLONEDX_PREDICATE_TYPE,
                &body,
                signature,
                base.as_deref(),
            )?)
        }
    };
    let attached = attach(req.layout, req.registry, &tag, entry, reporter).await?;

    let bytes = serde_json::to_vec(&predicate).expect("a JSON value serialises");
    let write = |source| AttestError::Write {
        path: req.sbom_path.clone(),
        source,
    };
    if let Some(dir) = req.sbom_path.parent() {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    kiln_cache::fsutil::write_atomic(&req.sbom_path, &bytes).map_err(write)?;
    Ok(Attested {
        attached,
        sbom_digest: crate::oci::digest(&bytes),
        components: predicate["components"]
            .as_array()
            .map_or(0, |components| components.len()),
        sbom_path: req.sbom_path,
    })
}
