//! Keyless signing end to end against in-process fakes of the services it talks to: a
//! GitHub Actions OIDC token endpoint, a Fulcio that issues real X.509 certificates from
//! a test CA (root and intermediate made here with rcgen), and a Rekor that signs real
//! signed entry timestamps with its own key. The real Fulcio, Rekor and TUF are not
//! reachable here: these tests are offline, and CI runs them as they are.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kiln::oci::layout::Layout;
use kiln::sign::{self, PublicKey, SigningKey, dsse};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const IDENTITY: &str = "https://github.com/acme/app/.github/workflows/build.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The secret that authorises the token request, as GitHub sets it.
const REQUEST_TOKEN: &str = "request-token-SECRET-5f1c";
/// Unique text inside the identity token's signature part, to find it if printed.
const TOKEN_MARK: &str = "jwt-SECRET-9a7e";

/// The identity token GitHub's endpoint hands out.
fn identity_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({
            "iss": ISSUER,
            "sub": "repo:acme/app:ref:refs/heads/main",
            "aud": "sigstore",
        }))
        .unwrap(),
    );
    format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode(TOKEN_MARK))
}

/// A certificate authority: a root, and an intermediate that issues the leaves.
struct Ca {
    root_pem: String,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "kiln tests");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params
}

impl Ca {
    fn new(name: &str) -> Ca {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let root_params = ca_params(&format!("{name} root"));
        let root_cert = root_params.self_signed(&root_key).unwrap();
        let root = Issuer::new(root_params, root_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = ca_params(&format!("{name} intermediate"));
        // As Fulcio's intermediate: webpki requires the leaf's EKU along the path.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let cert = params.signed_by(&key, &root).unwrap();
        Ca {
            root_pem: root_cert.pem(),
            intermediate_pem: cert.pem(),
            intermediate: Issuer::new(params, key),
        }
    }

    /// A ten-minute code-signing certificate for `public_pem`, as Fulcio issues them.
    fn issue(&self, public_pem: &str, identity: &str, issuer: &str) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(identity.try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = (SystemTime::now() - Duration::from_secs(60)).into();
        params.not_after = (SystemTime::now() + Duration::from_secs(600)).into();
        // Fulcio's issuer extensions: v2 (.8) a DER UTF8String, v1 (.1) the raw string.
        let mut utf8 = vec![0x0c, issuer.len() as u8];
        utf8.extend_from_slice(issuer.as_bytes());
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8),
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                issuer.as_bytes().to_vec(),
            ),
        ];
        params
            .signed_by(&Submitted::from_pem(public_pem), &self.intermediate)
            .unwrap()
            .pem()
    }
}

/// The public key a client submitted: a P-256 SubjectPublicKeyInfo.
struct Submitted(Vec<u8>);

impl Submitted {
    fn from_pem(pem: &str) -> Submitted {
        let der = der_of(pem);
        // A P-256 SPKI ends with the 65-byte uncompressed point.
        assert_eq!(der.len(), 91, "not a P-256 public key");
        Submitted(der[26..].to_vec())
    }
}

impl rcgen::PublicKeyData for Submitted {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    STANDARD.decode(body.trim()).unwrap()
}

fn json_of(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// Fulcio: checks the token and the proof of possession, then issues a certificate.
struct FakeFulcio {
    ca: Ca,
    token: String,
}

impl Respond for FakeFulcio {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = json_of(request);
        if body["credentials"]["oidcIdentityToken"] != self.token.as_str() {
            return ResponseTemplate::new(401).set_body_string("invalid identity token");
        }
        let public_pem = body["publicKeyRequest"]["publicKey"]["content"]
            .as_str()
            .unwrap();
        let proof = STANDARD
            .decode(
                body["publicKeyRequest"]["proofOfPossession"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let key = sign::load_public(public_pem).unwrap();
        if !key.verifies(&proof, b"repo:acme/app:ref:refs/heads/main") {
            return ResponseTemplate::new(400).set_body_string("bad proof of possession");
        }
        let leaf = self.ca.issue(public_pem, IDENTITY, ISSUER);
        ResponseTemplate::new(201).set_body_json(json!({
            "signedCertificateEmbeddedSct": {"chain": {"certificates": [
                leaf, self.ca.intermediate_pem, self.ca.root_pem,
            ]}}
        }))
    }
}

/// Rekor: logs `hashedrekord` entries and signs each entry's signed entry timestamp.
struct FakeRekor {
    key: SigningKey,
    log_id: String,
    index: AtomicI64,
    entries: Mutex<Vec<serde_json::Value>>,
}

impl Respond for FakeRekor {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let entry = json_of(request);
        assert_eq!(entry["kind"], "hashedrekord");
        assert_eq!(entry["apiVersion"], "0.0.1");
        self.entries.lock().unwrap().push(entry);
        let body = STANDARD.encode(&request.body);
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let index = self.index.fetch_add(1, Ordering::SeqCst);
        // Canonical JSON (RFC 8785) of the payload: keys sorted, no spaces.
        let canonical = format!(
            r#"{{"body":"{body}","integratedTime":{time},"logID":"{}","logIndex":{index}}}"#,
            self.log_id
        );
        let set = STANDARD.encode(self.key.sign(canonical.as_bytes()).unwrap());
        ResponseTemplate::new(201).set_body_json(json!({
            format!("{index:064x}"): {
                "body": body,
                "integratedTime": time,
                "logID": self.log_id,
                "logIndex": index,
                "verification": {"signedEntryTimestamp": set},
            }
        }))
    }
}

/// A key pair: (private, public PEM).
fn key_pair() -> (SigningKey, String) {
    let password = SecretString::from("");
    let (private, public) = sign::generate(&password).unwrap();
    (sign::load_private(&private, &password).unwrap(), public)
}

/// The fakes, all on one server.
struct Sigstore {
    server: MockServer,
    root_pem: String,
    rekor_public_pem: String,
    rekor: std::sync::Arc<FakeRekor>,
}

#[derive(Clone)]
struct Shared(std::sync::Arc<FakeRekor>);

impl Respond for Shared {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

async fn fake_sigstore() -> Sigstore {
    let server = MockServer::start().await;
    let token = identity_token();
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("audience", "sigstore"))
        .and(header(
            "authorization",
            format!("bearer {REQUEST_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": token})))
        .mount(&server)
        .await;
    let ca = Ca::new("fake fulcio");
    let root_pem = ca.root_pem.clone();
    Mock::given(method("POST"))
        .and(path("/api/v2/signingCert"))
        .respond_with(FakeFulcio { ca, token })
        .mount(&server)
        .await;
    let (key, rekor_public_pem) = key_pair();
    let rekor = std::sync::Arc::new(FakeRekor {
        key,
        log_id: hex::encode(Sha256::digest(der_of(&rekor_public_pem))),
        index: AtomicI64::new(1000),
        entries: Mutex::new(Vec::new()),
    });
    Mock::given(method("POST"))
        .and(path("/api/v1/log/entries"))
        .respond_with(Shared(rekor.clone()))
        .mount(&server)
        .await;
    Sigstore {
        server,
        root_pem,
        rekor_public_pem,
        rekor,
    }
}

impl Sigstore {
    /// `kiln ARGS` in a CI that offers a GitHub Actions OIDC token, with these fakes.
    fn kiln(&self, ctx: &common::TestContext) -> std::process::Command {
        let mut cmd = ctx.kiln();
        cmd.env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/token?api-version=2.0", self.server.uri()),
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .env("KILN_FULCIO_URL", self.server.uri())
        .env("KILN_REKOR_URL", self.server.uri())
        .env_remove("SIGSTORE_ID_TOKEN")
        .env_remove("KILN_SIGNING_KEY");
        cmd
    }
}

/// Neither the request token nor the identity token appears in `out`.
#[track_caller]
fn assert_no_secret(out: &std::process::Output) {
    let everything = format!("{}{}", common::stdout(out), common::stderr(out));
    for secret in [
        REQUEST_TOKEN.to_string(),
        identity_token(),
        URL_SAFE_NO_PAD.encode(TOKEN_MARK),
    ] {
        assert!(
            !everything.contains(&secret),
            "a token was printed:\n{everything}"
        );
    }
}

#[track_caller]
fn assert_refused(out: &std::process::Output, reason: &str) {
    common::assert_exit(out, 1);
    let stderr = common::stderr(out);
    assert!(stderr.contains(reason), "expected `{reason}` in:\n{stderr}");
}

/// The first layer of the manifest under `tag`, and the blob it names.
fn first_layer(layout: &Layout, tag: &str) -> (serde_json::Value, Vec<u8>) {
    let entry = layout.resolve(Some(tag)).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&entry.digest).unwrap()).unwrap();
    let layer = manifest["layers"][0].clone();
    let blob = layout.read_blob(layer["digest"].as_str().unwrap()).unwrap();
    (layer, blob)
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_build_signs_with_fulcio_and_rekor_and_verify_checks_the_identity() {
    let sigstore = fake_sigstore().await;
    let ctx = common::TestContext::new();
    let project = ctx.fixture("rust-bin");
    let out = sigstore
        .kiln(&ctx)
        .args(["build", project.to_str().unwrap(), "--output", "json", "-v"])
        .output()
        .unwrap();
    common::assert_success(&out);
    assert_no_secret(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::assert_valid_summary(&summary);
    assert_eq!(
        summary["signature"]["key"],
        format!("keyless: {IDENTITY} from {ISSUER}")
    );
    let digest = summary["artifact"]["digest"].as_str().unwrap();
    let hex = &digest[7..];

    // The signature layer carries the signature, the leaf certificate, the chain and the
    // Rekor bundle, as cosign writes them.
    let layout = Layout::open(&project.join(".kiln/oci")).unwrap();
    let (sig_layer, payload) = first_layer(&layout, &format!("sha256-{hex}.sig"));
    let annotations = &sig_layer["annotations"];
    let leaf = annotations["dev.sigstore.cosign/certificate"]
        .as_str()
        .unwrap();
    assert!(leaf.starts_with("-----BEGIN CERTIFICATE-----"), "{leaf}");
    let chain = annotations["dev.sigstore.cosign/chain"].as_str().unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    let bundle: serde_json::Value =
        serde_json::from_str(annotations["dev.sigstore.cosign/bundle"].as_str().unwrap()).unwrap();
    assert!(bundle["SignedEntryTimestamp"].is_string(), "{bundle}");
    assert!(bundle["Payload"]["integratedTime"].is_i64(), "{bundle}");
    assert_eq!(bundle["Payload"]["logID"], sigstore.rekor.log_id.as_str());
    // The signature verifies with the certificate's key (read here with OpenSSL-free
    // sigstore-rs through kiln's public-key type, from the certificate's SPKI).
    let signature = STANDARD
        .decode(
            annotations["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();

    // Rekor got hashes, never the SBOM: one entry for the signature (the payload's
    // hash), one for the attestation (the hash of its DSSE PAE).
    let entries = sigstore.rekor.entries.lock().unwrap().clone();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        entries[0]["spec"]["data"]["hash"]["value"],
        hex::encode(Sha256::digest(&payload))
    );
    assert_eq!(
        entries[0]["spec"]["signature"]["content"],
        STANDARD.encode(&signature)
    );
    let (att_layer, envelope) = first_layer(&layout, &format!("sha256-{hex}.att"));
    assert!(att_layer["annotations"]["dev.sigstore.cosign/bundle"].is_string());
    let envelope: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    let body = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let pae = dsse::pae(dsse::IN_TOTO_PAYLOAD_TYPE, &body);
    assert_eq!(
        entries[1]["spec"]["data"]["hash"]["value"],
        hex::encode(Sha256::digest(&pae))
    );
    for request in sigstore.server.received_requests().await.unwrap() {
        let text = String::from_utf8_lossy(&request.body);
        assert!(
            !text.contains("CycloneDX") && !text.contains("serde_json"),
            "the SBOM was sent to {}",
            request.url
        );
    }

    // kiln verify: the identity, issuer, root and Rekor key all hold.
    let files = ctx.path().join("trust");
    std::fs::create_dir_all(&files).unwrap();
    let root = files.join("fulcio-root.pem");
    std::fs::write(&root, &sigstore.root_pem).unwrap();
    let rekor_pub = files.join("rekor.pub");
    std::fs::write(&rekor_pub, &sigstore.rekor_public_pem).unwrap();
    let other_root = files.join("other-root.pem");
    std::fs::write(&other_root, Ca::new("another fulcio").root_pem).unwrap();
    let other_rekor = files.join("other-rekor.pub");
    std::fs::write(&other_rekor, key_pair().1).unwrap();

    let verify = |identity: &str, issuer: &str, root: &std::path::Path, rekor: &std::path::Path| {
        ctx.run(&[
            "verify",
            project.to_str().unwrap(),
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            issuer,
            "--certificate-chain",
            root.to_str().unwrap(),
            "--rekor-public-key",
            rekor.to_str().unwrap(),
            "--require-sbom",
        ])
    };
    let out = verify(IDENTITY, ISSUER, &root, &rekor_pub);
    common::assert_success(&out);
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains(&format!("signed by keyless: {IDENTITY} from {ISSUER}")),
        "{stderr}"
    );
    assert!(stderr.contains("components"), "{stderr}");

    // Each wrong expectation is refused with its own reason.
    let other = "https://github.com/evil/app/.github/workflows/build.yml@refs/heads/main";
    let out = verify(other, ISSUER, &root, &rekor_pub);
    assert_refused(&out, &format!("was issued to `{IDENTITY}`, not `{other}`"));
    assert!(
        common::stderr(&out).contains("--certificate-identity"),
        "no hint"
    );
    assert_refused(
        &verify(IDENTITY, "https://gitlab.com", &root, &rekor_pub),
        &format!("on the word of `{ISSUER}`, not `https://gitlab.com`"),
    );
    assert_refused(
        &verify(IDENTITY, ISSUER, &other_root, &rekor_pub),
        "does not chain to the given Fulcio root",
    );
    assert_refused(
        &verify(IDENTITY, ISSUER, &root, &other_rekor),
        "signed entry timestamp does not verify with the Rekor public key",
    );
    // A key verifies nothing here: there is no key-pair signature.
    let public = files.join("cosign.pub");
    std::fs::write(&public, key_pair().1).unwrap();
    assert_refused(
        &ctx.run(&[
            "verify",
            project.to_str().unwrap(),
            "--key",
            public.to_str().unwrap(),
        ]),
        "does not verify",
    );

    // `kiln run --verify` checks the same way.
    let out = ctx.run_with_stdin(
        &[
            "run",
            "--verify",
            project.to_str().unwrap(),
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "--certificate-chain",
            root.to_str().unwrap(),
            "--rekor-public-key",
            rekor_pub.to_str().unwrap(),
            "--",
            "x",
        ],
        "hello\n",
    );
    common::assert_success(&out);
    let out = ctx.run_with_stdin(
        &[
            "run",
            "--verify",
            project.to_str().unwrap(),
            "--certificate-identity",
            other,
            "--certificate-oidc-issuer",
            ISSUER,
            "--certificate-chain",
            root.to_str().unwrap(),
            "--insecure-ignore-tlog",
        ],
        "hello\n",
    );
    assert_refused(&out, "was issued to");

    // A tampered signature: the certificate's key does not verify it.
    let sig_tag = format!("sha256-{hex}.sig");
    let entry = layout.resolve(Some(&sig_tag)).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&entry.digest).unwrap()).unwrap();
    let original = manifest.clone();
    let mut forged = signature.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        json!(STANDARD.encode(&forged));
    let retag = |manifest: &serde_json::Value| {
        let bytes = serde_json::to_vec(manifest).unwrap();
        let digest = layout.put_blob(&bytes).unwrap();
        layout
            .tag(&sig_tag, &digest, bytes.len() as u64, None)
            .unwrap();
    };
    retag(&manifest);
    assert_refused(
        &verify(IDENTITY, ISSUER, &root, &rekor_pub),
        "does not verify",
    );

    // A bundle moved from another signature: its log entry is for other bytes.
    let mut manifest = original.clone();
    manifest["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"] =
        att_layer["annotations"]["dev.sigstore.cosign/bundle"].clone();
    retag(&manifest);
    assert_refused(
        &verify(IDENTITY, ISSUER, &root, &rekor_pub),
        "its entry is for another payload or signature",
    );

    // A logging time moved out of the certificate's ten minutes: the signed entry
    // timestamp catches it with Rekor's key; without the key, the validity check does.
    let mut manifest = original.clone();
    let mut moved = bundle.clone();
    moved["Payload"]["integratedTime"] =
        json!(bundle["Payload"]["integratedTime"].as_i64().unwrap() + 3600);
    manifest["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"] = json!(moved.to_string());
    retag(&manifest);
    assert_refused(
        &verify(IDENTITY, ISSUER, &root, &rekor_pub),
        "signed entry timestamp does not verify",
    );
    let out = ctx.run(&[
        "verify",
        project.to_str().unwrap(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--certificate-chain",
        root.to_str().unwrap(),
        "--insecure-ignore-tlog",
    ]);
    assert_refused(&out, "was not valid when Rekor logged the signature");
    assert!(
        common::stderr(&out).contains("warning: --insecure-ignore-tlog"),
        "no warning"
    );
    // Without the log's key, keyless verification is refused unless told otherwise.
    let out = ctx.run(&[
        "verify",
        project.to_str().unwrap(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--certificate-chain",
        root.to_str().unwrap(),
    ]);
    assert_refused(&out, "needs the transparency log's public key");

    retag(&original);
    common::assert_success(&verify(IDENTITY, ISSUER, &root, &rekor_pub));

    // A rebuild in GitLab's way (the token in SIGSTORE_ID_TOKEN) keeps the signatures of
    // the same identity instead of piling up new ones.
    let out = sigstore
        .kiln(&ctx)
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env("SIGSTORE_ID_TOKEN", identity_token())
        .args(["build", project.to_str().unwrap(), "--output", "json", "-v"])
        .output()
        .unwrap();
    common::assert_success(&out);
    assert_no_secret(&out);
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["signature"]["reused"], true);
    assert_eq!(again["attestation"]["reused"], true);
    assert_eq!(sigstore.rekor.entries.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_failures_are_precise_and_print_no_token() {
    let sigstore = fake_sigstore().await;
    let ctx = common::TestContext::new();
    let project = ctx.fixture("rust-bin");

    // `--keyless` with no token offered fails before building.
    let out = ctx
        .kiln()
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("SIGSTORE_ID_TOKEN")
        .env_remove("KILN_SIGNING_KEY")
        .args(["build", project.to_str().unwrap(), "--keyless"])
        .output()
        .unwrap();
    assert_refused(&out, "Keyless signing needs an OIDC identity token");
    assert!(common::stderr(&out).contains("id-token: write"), "no hint");
    assert!(!common::stderr(&out).contains("Compiling"), "built first");

    // Fulcio refuses a token it does not know. With `--keyless` the build fails, naming
    // Fulcio; the token is not printed, even with -v.
    let forged = format!("{}x", identity_token());
    let out = sigstore
        .kiln(&ctx)
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env("SIGSTORE_ID_TOKEN", &forged)
        .args(["build", project.to_str().unwrap(), "-v", "--keyless"])
        .output()
        .unwrap();
    assert_refused(&out, "Fulcio at");
    assert!(
        common::stderr(&out).contains("HTTP 401"),
        "{}",
        common::stderr(&out)
    );
    assert_no_secret(&out);
    assert!(!common::stderr(&out).contains(&forged));

    // Merely offered a token (as a GitLab component always is), kiln falls back to its
    // key with a warning naming the refusal.
    let out = sigstore
        .kiln(&ctx)
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env("SIGSTORE_ID_TOKEN", &forged)
        .args(["build", project.to_str().unwrap(), "--output", "json"])
        .output()
        .unwrap();
    common::assert_success(&out);
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("keyless signing failed") && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    assert!(!stderr.contains(&forged));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["signature"]["key"]
            .as_str()
            .unwrap()
            .contains("local development key"),
        "{summary:#}"
    );

    // The token endpoint refusing the request token, with `--keyless`.
    let out = sigstore
        .kiln(&ctx)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong-request-token")
        .args(["build", project.to_str().unwrap(), "--keyless"])
        .output()
        .unwrap();
    assert_refused(&out, "The OIDC token endpoint");
    assert!(!common::stderr(&out).contains("wrong-request-token"));

    // `--no-keyless` signs with a key pair although a token is offered.
    let out = sigstore
        .kiln(&ctx)
        .args([
            "build",
            project.to_str().unwrap(),
            "--no-keyless",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    common::assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["signature"]["key"]
            .as_str()
            .unwrap()
            .contains("local development key"),
        "{summary}"
    );
    assert!(sigstore.rekor.entries.lock().unwrap().is_empty());

    // Keyless verification needs a usable root.
    let bad_root = ctx.path().join("bad-root.pem");
    std::fs::write(&bad_root, "not a certificate").unwrap();
    assert_refused(
        &ctx.run(&[
            "verify",
            project.to_str().unwrap(),
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "--certificate-chain",
            bad_root.to_str().unwrap(),
            "--insecure-ignore-tlog",
        ]),
        "The Fulcio root certificate is unusable",
    );
    // ... and the key-pair signature made above is not a keyless one.
    let root = ctx.path().join("root.pem");
    std::fs::write(&root, &sigstore.root_pem).unwrap();
    assert_refused(
        &ctx.run(&[
            "verify",
            project.to_str().unwrap(),
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "--certificate-chain",
            root.to_str().unwrap(),
            "--insecure-ignore-tlog",
        ]),
        "carries a Fulcio certificate",
    );
}

/// The keyless policy, used as a library: a signature checked against a key made here.
#[test]
fn a_public_key_is_not_a_keyless_policy() {
    let (key, public_pem) = key_pair();
    let public: PublicKey = sign::load_public(&public_pem).unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let sig = sign::sign_manifest(&digest, "ghcr.io/acme/app", &key, None).unwrap();
    sign::verify_signature(&sig.manifest_bytes, &sig.blobs, &digest, &public).unwrap();
    let policy =
        sign::keyless::Policy::new(IDENTITY, ISSUER, &Ca::new("x").root_pem, None).unwrap();
    let err =
        sign::verify_signature(&sig.manifest_bytes, &sig.blobs, &digest, &policy).unwrap_err();
    assert!(
        matches!(err, sign::VerifyError::NoCertificate { .. }),
        "{err:?}"
    );
}
