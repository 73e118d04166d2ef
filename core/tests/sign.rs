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

// ---------------------------------------------------------------------------------------
// End to end: `kiln build` signs and attests, `kiln verify` checks, tampering is caught.
// ---------------------------------------------------------------------------------------

/// A rust-bin build in its own context, signed with the shared local development key.
struct Built {
    ctx: common::TestContext,
    project: std::path::PathBuf,
    summary: serde_json::Value,
}

impl Built {
    fn new() -> Built {
        let ctx = common::TestContext::new();
        let project = ctx.fixture("rust-bin");
        let summary = ctx.build(&project, &[]);
        Built {
            ctx,
            project,
            summary,
        }
    }

    fn layout(&self) -> std::path::PathBuf {
        self.project.join(".kiln/oci")
    }

    fn digest(&self) -> &str {
        self.summary["artifact"]["digest"].as_str().unwrap()
    }

    fn verify(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["verify", self.project.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.ctx.run(&args)
    }

    /// The manifest under `tag` in the layout, and the layout opened.
    fn tagged(&self, tag: &str) -> (Layout, serde_json::Value) {
        let layout = Layout::open(&self.layout()).unwrap();
        let entry = layout.resolve(Some(tag)).unwrap();
        let manifest = serde_json::from_slice(&layout.read_blob(&entry.digest).unwrap()).unwrap();
        (layout, manifest)
    }

    /// Stores `manifest` and points `tag` at it: a forger's rewrite of what a tag holds.
    fn retag(&self, tag: &str, manifest: &serde_json::Value) {
        let layout = Layout::open(&self.layout()).unwrap();
        let bytes = serde_json::to_vec(manifest).unwrap();
        let digest = layout.put_blob(&bytes).unwrap();
        layout.tag(tag, &digest, bytes.len() as u64, None).unwrap();
    }
}

/// The shared local development key's public half.
fn local_public_key() -> String {
    std::fs::read_to_string(common::shared_dir("kiln-home").join("signing/cosign.pub")).unwrap()
}

/// The in-toto Statement inside the first DSSE envelope of a `.att` manifest.
fn statement_of(layout: &Layout, att: &serde_json::Value) -> (serde_json::Value, Vec<u8>, Vec<u8>) {
    let envelope: serde_json::Value = serde_json::from_slice(
        &layout
            .read_blob(att["layers"][0]["digest"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let body = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let sig = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    (serde_json::from_slice(&body).unwrap(), body, sig)
}

#[track_caller]
fn assert_refused(out: &std::process::Output, reason: &str) {
    common::assert_exit(out, 1);
    let stderr = common::stderr(out);
    assert!(stderr.contains(reason), "expected `{reason}` in:\n{stderr}");
}

#[test]
fn build_signs_and_attests_where_cosign_looks_and_verify_accepts() {
    let built = Built::new();
    let digest = built.digest().to_string();
    let hex = &digest[7..];
    let signature = &built.summary["signature"];
    let attestation = &built.summary["attestation"];
    assert_eq!(signature["tag"], format!("sha256-{hex}.sig"));
    assert_eq!(attestation["tag"], format!("sha256-{hex}.att"));
    assert_eq!(attestation["predicate_type"], "https://cyclonedx.org/bom");
    assert!(
        signature["key"]
            .as_str()
            .unwrap()
            .contains("local development key")
    );
    common::assert_valid_summary(&built.summary);

    // OpenSSL checks the simple-signing payload with the public key, independently.
    let (layout, sig) = built.tagged(&format!("sha256-{hex}.sig"));
    let layer = &sig["layers"][0];
    let payload = layout.read_blob(layer["digest"].as_str().unwrap()).unwrap();
    let payload_json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload_json["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    let der = STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let verdict = openssl_verify(scratch.path(), &local_public_key(), &der, &payload);
    assert_eq!(verdict.trim(), "Verified OK");

    // The attestation: a schema-valid in-toto Statement about this artifact, carrying
    // exactly the SBOM written next to the build, signed over its PAE.
    let (_, att) = built.tagged(&format!("sha256-{hex}.att"));
    let (statement, body, der) = statement_of(&layout, &att);
    validate_statement(&statement).unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
    let sbom_path = attestation["sbom_path"].as_str().unwrap();
    let sbom_bytes = std::fs::read(sbom_path).unwrap();
    let sbom: serde_json::Value = serde_json::from_slice(&sbom_bytes).unwrap();
    assert_eq!(statement["predicate"], sbom);
    assert_eq!(attestation["sbom_digest"], kiln::oci::digest(&sbom_bytes));
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let names: Vec<&str> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"serde_json"), "{names:?}");
    assert_eq!(attestation["components"], names.len());
    let pae = dsse::pae(dsse::IN_TOTO_PAYLOAD_TYPE, &body);
    let verdict = openssl_verify(scratch.path(), &local_public_key(), &der, &pae);
    assert_eq!(verdict.trim(), "Verified OK");

    // kiln verify accepts it, and `kiln run --verify` runs it.
    let out = built.verify(&["--require-sbom"]);
    common::assert_success(&out);
    assert!(
        common::stderr(&out).contains("components"),
        "{}",
        common::stderr(&out)
    );
    let out = built.ctx.run_with_stdin(
        &[
            "run",
            "--verify",
            built.project.to_str().unwrap(),
            "--",
            "x",
        ],
        "hello\n",
    );
    common::assert_success(&out);

    // A rebuild keeps the signature and attestation instead of piling up new ones.
    let again = built.ctx.build(&built.project, &[]);
    assert_eq!(again["signature"]["reused"], true);
    assert_eq!(again["attestation"]["reused"], true);
    assert_eq!(again["signature"]["digest"], signature["digest"]);
    let (_, sig) = built.tagged(&format!("sha256-{hex}.sig"));
    assert_eq!(sig["layers"].as_array().unwrap().len(), 1);
}

#[test]
fn verify_names_each_kind_of_tampering() {
    let built = Built::new();
    let digest = built.digest().to_string();
    let hex = digest[7..].to_string();
    let sig_tag = format!("sha256-{hex}.sig");
    let att_tag = format!("sha256-{hex}.att");
    let pristine = built.layout().with_extension("pristine");
    common::copy_dir(&built.layout(), &pristine);
    let restore = || {
        std::fs::remove_dir_all(built.layout()).unwrap();
        common::copy_dir(&pristine, &built.layout());
    };
    common::assert_success(&built.verify(&[]));

    // One byte of the artifact's Wasm layer.
    let layer = common::layer_path(&built.summary);
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&layer, &bytes).unwrap();
    assert_refused(&built.verify(&[]), "does not match its digests");
    assert_refused(
        &built
            .ctx
            .run(&["run", "--verify", built.project.to_str().unwrap()]),
        "does not match its digests",
    );
    restore();

    // One byte of the signature.
    let (_, mut sig) = built.tagged(&sig_tag);
    let annotation = &mut sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"];
    let mut der = STANDARD.decode(annotation.as_str().unwrap()).unwrap();
    der[10] ^= 1;
    *annotation = json!(STANDARD.encode(der));
    built.retag(&sig_tag, &sig);
    assert_refused(&built.verify(&[]), "signature does not verify");
    restore();

    // One byte of the SBOM inside the signed statement.
    let (layout, mut att) = built.tagged(&att_tag);
    let envelope_digest = att["layers"][0]["digest"].as_str().unwrap().to_string();
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&envelope_digest).unwrap()).unwrap();
    let body = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let forged = String::from_utf8(body)
        .unwrap()
        .replacen("serde_json", "serde_jsoN", 1);
    envelope["payload"] = json!(STANDARD.encode(forged));
    let envelope_bytes = serde_json::to_vec(&envelope).unwrap();
    att["layers"][0]["digest"] = json!(layout.put_blob(&envelope_bytes).unwrap());
    att["layers"][0]["size"] = json!(envelope_bytes.len());
    built.retag(&att_tag, &att);
    assert_refused(&built.verify(&[]), "SBOM attestation does not verify");
    restore();

    // The attestation of another artifact (same program, another build time).
    let other = built
        .ctx
        .kiln()
        .env("SOURCE_DATE_EPOCH", "1")
        .args(["build", built.project.to_str().unwrap(), "--force"])
        .args(["--tag", "other:1", "--output", "json"])
        .output()
        .unwrap();
    common::assert_success(&other);
    let other: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    let other_att_tag = other["attestation"]["tag"].as_str().unwrap();
    assert_ne!(other_att_tag, att_tag, "the second build must differ");
    let (_, other_att) = built.tagged(other_att_tag);
    built.retag(&att_tag, &other_att);
    assert_refused(&built.verify(&[]), "is about");
    restore();

    // A key that did not sign it.
    let keydir = tempfile::tempdir().unwrap();
    let out = built
        .ctx
        .run(&["keygen", "--output-dir", keydir.path().to_str().unwrap()]);
    common::assert_success(&out);
    let wrong = keydir.path().join("cosign.pub");
    assert_refused(
        &built.verify(&["--key", wrong.to_str().unwrap()]),
        "verifies with the public key",
    );

    // No attestation: allowed unless the policy requires one.
    let layout = Layout::open(&built.layout()).unwrap();
    let mut index = layout.index().unwrap();
    index.manifests.retain(|m| {
        m.annotations
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
            .map(String::as_str)
            != Some(att_tag.as_str())
    });
    std::fs::write(
        built.layout().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    common::assert_success(&built.verify(&[]));
    assert_refused(&built.verify(&["--require-sbom"]), "has no CycloneDX SBOM");
    // A license policy cannot pass without an SBOM to judge.
    assert_refused(
        &built.verify(&["--deny-license", "GPL-3.0-only"]),
        "has no CycloneDX SBOM",
    );
    restore();

    // A license policy: rust-bin itself and serde are MIT-licensed.
    assert_refused(&built.verify(&["--deny-license", "MIT"]), "is denied");
    common::assert_success(&built.verify(&["--deny-license", "GPL-3.0-only"]));
}

#[test]
fn keygen_keys_sign_and_verify_and_no_secret_is_printed() {
    let ctx = common::TestContext::new();
    let project = ctx.fixture("rust-bin");
    let keys = ctx.path().join("keys");
    let password = "correct horse battery staple";
    let out = ctx
        .kiln()
        .env("KILN_SIGNING_PASSWORD", password)
        .args(["keygen", "--output-dir", keys.to_str().unwrap()])
        .output()
        .unwrap();
    common::assert_success(&out);
    let private = std::fs::read_to_string(keys.join("cosign.key")).unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys.join("cosign.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is readable by others");
    }
    // A second keygen refuses to overwrite the pair.
    assert_refused(
        &ctx.run(&["keygen", "--output-dir", keys.to_str().unwrap()]),
        "already exists",
    );

    // The PEM itself in KILN_SIGNING_KEY, as a CI secret holds it; verbose logs on.
    let out = ctx
        .kiln()
        .env("KILN_SIGNING_KEY", &private)
        .env("KILN_SIGNING_PASSWORD", password)
        .args(["build", project.to_str().unwrap(), "--output", "json", "-v"])
        .output()
        .unwrap();
    common::assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["signature"]["key"], "key from $KILN_SIGNING_KEY");
    let everything = format!("{}{}", common::stdout(&out), common::stderr(&out));
    assert!(!everything.contains(password), "the password was printed");
    let body_line = private.lines().nth(1).unwrap();
    assert!(
        !everything.contains(body_line),
        "the private key was printed"
    );

    let public = keys.join("cosign.pub");
    let out = ctx.run(&[
        "verify",
        project.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
        "--require-sbom",
    ]);
    common::assert_success(&out);

    // A key in another encoding (base64 of the PEM) is refused without being echoed.
    let encoded = STANDARD.encode(&private);
    let out = ctx
        .kiln()
        .env("KILN_SIGNING_KEY", &encoded)
        .args(["build", project.to_str().unwrap(), "--force"])
        .output()
        .unwrap();
    assert_refused(&out, "holds neither a PEM key nor the path of a file");
    assert!(
        !common::stderr(&out).contains(&encoded[..40]),
        "the value was echoed"
    );

    // The PEM itself passed to `--key` is refused without being echoed.
    let out = ctx
        .kiln()
        .args(["build", project.to_str().unwrap(), "--force", "--key"])
        .arg(&private)
        .output()
        .unwrap();
    assert_refused(&out, "was given the private key itself");
    assert!(common::stderr(&out).contains("KILN_SIGNING_KEY"));
    assert!(
        !common::stderr(&out).contains(private.lines().nth(1).unwrap()),
        "the key was echoed"
    );

    // The wrong password fails before anything is built, naming the cause.
    let out = ctx
        .kiln()
        .env("KILN_SIGNING_PASSWORD", "wrong")
        .args(["build", project.to_str().unwrap(), "--force", "--key"])
        .arg(keys.join("cosign.key"))
        .output()
        .unwrap();
    assert_refused(&out, "The password does not decrypt the private key");
    assert!(
        !common::stderr(&out).contains("Compiling"),
        "built before checking the key"
    );
}

#[test]
fn pushed_artifacts_carry_sig_and_att_tags_that_peers_read_and_verify_checks() {
    use common::registry::{Mode, Registry, oras_fetch, skopeo_inspect_raw};
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let ctx = common::TestContext::new();
    let project = ctx.fixture("rust-bin");
    let dest = format!("{host}/acme/signed");
    let push = [
        "--push",
        dest.as_str(),
        "--insecure-registry",
        host.as_str(),
    ];
    let summary = ctx.build(&project, &push);
    let digest = summary["artifact"]["digest"].as_str().unwrap();
    let hex = &digest[7..];
    let sig_tag = format!("sha256-{hex}.sig");
    let att_tag = format!("sha256-{hex}.att");

    // The registry holds both under cosign's tags; skopeo and oras read them back.
    assert_eq!(
        registry.tag_digest("acme/signed", &sig_tag).as_deref(),
        summary["signature"]["digest"].as_str()
    );
    let sig = skopeo_inspect_raw(&registry, &format!("acme/signed:{sig_tag}"));
    assert_eq!(
        sig["layers"][0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let att = oras_fetch(&registry, &format!("acme/signed:{att_tag}"));
    assert_eq!(
        att["manifest"]["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(
        att["manifest"]["layers"][0]["annotations"]["predicateType"],
        "https://cyclonedx.org/bom"
    );

    // The signature names the registry repository, as cosign's does.
    let (layout, sig) = {
        let layout = Layout::open(&project.join(".kiln/oci")).unwrap();
        let entry = layout.resolve(Some(&sig_tag)).unwrap();
        let sig: serde_json::Value =
            serde_json::from_slice(&layout.read_blob(&entry.digest).unwrap()).unwrap();
        (layout, sig)
    };
    let payload: serde_json::Value = serde_json::from_slice(
        &layout
            .read_blob(sig["layers"][0]["digest"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        format!("{host}/acme/signed")
    );

    // kiln verify reads the registry, not the local layout.
    std::fs::remove_dir_all(project.join(".kiln")).unwrap();
    let reference = format!("{host}/acme/signed:0.3.1");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            reference.as_str(),
            "--insecure-registry",
            host.as_str(),
        ];
        args.extend_from_slice(extra);
        ctx.run(&args)
    };
    let out = verify(&["--require-sbom"]);
    common::assert_success(&out);
    assert_refused(&verify(&["--deny-license", "MIT"]), "is denied");

    // `kiln pull` brings the signature and attestation along: `run --verify` works.
    let pulled = ctx.path().join("pulled");
    let out = ctx.run(&[
        "pull",
        reference.as_str(),
        "--layout",
        pulled.to_str().unwrap(),
        "--insecure-registry",
        host.as_str(),
    ]);
    common::assert_success(&out);
    let target = format!("oci:{}:acme/signed:0.3.1", pulled.display());
    let out = ctx.run_with_stdin(&["run", "--verify", "--require-sbom", &target], "hi\n");
    common::assert_success(&out);

    // `kiln push` of a stored artifact carries them to another repository.
    let copied = format!("{host}/acme/copied:1");
    let out = ctx.run(&[
        "push",
        "acme/signed:0.3.1",
        copied.as_str(),
        "--layout",
        pulled.to_str().unwrap(),
        "--insecure-registry",
        host.as_str(),
    ]);
    common::assert_success(&out);
    assert!(registry.tag_exists("acme/copied", &sig_tag));
    assert!(registry.tag_exists("acme/copied", &att_tag));
    let out = ctx.run(&[
        "verify",
        copied.as_str(),
        "--require-sbom",
        "--insecure-registry",
        host.as_str(),
    ]);
    common::assert_success(&out);

    // A rebuild that finds the artifact in the registry leaves its signatures alone.
    let again = ctx.build(&project, &push);
    assert_eq!(again["skipped"], true);
    assert_eq!(again["signature"]["reused"], true);
    assert_eq!(again["attestation"]["reused"], true);
    assert_eq!(
        registry.tag_digest("acme/signed", &sig_tag).as_deref(),
        summary["signature"]["digest"].as_str()
    );
}
