//! cosign's "simple signing" signatures, stored under the `sha256-<hex>.sig` tag.
//!
//! The payload names the manifest digest and the repository; the signature over the
//! payload's exact bytes sits base64-encoded in the layer annotation
//! `dev.cosignproject.cosign/signature`.
//!
//! Verification reads what anyone could have pushed under the `.sig` tag: nothing here
//! indexes or slices (`fuzz/`'s `simple_signing` target checks that no input panics).
#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sigstore::cosign::payload::SimpleSigning;
use sigstore::cosign::payload::simple_signing::{CRITICAL_TYPE_NAME, Critical, Identity, Image};

use super::manifest::{self, NewLayer};
use super::{
    Blobs, Check, PayloadSignature, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, SignError,
    SignatureArtifact, SigningKey, VerifyError, cosign_tag,
};

/// Signs the manifest `digest` of the artifact in `reference` and returns the `.sig`
/// manifest: `existing` (the manifest under the `.sig` tag now, if any) with one more
/// layer, as `cosign sign` appends rather than replaces.
///
/// `reference` is the repository the artifact is pushed to (`ghcr.io/acme/app`); a tag
/// or digest on it is dropped, as cosign records only the repository.
pub fn sign_manifest(
    digest: &str,
    reference: &str,
    key: &SigningKey,
    existing: Option<&[u8]>,
) -> Result<SignatureArtifact, SignError> {
    let payload = payload(digest, reference);
    let signature = key.sign(&payload).map_err(|source| SignError::Sign {
        digest: digest.to_string(),
        source,
    })?;
    signature_manifest(
        digest,
        payload,
        PayloadSignature {
            signature,
            annotations: BTreeMap::new(),
        },
        existing,
    )
}

/// The `.sig` manifest for `payload` (from [`payload`]) signed with `signature`: `existing`
/// with one more layer, annotated with the signature and `signature.annotations` (a
/// keyless signature's certificate and Rekor bundle).
pub fn signature_manifest(
    digest: &str,
    payload: Vec<u8>,
    signature: PayloadSignature,
    existing: Option<&[u8]>,
) -> Result<SignatureArtifact, SignError> {
    let tag = cosign_tag(digest, "sig")?;
    let mut annotations = signature.annotations;
    annotations.insert(
        SIGNATURE_ANNOTATION.to_string(),
        STANDARD.encode(signature.signature),
    );
    manifest::append(
        tag,
        existing,
        NewLayer {
            bytes: payload,
            media_type: SIMPLE_SIGNING_MEDIA_TYPE,
            annotations,
        },
    )
}

/// The simple-signing payload cosign signs, byte for byte:
/// `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":"cosign container image signature"},"optional":null}`.
pub fn payload(digest: &str, reference: &str) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: repository(reference).to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            type_name: CRITICAL_TYPE_NAME.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("the payload serialises")
}

/// `reference` without its `@digest` and `:tag`.
fn repository(reference: &str) -> &str {
    let reference = reference
        .split_once('@')
        .map_or(reference, |(repo, _)| repo);
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference.get(name_start..).and_then(|name| name.rfind(':')) {
        Some(i) => reference.get(..name_start + i).unwrap_or(reference),
        None => reference,
    }
}

/// Checks that the `.sig` manifest holds a signature by `key` (a public key, or a keyless
/// policy) over a payload naming `expected_digest`.
///
/// As with `cosign verify`, one such layer suffices: layers by other signers (a keyless
/// signature next to kiln's) are not this key's to judge. When no layer passes, the
/// error is that of the layer that got furthest: a good signature over another digest
/// says more than a bad signature.
pub fn verify_signature(
    manifest_bytes: &[u8],
    blobs: &(impl Blobs + ?Sized),
    expected_digest: &str,
    key: &(impl Check + ?Sized),
) -> Result<(), VerifyError> {
    let tag = cosign_tag(expected_digest, "sig").map_err(|_| VerifyError::BadDigest {
        digest: expected_digest.to_string(),
    })?;
    let manifest = manifest::parse(&tag, manifest_bytes)?;
    manifest::each_layer(&tag, &manifest, SIMPLE_SIGNING_MEDIA_TYPE, |layer| {
        let no_signature = || VerifyError::NoSignature { tag: tag.clone() };
        let annotations = layer.annotations.clone().unwrap_or_default();
        let signature = annotations
            .get(SIGNATURE_ANNOTATION)
            .filter(|s| !s.is_empty())
            .ok_or_else(no_signature)?;
        let payload = manifest::read_layer(&tag, blobs, layer)?;
        let signature = decode_base64(signature)
            .ok_or_else(|| VerifyError::BadSignature { tag: tag.clone() })?;
        key.check(&tag, &signature, &payload, &annotations)?;
        let malformed =
            |source: Box<dyn std::error::Error + Send + Sync>| VerifyError::MalformedPayload {
                tag: tag.clone(),
                layer: layer.digest.clone(),
                source,
            };
        let payload: SimpleSigning =
            serde_json::from_slice(&payload).map_err(|e| malformed(e.into()))?;
        if payload.critical.type_name != CRITICAL_TYPE_NAME {
            return Err(malformed(
                format!(
                    "its type is `{}`, not `{CRITICAL_TYPE_NAME}`",
                    payload.critical.type_name
                )
                .into(),
            ));
        }
        let found = payload.critical.image.docker_manifest_digest;
        if found != expected_digest {
            return Err(VerifyError::WrongDigest {
                tag: tag.clone(),
                expected: expected_digest.to_string(),
                found,
            });
        }
        Ok(())
    })
    .map(drop)
}

/// Standard base64, ignoring the line breaks some producers insert (as cosign does).
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    STANDARD.decode(cleaned).ok()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use oci_client::manifest::OciImageManifest;
    use secrecy::SecretString;

    use super::*;
    use crate::sign::keys::{generate, load_private, load_public};
    use crate::sign::tests::key_pair;

    const DIGEST: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";

    #[test]
    fn payload_matches_cosign() {
        // sigstore-rs's test vector, signed by cosign.
        assert_eq!(
            String::from_utf8(payload(DIGEST, "registry-testing.svc.lan/busybox")).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"registry-testing.svc.lan/busybox"},"image":{"docker-manifest-digest":"sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn verifies_a_signature_made_by_cosign() {
        // The public key, payload and signature of sigstore-rs's verification test.
        let key = load_public(
            "-----BEGIN PUBLIC KEY-----\n\
             MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu\n\
             OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==\n\
             -----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let signature = "MEUCIQD6q/COgzOyW0YH1Dk+CCYSt4uAhm3FDHUwvPI55zwnlwIgE0ZK58ZOWpZw8YVmBapJhBqCfdPekIknimuO0xH8Jh8=";
        let payload = payload(DIGEST, "registry-testing.svc.lan/busybox");
        let manifest = manifest::append(
            cosign_tag(DIGEST, "sig").unwrap(),
            None,
            NewLayer {
                bytes: payload,
                media_type: SIMPLE_SIGNING_MEDIA_TYPE,
                annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.into(), signature.into())]),
            },
        )
        .unwrap();
        verify_signature(&manifest.manifest_bytes, &manifest.blobs, DIGEST, &key).unwrap();
    }

    #[test]
    fn references_lose_tag_and_digest() {
        assert_eq!(repository("ghcr.io/acme/app"), "ghcr.io/acme/app");
        assert_eq!(repository("ghcr.io/acme/app:1.0"), "ghcr.io/acme/app");
        assert_eq!(
            repository(&format!("localhost:5000/app@{DIGEST}")),
            "localhost:5000/app"
        );
        assert_eq!(repository("localhost:5000/app:v1"), "localhost:5000/app");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
    }

    #[test]
    fn signs_and_verifies() {
        let (key, public) = key_pair();
        let sig = sign_manifest(DIGEST, "ghcr.io/acme/app:1.0", key, None).unwrap();
        assert_eq!(
            sig.tag,
            "sha256-f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b.sig"
        );
        verify_signature(&sig.manifest_bytes, &sig.blobs, DIGEST, public).unwrap();

        let manifest: OciImageManifest = serde_json::from_slice(&sig.manifest_bytes).unwrap();
        assert_eq!(manifest.layers.len(), 1);
        assert_eq!(manifest.layers[0].media_type, SIMPLE_SIGNING_MEDIA_TYPE);
        let payload: serde_json::Value = serde_json::from_slice(&sig.blobs[0].1).unwrap();
        assert_eq!(
            payload["critical"]["identity"]["docker-reference"],
            "ghcr.io/acme/app"
        );
    }

    #[test]
    fn appends_to_an_existing_signature() {
        let (key, public) = key_pair();
        let (other_private, _) = generate(&SecretString::from("")).unwrap();
        let other = load_private(&other_private, &SecretString::from("")).unwrap();
        let first = sign_manifest(DIGEST, "ghcr.io/acme/app", &other, None).unwrap();
        let second =
            sign_manifest(DIGEST, "ghcr.io/acme/app", key, Some(&first.manifest_bytes)).unwrap();
        let manifest: OciImageManifest = serde_json::from_slice(&second.manifest_bytes).unwrap();
        assert_eq!(manifest.layers.len(), 2);

        let mut blobs = first.blobs.clone();
        blobs.extend(second.blobs.clone());
        // Our key's layer verifies; the other signer's layer does not stop it.
        verify_signature(&second.manifest_bytes, &blobs, DIGEST, public).unwrap();
        // The first manifest alone holds only the other key's signature.
        let err =
            verify_signature(&first.manifest_bytes, &first.blobs, DIGEST, public).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    /// The one-layer signature with its blobs, after `edit` changed them.
    fn tampered(
        edit: impl FnOnce(&mut OciImageManifest, &mut Vec<(String, Vec<u8>)>),
    ) -> Result<(), VerifyError> {
        let (key, public) = key_pair();
        let sig = sign_manifest(DIGEST, "ghcr.io/acme/app", key, None).unwrap();
        let mut manifest: OciImageManifest = serde_json::from_slice(&sig.manifest_bytes).unwrap();
        let mut blobs = sig.blobs.clone();
        edit(&mut manifest, &mut blobs);
        verify_signature(
            &serde_json::to_vec(&manifest).unwrap(),
            &blobs,
            DIGEST,
            public,
        )
    }

    /// Replaces the payload blob with `f(payload)`, keeping the manifest consistent.
    fn replace_payload(
        manifest: &mut OciImageManifest,
        blobs: &mut [(String, Vec<u8>)],
        f: impl FnOnce(&mut Vec<u8>),
    ) {
        f(&mut blobs[0].1);
        blobs[0].0 = crate::oci::digest(&blobs[0].1);
        manifest.layers[0].digest = blobs[0].0.clone();
        manifest.layers[0].size = blobs[0].1.len() as i64;
    }

    #[test]
    fn a_tampered_payload_fails() {
        let err = tampered(|m, b| {
            replace_payload(m, b, |p| {
                let i = p.len() - 20;
                p[i] ^= 1;
            })
        })
        .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn a_payload_swapped_without_its_digest_fails() {
        let err = tampered(|_, b| b[0].1[10] ^= 1).unwrap_err();
        assert!(
            matches!(err, VerifyError::BlobDigestMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_tampered_signature_fails() {
        let err = tampered(|m, _| {
            let sig = m.layers[0]
                .annotations
                .as_mut()
                .unwrap()
                .get_mut(SIGNATURE_ANNOTATION)
                .unwrap();
            let mut raw = decode_base64(sig).unwrap();
            let i = raw.len() - 1;
            raw[i] ^= 1;
            *sig = STANDARD.encode(raw);
        })
        .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn a_signature_for_another_digest_fails() {
        let (key, public) = key_pair();
        let sig = sign_manifest(DIGEST, "ghcr.io/acme/app", key, None).unwrap();
        let other = format!("sha256:{}", "0".repeat(64));
        let err = verify_signature(&sig.manifest_bytes, &sig.blobs, &other, public).unwrap_err();
        assert!(
            matches!(&err, VerifyError::WrongDigest { found, .. } if found == DIGEST),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "The signature in `sha256-{}.sig` is for `{DIGEST}`, not `{other}`",
                "0".repeat(64)
            )
        );
    }

    #[test]
    fn a_signed_but_malformed_payload_fails() {
        let (key, public) = key_pair();
        let bytes = br#"{"critical":{}}"#.to_vec();
        let signature = STANDARD.encode(key.sign(&bytes).unwrap());
        let sig = manifest::append(
            cosign_tag(DIGEST, "sig").unwrap(),
            None,
            NewLayer {
                bytes,
                media_type: SIMPLE_SIGNING_MEDIA_TYPE,
                annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.into(), signature)]),
            },
        )
        .unwrap();
        let err = verify_signature(&sig.manifest_bytes, &sig.blobs, DIGEST, public).unwrap_err();
        assert!(
            matches!(err, VerifyError::MalformedPayload { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn no_signature_is_its_own_error() {
        let (_, public) = key_pair();
        let err = tampered(|m, _| m.layers.clear()).unwrap_err();
        assert!(matches!(err, VerifyError::NoSignature { .. }), "{err:?}");
        let err = tampered(|m, _| m.layers[0].annotations = None).unwrap_err();
        assert!(matches!(err, VerifyError::NoSignature { .. }), "{err:?}");
        let err = verify_signature(b"not json", &Vec::new(), DIGEST, public).unwrap_err();
        assert!(
            matches!(err, VerifyError::MalformedManifest { .. }),
            "{err:?}"
        );
    }
}
