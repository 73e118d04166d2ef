//! The attest stage: a signed CycloneDX SBOM attestation of the artifact.
//!
//! 1. Reads the `sha256-<hex>.att` manifest already there (registry when pushing, else
//!    the layout); one holding a CycloneDX attestation about this artifact signed by this
//!    signer is kept as it is.
//! 2. Otherwise lists what went into the artifact ([`crate::sbom`]): the Rust build graph
//!    for `wasm32-wasip1`, or the Python distributions installed for the component.
//! 3. Wraps the SBOM in an in-toto Statement whose subject is the artifact digest, signs
//!    it as a DSSE envelope, appends it to the `.att` manifest as `cosign attest` does,
//!    stores it in the layout and pushes it under its tag. Keylessly, Rekor gets the
//!    SHA-256 of the envelope's PAE, never the SBOM.
//! 4. Writes the SBOM next to the build (`sbom.cdx.json`) and reports its digest: the
//!    SHA-256 of exactly those bytes.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::oci::layout::Layout;
use crate::project::RustProject;
use crate::registry::Registry;
use crate::reporter::Reporter;
use crate::sbom::{self, SbomInput};
use crate::sign::{self, Signing};
use crate::stages::sign::{Attached, Entry, attach, existing};

/// The predicate type of a CycloneDX SBOM attestation.
pub const CYCLONEDX_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

/// Where the SBOM's contents come from.
#[derive(Debug, Clone, Copy)]
pub enum SbomSource<'a> {
    /// The Rust project's build graph (`cargo metadata`).
    Rust(&'a RustProject),
    /// The distributions pip installed into `deps_dir`; `project_dist` is the project's
    /// own (pyproject projects).
    Python {
        deps_dir: &'a Path,
        project_dist: Option<&'a str>,
    },
}

#[derive(Debug)]
pub struct AttestRequest<'a> {
    pub layout: &'a Layout,
    pub registry: Option<&'a Registry>,
    /// What the SBOM describes; its digest is the statement's subject.
    pub sbom: SbomInput<'a>,
    pub source: SbomSource<'a>,
    /// Where to write the SBOM document.
    pub sbom_path: PathBuf,
    pub signer: &'a Signing,
}

#[derive(Debug, Clone)]
pub struct Attested {
    pub attached: Attached,
    /// The SBOM document written to `sbom_path`.
    pub sbom_path: PathBuf,
    /// `sha256:<hex>` of the SBOM document.
    pub sbom_digest: String,
    /// How many components the SBOM lists.
    pub components: usize,
}

pub async fn run(req: AttestRequest<'_>, reporter: &dyn Reporter) -> anyhow::Result<Attested> {
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
                SbomSource::Rust(project) => sbom::rust(project, &req.sbom).await?,
                SbomSource::Python {
                    deps_dir,
                    project_dist,
                } => {
                    if !deps_dir.is_dir() {
                        anyhow::bail!(
                            "The Python dependencies this artifact was built from are gone \
                             from `{}`: rebuild with `kiln build --force` to attest it",
                            deps_dir.display()
                        );
                    }
                    sbom::python(deps_dir, project_dist, &req.sbom)?
                }
            };
            let predicate: serde_json::Value =
                serde_json::from_str(&document).context("kiln's SBOM is not JSON")?;
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
    if let Some(dir) = req.sbom_path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create `{}`", dir.display()))?;
    }
    std::fs::write(&req.sbom_path, &bytes)
        .with_context(|| format!("Failed to write `{}`", req.sbom_path.display()))?;
    Ok(Attested {
        attached,
        sbom_digest: crate::oci::digest(&bytes),
        components: predicate["components"]
            .as_array()
            .map_or(0, |components| components.len()),
        sbom_path: req.sbom_path,
    })
}
