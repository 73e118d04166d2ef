//! cosign-compatible signatures and signed in-toto attestations, with a key pair or
//! keylessly (Fulcio and Rekor, [`keyless`]).
//!
//! 1. [`keys`]: generate and read cosign key pairs (sigstore-rs does the cryptography).
//! 2. [`sign_manifest`]: sign an artifact's manifest digest with a simple-signing payload
//!    and build the `sha256-<hex>.sig` manifest cosign v2 writes, appending to an
//!    existing one.
//! 3. [`attest`]: wrap a predicate in an in-toto Statement v1, sign it as a DSSE envelope
//!    and build the `sha256-<hex>.att` manifest, appending likewise.
//! 4. [`verify_signature`] and [`verify_attestation`] check both against a public key.
//!
//! Everything here is pure: it builds manifests and blobs, and reads them through
//! [`Blobs`]. Storing them is [`CosignArtifact::store`] (an OCI layout); pushing them is
//! the registry's job. Key-pair signatures get no Rekor entry: `cosign verify` needs
//! `--insecure-ignore-tlog` for them. Keyless signatures are logged in Rekor and carry
//! cosign's certificate, chain and bundle annotations.

pub mod attached;
pub mod dsse;
pub mod keyless;
pub mod keyring;
pub mod keys;
mod manifest;
pub mod simple_signing;

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::diagnose::{Blame, Diagnose};
use crate::oci::layout::{Layout, LayoutError};

pub use dsse::{Statement, Subject, attest, verify_attestation, verify_attestations};
pub use keyless::{KeylessError, KeylessOptions, KeylessSigner};
pub use keyring::{KeyOrigin, KeyringError, Signer};
pub use keys::{KeyError, PublicKey, SigningKey, generate, load_private, load_public};
pub use simple_signing::{sign_manifest, signature_manifest, verify_signature};

/// The media type of a simple-signing payload layer in a `.sig` manifest.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The media type of a DSSE envelope layer in a `.att` manifest.
pub const DSSE_ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation holding the base64 signature (empty on attestation layers).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// A `.sig` manifest and the blobs it adds.
pub type SignatureArtifact = CosignArtifact;
/// A `.att` manifest and the blobs it adds.
pub type AttestationArtifact = CosignArtifact;

/// A signature over a payload, and the layer annotations that go with it: none for a
/// key pair; the certificate, chain and Rekor bundle for a keyless signature.
#[derive(Debug, Clone)]
pub struct PayloadSignature {
    /// ASN.1 DER ECDSA signature.
    pub signature: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Who signs: a key pair, or an ephemeral key with a Fulcio certificate.
#[derive(Debug)]
pub enum Signing {
    Key(Signer),
    Keyless(KeylessSigner),
}

impl Signing {
    /// Signs `message` (and, keylessly, logs the signature in Rekor).
    pub async fn sign(&self, digest: &str, message: &[u8]) -> Result<PayloadSignature, SignError> {
        match self {
            Signing::Key(signer) => {
                let signature = signer.key.sign(message).map_err(|source| SignError::Sign {
                    digest: digest.to_string(),
                    source,
                })?;
                Ok(PayloadSignature {
                    signature,
                    annotations: BTreeMap::new(),
                })
            }
            Signing::Keyless(signer) => {
                signer
                    .sign(message)
                    .await
                    .map_err(|source| SignError::Keyless {
                        digest: digest.to_string(),
                        source,
                    })
            }
        }
    }

    /// Which key signed, as the summary says it.
    pub fn describe(&self) -> String {
        match self {
            Signing::Key(signer) => signer.origin.to_string(),
            Signing::Keyless(signer) => {
                format!("keyless: {} from {}", signer.identity, signer.issuer)
            }
        }
    }
}

/// Signing checks its own earlier signatures, to keep them rather than sign again.
impl Check for Signing {
    fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError> {
        match self {
            Signing::Key(signer) => signer.public.check(tag, signature, message, annotations),
            Signing::Keyless(signer) => match signer.own_policy() {
                Some(policy) => policy.check(tag, signature, message, annotations),
                None => Err(VerifyError::NoCertificate {
                    tag: tag.to_string(),
                }),
            },
        }
    }
}

/// What a signature layer is checked against: a public key, or a keyless policy.
pub trait Check {
    /// Ok when `signature` over `message`, in a layer of `tag` with `annotations`, holds.
    fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError>;
}

impl Check for PublicKey {
    fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        _: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError> {
        if self.verifies(signature, message) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature {
                tag: tag.to_string(),
            })
        }
    }
}

impl Check for keyless::Policy {
    fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError> {
        keyless::Policy::check(self, tag, signature, message, annotations)
    }
}

/// What `kiln verify` checks signatures with.
#[derive(Debug)]
pub enum Verifier {
    /// A cosign public key.
    Key(PublicKey),
    /// A keyless identity and issuer, under a Fulcio root.
    Keyless(keyless::Policy),
}

impl Check for Verifier {
    fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError> {
        match self {
            Verifier::Key(key) => key.check(tag, signature, message, annotations),
            Verifier::Keyless(policy) => policy.check(tag, signature, message, annotations),
        }
    }
}

/// The media type of a CycloneDX JSON document, as `cosign attach sbom` gives it.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// An unsigned SBOM attached under the artifact's `sha256-<hex>.sbom` tag, as
/// `cosign attach sbom` does: what `kiln build --no-publish` leaves for `kiln publish`.
pub fn sbom_attachment(digest: &str, document: Vec<u8>) -> Result<CosignArtifact, SignError> {
    manifest::append(
        cosign_tag(digest, "sbom")?,
        None,
        manifest::NewLayer {
            bytes: document,
            media_type: CYCLONEDX_MEDIA_TYPE,
            annotations: std::collections::BTreeMap::new(),
        },
    )
}

/// A manifest cosign attaches to an artifact by tag, and the blobs it adds.
#[derive(Debug, Clone)]
pub struct CosignArtifact {
    /// The manifest, as stored and pushed.
    pub manifest_bytes: Vec<u8>,
    /// `sha256:<hex>` of `manifest_bytes`.
    pub manifest_digest: String,
    /// (`sha256:<hex>`, content) of the new layer and the new config. Layers of the
    /// manifest this one was appended to are not repeated: they are stored already.
    pub blobs: Vec<(String, Vec<u8>)>,
    /// `sha256-<hex>.sig` or `sha256-<hex>.att`, where `<hex>` is the signed digest.
    pub tag: String,
}

impl CosignArtifact {
    /// Stores the blobs and the manifest in `layout` and points [`Self::tag`] at it.
    pub fn store(&self, layout: &Layout) -> Result<(), LayoutError> {
        for (_, bytes) in &self.blobs {
            layout.put_blob(bytes)?;
        }
        let digest = layout.put_blob(&self.manifest_bytes)?;
        layout.tag(&self.tag, &digest, self.manifest_bytes.len() as u64, None)
    }
}

/// Where verification reads the blobs a manifest names.
pub trait Blobs {
    /// The content of `digest`, if there is such a blob.
    fn blob(&self, digest: &str) -> Option<Cow<'_, [u8]>>;
}

impl Blobs for [(String, Vec<u8>)] {
    fn blob(&self, digest: &str) -> Option<Cow<'_, [u8]>> {
        self.iter()
            .find(|(d, _)| d == digest)
            .map(|(_, bytes)| Cow::Borrowed(bytes.as_slice()))
    }
}

impl Blobs for Vec<(String, Vec<u8>)> {
    fn blob(&self, digest: &str) -> Option<Cow<'_, [u8]>> {
        self.as_slice().blob(digest)
    }
}

impl Blobs for Layout {
    fn blob(&self, digest: &str) -> Option<Cow<'_, [u8]>> {
        self.read_blob(digest).ok().map(Cow::Owned)
    }
}

/// The tag cosign derives from a digest: `sha256:<hex>` becomes `sha256-<hex>.<suffix>`.
pub fn cosign_tag(digest: &str, suffix: &str) -> Result<String, SignError> {
    let hex = crate::oci::sha256_hex(digest).ok_or_else(|| SignError::BadDigest {
        digest: digest.to_string(),
    })?;
    Ok(format!("sha256-{hex}.{suffix}"))
}

/// A signature or an attestation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("`{digest}` is not a sha256 digest")]
    BadDigest { digest: String },
    #[error("Failed to parse the existing `{tag}` manifest")]
    ExistingManifest {
        tag: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Failed to sign `{digest}`")]
    Sign {
        digest: String,
        #[source]
        source: KeyError,
    },
    #[error("Failed to sign `{digest}` keylessly")]
    Keyless {
        digest: String,
        #[source]
        source: KeylessError,
    },
}

impl Diagnose for SignError {
    fn hint(&self) -> Option<String> {
        match self {
            SignError::ExistingManifest { tag, .. } => Some(format!(
                "the `{tag}` tag does not hold a cosign manifest: inspect it with \
                 `crane manifest REPOSITORY:{tag}` and delete it if it is not a signature"
            )),
            SignError::Sign { source, .. } => source.hint(),
            SignError::Keyless { source, .. } => source.hint(),
            SignError::BadDigest { .. } => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            SignError::ExistingManifest { .. } => Blame::User,
            SignError::BadDigest { .. } => Blame::Internal,
            SignError::Sign { source, .. } => source.blame(),
            SignError::Keyless { source, .. } => source.blame(),
        }
    }
}

/// A signature or an attestation does not hold.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("`{digest}` is not a sha256 digest")]
    BadDigest { digest: String },
    #[error("Failed to parse the `{tag}` manifest")]
    MalformedManifest {
        tag: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Blob `{digest}` of the `{tag}` manifest is missing")]
    MissingBlob { tag: String, digest: String },
    #[error("Blob `{expected}` of the `{tag}` manifest has the content of `{actual}`")]
    BlobDigestMismatch {
        tag: String,
        expected: String,
        actual: String,
    },
    #[error("`{tag}` holds no signature")]
    NoSignature { tag: String },
    #[error("No signature in `{tag}` verifies with the public key")]
    BadSignature { tag: String },
    #[error("The signed payload in layer `{layer}` of `{tag}` is malformed")]
    MalformedPayload {
        tag: String,
        layer: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("The signature in `{tag}` is for `{found}`, not `{expected}`")]
    WrongDigest {
        tag: String,
        expected: String,
        found: String,
    },
    #[error(
        "The attestation in `{tag}` is about {}, not `{expected}`",
        list(found)
    )]
    WrongSubject {
        tag: String,
        expected: String,
        found: Vec<String>,
    },
    #[error("`{tag}` holds no verified attestation of type `{predicate_type}`")]
    NoPredicate { tag: String, predicate_type: String },
    #[error("No signature in `{tag}` carries a Fulcio certificate (keyless signature)")]
    NoCertificate { tag: String },
    #[error("The certificate in `{tag}` is malformed: {reason}")]
    MalformedCertificate { tag: String, reason: String },
    #[error("The certificate in `{tag}` does not chain to the given Fulcio root ({reason})")]
    UntrustedCertificate { tag: String, reason: String },
    #[error(
        "The certificate in `{tag}` was issued to {}, not `{expected}`",
        list(found)
    )]
    WrongIdentity {
        tag: String,
        expected: String,
        found: Vec<String>,
    },
    #[error(
        "The certificate in `{tag}` was issued on the word of {}, not `{expected}`",
        found.as_deref().map_or("no OIDC issuer".to_string(), |f| format!("`{f}`"))
    )]
    WrongIssuer {
        tag: String,
        expected: String,
        found: Option<String>,
    },
    #[error(
        "The certificate in `{tag}` was not valid when Rekor logged the signature (logged \
         at {}, valid from {} to {})",
        rfc3339(*logged),
        rfc3339(*not_before),
        rfc3339(*not_after)
    )]
    CertificateNotValid {
        tag: String,
        /// Seconds since the epoch, as the ones below.
        logged: i64,
        not_before: i64,
        not_after: i64,
    },
    #[error("The keyless signature in `{tag}` has no Rekor bundle")]
    NoTransparencyLog { tag: String },
    #[error("The Rekor entry of the signature in `{tag}` does not hold: {reason}")]
    BadTransparencyLog { tag: String, reason: String },
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn rfc3339(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "no subject".into();
    }
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl VerifyError {
    /// How far a layer got before failing: among several layers, the error of the one
    /// that got furthest explains best why none verified.
    fn rank(&self) -> u8 {
        match self {
            VerifyError::NoSignature { .. } => 0,
            VerifyError::NoCertificate { .. } => 1,
            VerifyError::MissingBlob { .. } | VerifyError::BlobDigestMismatch { .. } => 1,
            VerifyError::BadSignature { .. }
            | VerifyError::MalformedCertificate { .. }
            | VerifyError::UntrustedCertificate { .. }
            | VerifyError::WrongIdentity { .. }
            | VerifyError::WrongIssuer { .. }
            | VerifyError::CertificateNotValid { .. }
            | VerifyError::NoTransparencyLog { .. }
            | VerifyError::BadTransparencyLog { .. } => 2,
            VerifyError::MalformedPayload { .. } => 3,
            VerifyError::WrongDigest { .. } | VerifyError::WrongSubject { .. } => 4,
            VerifyError::BadDigest { .. }
            | VerifyError::MalformedManifest { .. }
            | VerifyError::NoPredicate { .. } => 5,
        }
    }
}

impl Diagnose for VerifyError {
    fn hint(&self) -> Option<String> {
        match self {
            VerifyError::BadSignature { .. } => Some(
                "check that the public key is the pair of the signing key; the artifact or \
                 its signature may have been altered"
                    .into(),
            ),
            VerifyError::NoSignature { .. } | VerifyError::NoPredicate { .. } => Some(
                "the artifact was not signed, or its signatures were pushed to another \
                 repository"
                    .into(),
            ),
            VerifyError::NoCertificate { .. } => Some(
                "the artifact was signed with a key pair, not keylessly: verify with `--key`"
                    .into(),
            ),
            VerifyError::UntrustedCertificate { .. } => Some(
                "pass the root certificate of the Fulcio that issued it with \
                 `--certificate-chain`"
                    .into(),
            ),
            VerifyError::WrongIdentity { found, .. } => Some(format!(
                "if you trust that signer, pass `--certificate-identity {}`",
                found.first().map_or("IDENTITY", String::as_str)
            )),
            VerifyError::WrongIssuer { found, .. } => Some(format!(
                "if you trust that issuer, pass `--certificate-oidc-issuer {}`",
                found.as_deref().unwrap_or("ISSUER")
            )),
            VerifyError::BadTransparencyLog { .. } => Some(
                "check that `--rekor-public-key` is the key of the Rekor the signature was \
                 logged in; otherwise the signature or its log entry were altered"
                    .into(),
            ),
            _ => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            VerifyError::BadDigest { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use secrecy::SecretString;

    use super::*;

    /// The password of [`generated`]'s private key.
    pub(crate) const PASSWORD: &str = "test";

    /// One generated (private PEM, public PEM) for every test: scrypt is slow unoptimised.
    pub(crate) fn generated() -> &'static (String, String) {
        static PEMS: OnceLock<(String, String)> = OnceLock::new();
        PEMS.get_or_init(|| generate(&SecretString::from(PASSWORD)).unwrap())
    }

    /// [`generated`], loaded.
    pub(crate) fn key_pair() -> (&'static SigningKey, &'static PublicKey) {
        static KEYS: OnceLock<(SigningKey, PublicKey)> = OnceLock::new();
        let (private, public) = KEYS.get_or_init(|| {
            let (private, public) = generated();
            (
                load_private(private, &SecretString::from(PASSWORD)).unwrap(),
                load_public(public).unwrap(),
            )
        });
        (private, public)
    }

    #[test]
    fn tags_follow_cosign() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            cosign_tag(&digest, "sig").unwrap(),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
        assert!(matches!(
            cosign_tag("sha512:00", "sig"),
            Err(SignError::BadDigest { .. })
        ));
    }
}
