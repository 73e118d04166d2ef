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
    #[error("The SBOM stored beside the artifact is not a JSON document")]
    Stored(#[source] serde_json::Error),
    #[error("Failed to read the SBOM stored under `{tag}`")]
    ReadStored {
        tag: String,
        #[source]
        source: crate::oci::layout::LayoutError,
    },
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
            AttestError::Stored(_) | AttestError::ReadStored { .. } => Some(
                "build again with `kiln build --no-publish` and hand its layout over as it is"
                    .into(),
            ),
            AttestError::Write { .. } => {
                Some("check that the project directory is writable".into())
            }
        }
    }

    fn blame(&self) -> Blame {
        match self {
            AttestError::Sbom(err) => err.blame(),
            AttestError::DependenciesGone { .. }
            | AttestError::Write { .. }
            | AttestError::Stored(_)
            | AttestError::ReadStored { .. } => Blame::User,
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
        None => (
            document(req.source, &req.sbom, reporter).await?,
            None,
            existing,
        ),
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

    let (sbom_digest, components) = write_sbom(&predicate, &req.sbom_path)?;
    Ok(Attested {
        attached,
        sbom_digest,
        components,
        sbom_path: req.sbom_path,
    })
}

/// The SBOM document: listed from what the build left, or as stored.
async fn document(
    source: &SbomInputs,
    sbom: &SbomInput<'_>,
    reporter: &dyn Reporter,
) -> Result<serde_json::Value, AttestError> {
    reporter.step("Listing the artifact's components (CycloneDX SBOM)");
    let document = match source {
        SbomInputs::Rust(project) => sbom::rust(project, sbom).await?,
        SbomInputs::Python {
            deps_dir,
            project_dist,
        } => {
            if !deps_dir.is_dir() {
                return Err(AttestError::DependenciesGone {
                    path: deps_dir.clone(),
                });
            }
            sbom::python(deps_dir, project_dist.as_deref(), sbom)?
        }
        SbomInputs::Stored(bytes) => {
            return serde_json::from_slice(bytes).map_err(AttestError::Stored);
        }
    };
    Ok(serde_json::from_str(&document).expect("kiln's SBOM is JSON"))
}

/// Writes the SBOM next to the build; returns its digest and component count.
fn write_sbom(
    predicate: &serde_json::Value,
    path: &std::path::Path,
) -> Result<(String, usize), AttestError> {
    let bytes = serde_json::to_vec(predicate).expect("a JSON value serialises");
    let write = |source| AttestError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    kiln_cache::fsutil::write_atomic(path, &bytes).map_err(write)?;
    let components = predicate["components"]
        .as_array()
        .map_or(0, |components| components.len());
    Ok((crate::oci::digest(&bytes), components))
}

/// What `kiln build --no-publish` stores for `kiln publish`.
#[derive(Debug)]
pub struct UnsignedRequest<'a> {
    pub layout: &'a Layout,
    pub sbom: SbomInput<'a>,
    pub source: &'a SbomInputs,
    pub sbom_path: PathBuf,
}

/// The SBOM stored unsigned.
#[derive(Debug, Clone)]
pub struct Unsigned {
    /// `sha256-<hex>.sbom`, in the layout only.
    pub tag: String,
    pub sbom_digest: String,
    pub components: usize,
}

/// `kiln build --no-publish`: lists the artifact's components and stores the SBOM,
/// unsigned, in the layout under the artifact's `sha256-<hex>.sbom` tag.
pub async fn store_unsigned(
    req: UnsignedRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<Unsigned, AttestError> {
    let predicate = document(req.source, &req.sbom, reporter).await?;
    let (sbom_digest, components) = write_sbom(&predicate, &req.sbom_path)?;
    let bytes = serde_json::to_vec(&predicate).expect("a JSON value serialises");
    let artifact = sign::sbom_attachment(req.sbom.artifact_digest, bytes)?;
    let tag = artifact.tag.clone();
    attach(req.layout, None, &tag, Entry::New(artifact), reporter).await?;
    Ok(Unsigned {
        tag,
        sbom_digest,
        components,
    })
}

/// The SBOM `kiln build --no-publish` stored beside the artifact `digest`, if any.
pub fn stored(layout: &Layout, digest: &str) -> Result<Option<Vec<u8>>, AttestError> {
    let tag = sign::cosign_tag(digest, "sbom")?;
    let read = |source| AttestError::ReadStored {
        tag: tag.clone(),
        source,
    };
    let Some((_, bytes)) = layout.tagged(&tag).map_err(read)? else {
        return Ok(None);
    };
    let manifest: oci_client::manifest::OciImageManifest =
        serde_json::from_slice(&bytes).map_err(AttestError::Stored)?;
    let Some(layer) = manifest
        .layers
        .iter()
        .find(|layer| layer.media_type == sign::CYCLONEDX_MEDIA_TYPE)
    else {
        return Ok(None);
    };
    layout.read_blob(&layer.digest).map(Some).map_err(read)
}
