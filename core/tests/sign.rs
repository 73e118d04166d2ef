//! Signatures and attestations checked by tools that share no code with kiln: OpenSSL
//! verifies the ECDSA signatures, PyPI `jsonschema` checks the in-toto Statement.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kiln::oci::layout::Layout;
use kiln::sign::{self, PublicKey, SigningKey, dsse};
use secrecy::SecretString;
use serde_json::json;

const DIGEST: &str = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const SLSA: &str = "https://slsa.dev/provenance/v1";

struct Keys {
    private: SigningKey,
    public: PublicKey,
    public_pem: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let password = SecretString::from("kiln-test");
        let (private_pem, public_pem) = sign::generate(&password).unwrap();
        Keys {
            private: sign::load_private(&private_pem, &password).unwrap(),
            public: sign::load_public(&public_pem).unwrap(),
            public_pem,
        }
    })
}

/// `openssl dgst -sha256 -verify pub.pem -signature sig.der message`: an independent
/// ECDSA P-256 verification of `signature` (DER) over `message`.
fn openssl_verify(dir: &Path, public_pem: &str, signature: &[u8], message: &[u8]) -> String {
    common::require_tool("openssl");
    std::fs::write(dir.join("pub.pem"), public_pem).unwrap();
    std::fs::write(dir.join("sig.der"), signature).unwrap();
    std::fs::write(dir.join("message"), message).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "message",
        ])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn openssl_verifies_the_cosign_signature() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let sig = sign::sign_manifest(DIGEST, "ghcr.io/acme/app:1.0", &keys.private, None).unwrap();

    let manifest: serde_json::Value = serde_json::from_slice(&sig.manifest_bytes).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = &sig
        .blobs
        .iter()
        .find(|(d, _)| d == layer["digest"].as_str().unwrap())
        .unwrap()
        .1;
    let signature = STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();

    let verdict = openssl_verify(dir.path(), &keys.public_pem, &signature, payload);
    assert_eq!(verdict.trim(), "Verified OK");

    // The same check fails on a payload for another digest: the check can fail.
    let forged = String::from_utf8(payload.clone())
        .unwrap()
        .replace(&DIGEST[7..], &"0".repeat(64));
    let verdict = openssl_verify(dir.path(), &keys.public_pem, &signature, forged.as_bytes());
    assert!(verdict.contains("Verification failure"), "{verdict}");
}

#[test]
fn openssl_verifies_the_dsse_signature_over_pae() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let att = sign::attest(
        DIGEST,
        "ghcr.io/acme/app",
        SLSA,
        &json!({}),
        &keys.private,
        None,
    )
    .unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&att.blobs[0].1).unwrap();
    let body = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let signature = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();

    // PAE spelled out here rather than through kiln's `pae`, so a shared bug cannot hide.
    let mut pae = format!("DSSEv1 28 application/vnd.in-toto+json {} ", body.len()).into_bytes();
    pae.extend_from_slice(&body);
    assert_eq!(pae, dsse::pae(dsse::IN_TOTO_PAYLOAD_TYPE, &body));

    let verdict = openssl_verify(dir.path(), &keys.public_pem, &signature, &pae);
    assert_eq!(verdict.trim(), "Verified OK");
    // Signing the body alone, not its PAE, would be a different (wrong) signature.
    let verdict = openssl_verify(dir.path(), &keys.public_pem, &signature, &body);
    assert!(verdict.contains("Verification failure"), "{verdict}");
}

/// Validates `statement` against `tests/peers/in_toto_statement.schema.json` with PyPI
/// `jsonschema`: Ok, or the validator's complaint.
fn validate_statement(statement: &serde_json::Value) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(statement).unwrap()).unwrap();
    let schema = common::repo_root().join("tests/peers/in_toto_statement.schema.json");
    let out = Command::new(common::peer_python())
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             checker = jsonschema.Draft202012Validator.FORMAT_CHECKER\n\
             jsonschema.Draft202012Validator(schema, format_checker=checker).validate(json.load(open(sys.argv[2])))",
        ])
        .arg(&schema)
        .arg(file.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError") && !stderr.contains("SchemaError"),
        "the schema check itself failed: {stderr}"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr.into_owned())
    }
}

#[test]
fn the_statement_matches_the_in_toto_schema() {
    let keys = keys();
    let predicate = json!({
        "buildDefinition": {
            "buildType": "https://kiln.dev/build/v1",
            "externalParameters": {},
            "internalParameters": {},
            "resolvedDependencies": []
        },
        "runDetails": {"builder": {"id": "https://kiln.dev"}, "metadata": {}}
    });
    let att = sign::attest(
        DIGEST,
        "ghcr.io/acme/app",
        SLSA,
        &predicate,
        &keys.private,
        None,
    )
    .unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&att.blobs[0].1).unwrap();
    let body = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&body).unwrap();
    validate_statement(&statement).unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], &DIGEST[7..]);

    // The schema bites: each of these breaks the Statement.
    let broken = |edit: fn(&mut serde_json::Value)| {
        let mut s = statement.clone();
        edit(&mut s);
        s
    };
    for bad in [
        broken(|s| s["_type"] = json!("https://in-toto.io/Statement/v0.1")),
        broken(|s| s["subject"] = json!([])),
        broken(|s| s["subject"][0]["digest"]["sha256"] = json!("sha256:abc")),
        broken(|s| {
            s.as_object_mut().unwrap().remove("predicateType");
        }),
    ] {
        assert!(validate_statement(&bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn signatures_stored_in_a_layout_accumulate_and_verify() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();

    let first = sign::sign_manifest(DIGEST, "ghcr.io/acme/app", &keys.private, None).unwrap();
    first.store(&layout).unwrap();
    let entry = layout.resolve(Some(&first.tag)).unwrap();
    let existing = layout.read_blob(&entry.digest).unwrap();
    let second =
        sign::sign_manifest(DIGEST, "ghcr.io/acme/app", &keys.private, Some(&existing)).unwrap();
    second.store(&layout).unwrap();

    let entry = layout.resolve(Some(&second.tag)).unwrap();
    assert_eq!(entry.digest, second.manifest_digest);
    let manifest = layout.manifest_at(&entry.digest).unwrap();
    assert_eq!(manifest.layers.len(), 2);
    let bytes = layout.read_blob(&entry.digest).unwrap();
    sign::verify_signature(&bytes, &layout, DIGEST, &keys.public).unwrap();

    let att = sign::attest(DIGEST, "app", SLSA, &json!({}), &keys.private, None).unwrap();
    att.store(&layout).unwrap();
    let bytes = layout
        .read_blob(&layout.resolve(Some(&att.tag)).unwrap().digest)
        .unwrap();
    let statement = sign::verify_attestation(&bytes, &layout, DIGEST, SLSA, &keys.public).unwrap();
    assert_eq!(statement.subject[0].name, "app");
}
