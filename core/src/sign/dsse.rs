//! Signed in-toto attestations: a Statement v1 in a DSSE envelope, stored as cosign
//! stores them under the `sha256-<hex>.att` tag.
//!
//! sigstore-rs neither signs DSSE nor pushes attestations, so kiln builds the envelope:
//! the signature covers the DSSE pre-authentication encoding ([`pae`]) of the payload
//! type and the serialised Statement, never the JSON of the envelope.
//!
//! Verification reads what anyone could have pushed under the `.att` tag: nothing here
//! indexes or slices (`fuzz/`'s `dsse` target checks that no input panics).
#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use oci_client::manifest::OciImageManifest;
use serde::{Deserialize, Serialize};

use super::manifest::{self, NewLayer};
use super::simple_signing::decode_base64;
use super::{
    AttestationArtifact, Blobs, Check, DSSE_ENVELOPE_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION,
    PayloadSignature, SIGNATURE_ANNOTATION, SignError, SigningKey, VerifyError, cosign_tag,
};

/// The DSSE payload type of an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The `_type` of an in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The `_type` cosign 2.x still writes; same shape, accepted when verifying.
const STATEMENT_V0_1: &str = "https://in-toto.io/Statement/v0.1";

/// An in-toto Statement: what (`subject`) the `predicate` is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

/// A software artifact a Statement is about, by name and digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub name: String,
    /// Algorithm (`sha256`) to lowercase hex.
    pub digest: BTreeMap<String, String>,
}

/// A DSSE envelope (`application/vnd.dsse.envelope.v1+json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The base64 payload.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of a DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// The base64 signature over [`pae`].
    pub sig: String,
}

/// The DSSE v1 pre-authentication encoding, which is what gets signed:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Attests `predicate` (of type `predicate_type`) about the artifact `name` with manifest
/// `digest`: an in-toto Statement v1 signed as a DSSE envelope, in the `.att` manifest
/// `existing` (the manifest under the `.att` tag now, if any) with one more layer.
pub fn attest(
    digest: &str,
    name: &str,
    predicate_type: &str,
    predicate: &serde_json::Value,
    key: &SigningKey,
    existing: Option<&[u8]>,
) -> Result<AttestationArtifact, SignError> {
    let body = statement(digest, name, predicate_type, predicate)?;
    let signature = key
        .sign(&pae(IN_TOTO_PAYLOAD_TYPE, &body))
        .map_err(|source| SignError::Sign {
            digest: digest.to_string(),
            source,
        })?;
    attestation_manifest(
        digest,
        predicate_type,
        &body,
        PayloadSignature {
            signature,
            annotations: BTreeMap::new(),
        },
        existing,
    )
}

/// The serialised in-toto Statement v1 that `predicate` is about the artifact `name` with
/// manifest `digest`: the DSSE payload, whose [`pae`] is what gets signed.
pub fn statement(
    digest: &str,
    name: &str,
    predicate_type: &str,
    predicate: &serde_json::Value,
) -> Result<Vec<u8>, SignError> {
    let hex = crate::oci::sha256_hex(digest).ok_or_else(|| SignError::BadDigest {
        digest: digest.to_string(),
    })?;
    let statement = Statement {
        statement_type: STATEMENT_V1.to_string(),
        subject: vec![Subject {
            name: name.to_string(),
            digest: BTreeMap::from([("sha256".to_string(), hex.to_string())]),
        }],
        predicate_type: predicate_type.to_string(),
        predicate: predicate.clone(),
    };
    Ok(serde_json::to_vec(&statement).expect("the statement serialises"))
}

/// The `.att` manifest for the Statement `body` (from [`statement`]) with `signature`
/// over its [`pae`]: `existing` with one more DSSE envelope layer, annotated with the
/// predicate type and `signature.annotations` (a keyless signature's certificate and
/// Rekor bundle).
pub fn attestation_manifest(
    digest: &str,
    predicate_type: &str,
    body: &[u8],
    signature: PayloadSignature,
    existing: Option<&[u8]>,
) -> Result<AttestationArtifact, SignError> {
    let tag = cosign_tag(digest, "att")?;
    let envelope = Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        payload: STANDARD.encode(body),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: STANDARD.encode(signature.signature),
        }],
    };
    let mut annotations = signature.annotations;
    // cosign writes the key with an empty value on attestation layers.
    annotations.insert(SIGNATURE_ANNOTATION.to_string(), String::new());
    annotations.insert(
        PREDICATE_TYPE_ANNOTATION.to_string(),
        predicate_type.to_string(),
    );
    manifest::append(
        tag,
        existing,
        NewLayer {
            bytes: serde_json::to_vec(&envelope).expect("the envelope serialises"),
            media_type: DSSE_ENVELOPE_MEDIA_TYPE,
            annotations,
        },
    )
}

/// The newest attestation of `predicate_type` in the `.att` manifest that is signed by
/// `key` and whose subject is `expected_digest`.
pub fn verify_attestation(
    manifest_bytes: &[u8],
    blobs: &(impl Blobs + ?Sized),
    expected_digest: &str,
    predicate_type: &str,
    key: &(impl Check + ?Sized),
) -> Result<Statement, VerifyError> {
    let (tag, manifest) = parse(manifest_bytes, expected_digest)?;
    let of_type = |annotations: Option<&BTreeMap<String, String>>| {
        annotations
            .and_then(|a| a.get(PREDICATE_TYPE_ANNOTATION))
            .map(String::as_str)
            == Some(predicate_type)
    };
    if !manifest
        .layers
        .iter()
        .any(|l| of_type(l.annotations.as_ref()))
    {
        return Err(if manifest.layers.is_empty() {
            VerifyError::NoSignature { tag }
        } else {
            VerifyError::NoPredicate {
                tag,
                predicate_type: predicate_type.to_string(),
            }
        });
    }
    let mut statements =
        manifest::each_layer(&tag, &manifest, DSSE_ENVELOPE_MEDIA_TYPE, |layer| {
            if !of_type(layer.annotations.as_ref()) {
                return Err(VerifyError::NoSignature { tag: tag.clone() });
            }
            let statement = verify_layer(&tag, blobs, layer, expected_digest, key)?;
            if statement.predicate_type != predicate_type {
                return Err(VerifyError::MalformedPayload {
                    tag: tag.clone(),
                    layer: layer.digest.clone(),
                    source: format!(
                        "it is annotated `{predicate_type}` but its statement is `{}`",
                        statement.predicate_type
                    )
                    .into(),
                });
            }
            Ok(statement)
        })?;
    Ok(statements.pop().expect("each_layer returns at least one"))
}

/// Every attestation in the `.att` manifest that is signed by `key` and whose subject is
/// `expected_digest`, oldest first; at least one.
///
/// As with `cosign verify-attestation`, layers signed by other keys are passed over.
pub fn verify_attestations(
    manifest_bytes: &[u8],
    blobs: &(impl Blobs + ?Sized),
    expected_digest: &str,
    key: &(impl Check + ?Sized),
) -> Result<Vec<Statement>, VerifyError> {
    let (tag, manifest) = parse(manifest_bytes, expected_digest)?;
    manifest::each_layer(&tag, &manifest, DSSE_ENVELOPE_MEDIA_TYPE, |layer| {
        verify_layer(&tag, blobs, layer, expected_digest, key)
    })
}

fn parse(
    manifest_bytes: &[u8],
    expected_digest: &str,
) -> Result<(String, OciImageManifest), VerifyError> {
    let tag = cosign_tag(expected_digest, "att").map_err(|_| VerifyError::BadDigest {
        digest: expected_digest.to_string(),
    })?;
    let manifest = manifest::parse(&tag, manifest_bytes)?;
    Ok((tag, manifest))
}

/// Checks one envelope layer: signed by `key` over the PAE, an in-toto Statement, about
/// `expected_digest`.
fn verify_layer(
    tag: &str,
    blobs: &(impl Blobs + ?Sized),
    layer: &oci_client::manifest::OciDescriptor,
    expected_digest: &str,
    key: &(impl Check + ?Sized),
) -> Result<Statement, VerifyError> {
    let malformed =
        |source: Box<dyn std::error::Error + Send + Sync>| VerifyError::MalformedPayload {
            tag: tag.to_string(),
            layer: layer.digest.clone(),
            source,
        };
    let bytes = manifest::read_layer(tag, blobs, layer)?;
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| malformed(e.into()))?;
    // The DSSE spec lets the payload be either base64 alphabet.
    let body = decode_base64(&envelope.payload)
        .or_else(|| URL_SAFE.decode(&envelope.payload).ok())
        .ok_or_else(|| malformed("its payload is not base64".into()))?;
    if envelope.signatures.is_empty() {
        return Err(VerifyError::NoSignature {
            tag: tag.to_string(),
        });
    }
    let signed = pae(&envelope.payload_type, &body);
    let annotations = layer.annotations.clone().unwrap_or_default();
    let mut failure = None;
    for s in &envelope.signatures {
        let checked = match decode_base64(&s.sig).or_else(|| URL_SAFE.decode(&s.sig).ok()) {
            Some(sig) => key.check(tag, &sig, &signed, &annotations),
            None => Err(VerifyError::BadSignature {
                tag: tag.to_string(),
            }),
        };
        match checked {
            Ok(()) => {
                failure = None;
                break;
            }
            Err(err) => failure = Some(err),
        }
    }
    if let Some(err) = failure {
        return Err(err);
    }
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(malformed(
            format!(
                "its payload type is `{}`, not `{IN_TOTO_PAYLOAD_TYPE}`",
                envelope.payload_type
            )
            .into(),
        ));
    }
    let statement: Statement = serde_json::from_slice(&body).map_err(|e| malformed(e.into()))?;
    if statement.statement_type != STATEMENT_V1 && statement.statement_type != STATEMENT_V0_1 {
        return Err(malformed(
            format!(
                "its statement type is `{}`, not `{STATEMENT_V1}`",
                statement.statement_type
            )
            .into(),
        ));
    }
    let hex = expected_digest
        .strip_prefix("sha256:")
        .expect("checked by cosign_tag");
    let about = |s: &Subject| s.digest.get("sha256").map(String::as_str) == Some(hex);
    if !statement.subject.iter().any(about) {
        return Err(VerifyError::WrongSubject {
            tag: tag.to_string(),
            expected: expected_digest.to_string(),
            found: statement
                .subject
                .iter()
                .flat_map(|s| s.digest.iter().map(|(alg, hex)| format!("{alg}:{hex}")))
                .collect(),
        });
    }
    Ok(statement)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sign::tests::key_pair;

    const DIGEST: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";
    const SLSA: &str = "https://slsa.dev/provenance/v1";
    const CYCLONEDX: &str = "https://cyclonedx.org/bom";

    #[test]
    fn pae_matches_the_spec_example() {
        // protocol.md, "Test vectors" (secure-systems-lab/dsse).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        // Lengths count bytes, not characters.
        assert_eq!(pae("t", "é".as_bytes()), "DSSEv1 1 t 2 é".as_bytes());
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    fn attestation(predicate_type: &str) -> AttestationArtifact {
        let (key, _) = key_pair();
        attest(
            DIGEST,
            "ghcr.io/acme/app",
            predicate_type,
            &json!({"buildDefinition": {"buildType": "https://kiln.dev/build/v1"}}),
            key,
            None,
        )
        .unwrap()
    }

    #[test]
    fn attests_and_verifies() {
        let (_, public) = key_pair();
        let att = attestation(SLSA);
        assert_eq!(
            att.tag,
            "sha256-f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b.att"
        );
        let statement =
            verify_attestation(&att.manifest_bytes, &att.blobs, DIGEST, SLSA, public).unwrap();
        assert_eq!(statement.statement_type, STATEMENT_V1);
        assert_eq!(statement.predicate_type, SLSA);
        assert_eq!(statement.subject[0].name, "ghcr.io/acme/app");
        assert_eq!(
            statement.predicate["buildDefinition"]["buildType"],
            "https://kiln.dev/build/v1"
        );

        let manifest: OciImageManifest = serde_json::from_slice(&att.manifest_bytes).unwrap();
        let annotations = manifest.layers[0].annotations.as_ref().unwrap();
        assert_eq!(manifest.layers[0].media_type, DSSE_ENVELOPE_MEDIA_TYPE);
        assert_eq!(annotations[PREDICATE_TYPE_ANNOTATION], SLSA);
        let envelope: serde_json::Value = serde_json::from_slice(&att.blobs[0].1).unwrap();
        assert_eq!(envelope["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(envelope["signatures"][0]["keyid"], "");
    }

    #[test]
    fn attestations_accumulate() {
        let (key, public) = key_pair();
        let first = attestation(SLSA);
        let second = attest(
            DIGEST,
            "ghcr.io/acme/app",
            CYCLONEDX,
            &json!({"bomFormat": "CycloneDX"}),
            key,
            Some(&first.manifest_bytes),
        )
        .unwrap();
        let mut blobs = first.blobs.clone();
        blobs.extend(second.blobs.clone());
        let all = verify_attestations(&second.manifest_bytes, &blobs, DIGEST, public).unwrap();
        assert_eq!(
            all.iter()
                .map(|s| s.predicate_type.as_str())
                .collect::<Vec<_>>(),
            [SLSA, CYCLONEDX]
        );
        let bom =
            verify_attestation(&second.manifest_bytes, &blobs, DIGEST, CYCLONEDX, public).unwrap();
        assert_eq!(bom.predicate["bomFormat"], "CycloneDX");
        let err =
            verify_attestation(&second.manifest_bytes, &blobs, DIGEST, "x", public).unwrap_err();
        assert!(matches!(err, VerifyError::NoPredicate { .. }), "{err:?}");
    }

    /// Rewrites the envelope of a one-layer attestation and verifies the result.
    fn tampered(edit: impl FnOnce(&mut Envelope)) -> Result<Statement, VerifyError> {
        let (_, public) = key_pair();
        let att = attestation(SLSA);
        let mut envelope: Envelope = serde_json::from_slice(&att.blobs[0].1).unwrap();
        edit(&mut envelope);
        let bytes = serde_json::to_vec(&envelope).unwrap();
        let mut manifest: OciImageManifest = serde_json::from_slice(&att.manifest_bytes).unwrap();
        manifest.layers[0].digest = crate::oci::digest(&bytes);
        manifest.layers[0].size = bytes.len() as i64;
        let blobs = vec![(crate::oci::digest(&bytes), bytes)];
        verify_attestation(
            &serde_json::to_vec(&manifest).unwrap(),
            &blobs,
            DIGEST,
            SLSA,
            public,
        )
    }

    fn edit_statement(envelope: &mut Envelope, f: impl FnOnce(&mut serde_json::Value)) {
        let mut statement: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&envelope.payload).unwrap()).unwrap();
        f(&mut statement);
        envelope.payload = STANDARD.encode(serde_json::to_vec(&statement).unwrap());
    }

    #[test]
    fn untampered_envelope_still_verifies() {
        // The tamper tests below re-serialise the envelope; that alone must not matter.
        tampered(|_| {}).unwrap();
    }

    #[test]
    fn a_tampered_payload_fails() {
        let err = tampered(|e| {
            let mut body = STANDARD.decode(&e.payload).unwrap();
            let i = body.len() - 5;
            body[i] ^= 1;
            e.payload = STANDARD.encode(body);
        })
        .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn a_tampered_signature_fails() {
        let err = tampered(|e| {
            let mut sig = STANDARD.decode(&e.signatures[0].sig).unwrap();
            sig[10] ^= 1;
            e.signatures[0].sig = STANDARD.encode(sig);
        })
        .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn a_tampered_subject_fails() {
        let err = tampered(|e| {
            edit_statement(e, |s| {
                s["subject"][0]["digest"]["sha256"] = json!("0".repeat(64))
            })
        })
        .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn a_signed_statement_about_another_artifact_fails() {
        let (key, public) = key_pair();
        let other = format!("sha256:{}", "0".repeat(64));
        let att = attest(&other, "other", SLSA, &json!({}), key, None).unwrap();
        // Stored under the right tag by mistake or malice: the subject gives it away.
        let err =
            verify_attestation(&att.manifest_bytes, &att.blobs, DIGEST, SLSA, public).unwrap_err();
        assert!(
            matches!(&err, VerifyError::WrongSubject { found, .. } if found == std::slice::from_ref(&other)),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("is about `{other}`, not `{DIGEST}`"))
        );
    }

    #[test]
    fn the_payload_type_is_signed() {
        let err = tampered(|e| e.payload_type = "application/json".into()).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn a_signed_non_statement_is_malformed() {
        let (key, _) = key_pair();
        let body = br#"{"hello":"world"}"#;
        let sig = STANDARD.encode(key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, body)).unwrap());
        let err = tampered(|e| {
            e.payload = STANDARD.encode(body);
            e.signatures[0].sig = sig;
        })
        .unwrap_err();
        assert!(
            matches!(err, VerifyError::MalformedPayload { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn an_envelope_without_signatures_has_no_signature() {
        let err = tampered(|e| e.signatures.clear()).unwrap_err();
        assert!(matches!(err, VerifyError::NoSignature { .. }), "{err:?}");
    }
}
