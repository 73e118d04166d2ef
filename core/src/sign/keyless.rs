//! Keyless signing and its verification, as cosign v2 does them with tag-based storage.
//!
//! 1. Token: an OIDC identity token from `SIGSTORE_ID_TOKEN` (GitLab's `id_tokens`, or
//!    any CI), else from GitHub Actions' token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`
//!    with `audience=sigstore`, authorised by `ACTIONS_ID_TOKEN_REQUEST_TOKEN`). Tokens
//!    are [`SecretString`]s: never printed, logged or passed to a subprocess.
//! 2. Fulcio: an ephemeral ECDSA P-256 key; `POST /api/v2/signingCert` with the token and
//!    a proof of possession (the key's signature over the token's `email`, else `sub`,
//!    claim) returns a short-lived certificate for the key, leaf first.
//! 3. Rekor: every signature is logged as a `hashedrekord` v0.0.1 entry: the SHA-256 of
//!    the signed bytes, the signature and the certificate. Nothing else is sent: for an
//!    attestation the signed bytes are the DSSE PAE of the in-toto Statement, so Rekor
//!    receives its hash, never the SBOM (cosign sends the whole envelope as an `intoto`
//!    entry, which large SBOMs break).
//! 4. Storage: the layer carries cosign's annotations: the leaf certificate, the rest of
//!    the chain, and the Rekor bundle (signed entry timestamp and entry).
//! 5. Verification ([`Policy`]): the certificate chains to a root the verifier passes,
//!    at the time Rekor logged the signature, and was valid then; its SAN is the expected
//!    identity and its Fulcio issuer extension the expected issuer; the signature
//!    verifies with its key; the Rekor entry is for this signature, and its signed entry
//!    timestamp verifies with Rekor's public key when one is given.
//!
//! sigstore-rs parses the certificate types and verifies signatures and signed entry
//! timestamps; the chain is checked with webpki (as sigstore-rs does inside its
//! registry client, which kiln cannot use on a local layout).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use sigstore::cosign::bundle::{Bundle, Payload};
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature, SigningScheme};
use sigstore::errors::SigstoreError;
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, DecodePem as _, Encode as _};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::{PayloadSignature, VerifyError};
use crate::diagnose::{Blame, Diagnose};

/// The layer annotation holding the PEM leaf certificate.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding the rest of the certificate chain, PEM.
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The layer annotation holding the Rekor bundle (JSON).
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The public-good Fulcio.
pub use kiln_cli::DEFAULT_FULCIO_URL;
/// The public-good Rekor.
pub use kiln_cli::DEFAULT_REKOR_URL;
/// The audience Sigstore expects in identity tokens.
const AUDIENCE: &str = "sigstore";
/// Fulcio's OIDC issuer extension (v2, a DER UTF8String).
const ISSUER_V2_OID: &str = "1.3.6.1.4.1.57264.1.8";
/// Fulcio's OIDC issuer extension (v1, the raw string, deprecated).
const ISSUER_V1_OID: &str = "1.3.6.1.4.1.57264.1.1";
/// The DER content of id-kp-codeSigning (1.3.6.1.5.5.7.3.3), which Fulcio certificates carry.
const CODE_SIGNING_EKU: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// How long one request to the token endpoint, Fulcio or Rekor may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the OIDC identity token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// `SIGSTORE_ID_TOKEN`: the token itself.
    Env(SecretString),
    /// GitHub Actions' token endpoint, with the request token that authorises it.
    GitHubActions { url: String, token: SecretString },
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(_) => {
                write!(f, "TokenSource::Env(${})", crate::env::SIGSTORE_ID_TOKEN)
            }
            TokenSource::GitHubActions { url, .. } => f
                .debug_struct("TokenSource::GitHubActions")
                .field("url", url)
                .finish_non_exhaustive(),
        }
    }
}

impl TokenSource {
    /// The token source the environment offers, if any.
    pub fn detect(env: &crate::env::Env) -> Option<TokenSource> {
        use crate::env::{
            ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL, SIGSTORE_ID_TOKEN,
        };
        if let Some(token) = env.var(SIGSTORE_ID_TOKEN) {
            return Some(TokenSource::Env(SecretString::from(token)));
        }
        match (
            env.var(ACTIONS_ID_TOKEN_REQUEST_URL),
            env.var(ACTIONS_ID_TOKEN_REQUEST_TOKEN),
        ) {
            (Some(url), Some(token)) => Some(TokenSource::GitHubActions {
                url,
                token: SecretString::from(token),
            }),
            _ => None,
        }
    }

    /// What the summary and the logs call this source.
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Env(_) => format!("${}", crate::env::SIGSTORE_ID_TOKEN),
            TokenSource::GitHubActions { .. } => "GitHub Actions' OIDC token".into(),
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<SecretString, KeylessError> {
        let (url, request_token) = match self {
            TokenSource::Env(token) => return Ok(token.clone()),
            TokenSource::GitHubActions { url, token } => (url, token),
        };
        let separator = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{separator}audience={AUDIENCE}");
        let failed = |source| KeylessError::Token {
            url: url.clone(),
            source,
        };
        let response = http
            .get(&full)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {}", request_token.expose_secret()),
            )
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(KeylessError::TokenStatus {
                url: url.clone(),
                status: status.as_u16(),
            });
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            value: String,
        }
        let body: TokenResponse = response.json().await.map_err(failed)?;
        Ok(SecretString::from(body.value))
    }
}

/// The claims of an identity token kiln reads: who, and who vouches.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Claims {
    /// The payload claims of a JWT. Fulcio checks the token's signature; kiln only reads
    /// the claims, to prove possession of its key over the right one.
    pub fn of(token: &SecretString) -> Result<Claims, KeylessError> {
        let malformed = |reason: &str| KeylessError::MalformedToken {
            reason: reason.to_string(),
        };
        let mut parts = token.expose_secret().split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("it is not a JWT (three dot-separated parts)"));
        };
        let json = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| malformed("its payload is not base64url"))?;
        serde_json::from_slice(&json).map_err(|_| malformed("its payload has no `iss` claim"))
    }

    /// The claim Fulcio expects the proof of possession to sign: `email` for tokens that
    /// carry one, else `sub`.
    fn subject(&self) -> Result<&str, KeylessError> {
        self.email
            .as_deref()
            .or(self.sub.as_deref())
            .ok_or_else(|| KeylessError::MalformedToken {
                reason: "it has neither a `sub` nor an `email` claim".into(),
            })
    }
}

/// How to sign keylessly: where the token comes from and which Fulcio and Rekor to use.
#[derive(Debug, Clone)]
pub struct KeylessOptions {
    pub token: TokenSource,
    pub fulcio_url: String,
    pub rekor_url: String,
}

impl KeylessOptions {
    /// Fetches the token, makes an ephemeral key and gets its certificate from Fulcio.
    ///
    /// Fulcio certificates live ten minutes and tokens not much longer: call this just
    /// before signing, not before a long build.
    pub async fn start(&self) -> Result<KeylessSigner, KeylessError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|source| KeylessError::Token {
                url: self.fulcio_url.clone(),
                source,
            })?;
        let token = self.token.fetch(&http).await?;
        let claims = Claims::of(&token)?;
        tracing::debug!(issuer = %claims.iss, "got an OIDC identity token");

        let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
            .create_signer()
            .map_err(|source| KeylessError::Key { source })?;
        let keypair = signer
            .to_sigstore_keypair()
            .map_err(|source| KeylessError::Key { source })?;
        let public_pem = keypair
            .public_key_to_pem()
            .map_err(|source| KeylessError::Key { source })?
            .replace("\r\n", "\n");
        let public_der = keypair
            .public_key_to_der()
            .map_err(|source| KeylessError::Key { source })?;
        let proof = signer
            .sign(claims.subject()?.as_bytes())
            .map_err(|source| KeylessError::Key { source })?;

        let url = format!(
            "{}/api/v2/signingCert",
            self.fulcio_url.trim_end_matches('/')
        );
        let request = serde_json::json!({
            "credentials": {"oidcIdentityToken": token.expose_secret()},
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": public_pem},
                "proofOfPossession": STANDARD.encode(proof),
            },
        });
        let failed = |source| KeylessError::Fulcio {
            url: url.clone(),
            source,
        };
        let response = http
            .post(&url)
            .json(&request)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(KeylessError::FulcioStatus {
                url,
                status: status.as_u16(),
                message: tail(&body),
            });
        }
        let body: SigningCertResponse = response.json().await.map_err(failed)?;
        let certificates = body
            .signed_certificate_embedded_sct
            .or(body.signed_certificate_detached_sct)
            .map(|c| c.chain.certificates)
            .unwrap_or_default();
        let bad = |reason: String| KeylessError::FulcioResponse {
            url: url.clone(),
            reason,
        };
        let (leaf_pem, rest) = certificates
            .split_first()
            .ok_or_else(|| bad("it holds no certificate".into()))?;
        let leaf = Certificate::from_pem(leaf_pem.as_bytes())
            .map_err(|e| bad(format!("its leaf certificate does not parse: {e}")))?;
        let leaf_key = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| bad(format!("its leaf certificate does not parse: {e}")))?;
        if leaf_key != public_der {
            return Err(bad("its certificate is for another public key".into()));
        }
        let identity = sans(&leaf)
            .into_iter()
            .next()
            .ok_or_else(|| bad("its certificate names no identity".into()))?;
        let issuer = issuer(&leaf).ok_or_else(|| bad("its certificate names no issuer".into()))?;

        // What this signer's own earlier signatures must satisfy to be reused: the same
        // identity and issuer, under the root Fulcio chains to now.
        let own = rest
            .last()
            .and_then(|root| Policy::new(&identity, &issuer, root, None).ok());
        tracing::debug!(%identity, %issuer, "Fulcio issued a signing certificate");
        Ok(KeylessSigner {
            signer,
            certificate: with_newline(leaf_pem),
            chain: rest.iter().map(|c| with_newline(c)).collect(),
            identity,
            issuer,
            rekor_url: self.rekor_url.trim_end_matches('/').to_string(),
            http,
            own,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningCertResponse {
    signed_certificate_embedded_sct: Option<Chained>,
    signed_certificate_detached_sct: Option<Chained>,
}

#[derive(Deserialize)]
struct Chained {
    chain: Chain,
}

#[derive(Deserialize)]
struct Chain {
    certificates: Vec<String>,
}

/// An ephemeral key with its Fulcio certificate: signs, and logs each signature in Rekor.
pub struct KeylessSigner {
    signer: SigStoreSigner,
    certificate: String,
    chain: String,
    /// The certificate's identity (its first URI or email SAN).
    pub identity: String,
    /// The certificate's OIDC issuer.
    pub issuer: String,
    rekor_url: String,
    http: reqwest::Client,
    own: Option<Policy>,
}

impl std::fmt::Debug for KeylessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeylessSigner")
            .field("identity", &self.identity)
            .field("issuer", &self.issuer)
            .field("rekor_url", &self.rekor_url)
            .finish_non_exhaustive()
    }
}

impl KeylessSigner {
    /// Signs `message`, logs the signature in Rekor, and returns the signature with the
    /// certificate, chain and bundle annotations.
    pub async fn sign(&self, message: &[u8]) -> Result<PayloadSignature, KeylessError> {
        let signature = self
            .signer
            .sign(message)
            .map_err(|source| KeylessError::Key { source })?;
        let url = format!("{}/api/v1/log/entries", self.rekor_url);
        let entry = serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(message))}},
                "signature": {
                    "content": STANDARD.encode(&signature),
                    "publicKey": {"content": STANDARD.encode(&self.certificate)},
                },
            },
        });
        let failed = |source| KeylessError::Rekor {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .post(&url)
            .json(&entry)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(KeylessError::RekorStatus {
                url,
                status: status.as_u16(),
                message: tail(&body),
            });
        }
        let entries: BTreeMap<String, LogEntry> = response.json().await.map_err(failed)?;
        let (uuid, entry) =
            entries
                .into_iter()
                .next()
                .ok_or_else(|| KeylessError::RekorResponse {
                    url: url.clone(),
                    reason: "it holds no entry".into(),
                })?;
        tracing::debug!(%uuid, log_index = entry.log_index, "logged the signature in Rekor");
        let bundle = Bundle {
            signed_entry_timestamp: entry.verification.signed_entry_timestamp,
            payload: Payload {
                body: entry.body,
                integrated_time: entry.integrated_time,
                log_index: entry.log_index,
                log_id: entry.log_id,
            },
        };
        let mut annotations = BTreeMap::from([
            (CERTIFICATE_ANNOTATION.to_string(), self.certificate.clone()),
            (
                BUNDLE_ANNOTATION.to_string(),
                serde_json::to_string(&bundle).expect("the bundle serialises"),
            ),
        ]);
        if !self.chain.is_empty() {
            annotations.insert(CHAIN_ANNOTATION.to_string(), self.chain.clone());
        }
        Ok(PayloadSignature {
            signature,
            annotations,
        })
    }

    /// What this signer's earlier signatures must satisfy to be kept instead of signing
    /// again: the same identity and issuer under the same root. `None` when Fulcio
    /// returned no root to check against.
    pub fn own_policy(&self) -> Option<&Policy> {
        self.own.as_ref()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogEntry {
    body: String,
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    log_index: i64,
    verification: Verification,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    signed_entry_timestamp: String,
}

/// What a keyless signature must satisfy: who signed, vouched for by whom, under which
/// Fulcio root, logged by which Rekor.
pub struct Policy {
    identity: String,
    issuer: String,
    roots: Vec<CertificateDer<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    /// Rekor log ID (hex SHA-256 of the key's DER) to key; empty: not checked.
    rekor_keys: BTreeMap<String, CosignVerificationKey>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("identity", &self.identity)
            .field("issuer", &self.issuer)
            .field("roots", &self.roots.len())
            .field("rekor_keys", &self.rekor_keys.keys())
            .finish()
    }
}

impl Policy {
    /// `identity` and `issuer` as the certificate must name them; `chain_pem`: the
    /// Fulcio root (self-signed certificates are trust anchors, any others
    /// intermediates); `rekor_key_pem`: Rekor's public key, without which the signed
    /// entry timestamps are not checked.
    pub fn new(
        identity: &str,
        issuer: &str,
        chain_pem: &str,
        rekor_key_pem: Option<&str>,
    ) -> Result<Policy, KeylessError> {
        let certificates = Certificate::load_pem_chain(chain_pem.as_bytes()).map_err(|e| {
            KeylessError::BadRoot {
                reason: e.to_string(),
            }
        })?;
        let mut roots = Vec::new();
        let mut intermediates = Vec::new();
        for certificate in certificates {
            let der = certificate.to_der().map_err(|e| KeylessError::BadRoot {
                reason: e.to_string(),
            })?;
            let tbs = certificate.tbs_certificate();
            if tbs.subject() == tbs.issuer() {
                roots.push(CertificateDer::from(der));
            } else {
                intermediates.push(CertificateDer::from(der));
            }
        }
        if roots.is_empty() {
            return Err(KeylessError::BadRoot {
                reason: "it holds no self-signed (root) certificate".into(),
            });
        }
        // A root webpki cannot use is refused now, not at every layer.
        for root in &roots {
            webpki::anchor_from_trusted_cert(root).map_err(|e| KeylessError::BadRoot {
                reason: e.to_string(),
            })?;
        }
        let mut rekor_keys = BTreeMap::new();
        if let Some(pem) = rekor_key_pem {
            let bad = |reason: String| KeylessError::BadRekorKey { reason };
            let key = CosignVerificationKey::try_from_pem(pem.as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            let der = x509_cert::spki::SubjectPublicKeyInfoOwned::from_pem(pem.trim().as_bytes())
                .and_then(|spki| spki.to_der())
                .map_err(|e| bad(e.to_string()))?;
            rekor_keys.insert(hex::encode(Sha256::digest(&der)), key);
        }
        Ok(Policy {
            identity: identity.to_string(),
            issuer: issuer.to_string(),
            roots,
            intermediates,
            rekor_keys,
        })
    }

    /// Whether signed entry timestamps are checked.
    pub fn checks_rekor(&self) -> bool {
        !self.rekor_keys.is_empty()
    }

    /// Checks a signature layer's `signature` over `message` with its `annotations`.
    pub fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError> {
        let tag = tag.to_string();
        let leaf_pem = annotations
            .get(CERTIFICATE_ANNOTATION)
            .ok_or_else(|| VerifyError::NoCertificate { tag: tag.clone() })?;
        let malformed = |reason: String| VerifyError::MalformedCertificate {
            tag: tag.clone(),
            reason,
        };
        let leaf =
            Certificate::from_pem(leaf_pem.as_bytes()).map_err(|e| malformed(e.to_string()))?;
        let leaf_der = leaf.to_der().map_err(|e| malformed(e.to_string()))?;

        // When: Rekor's integrated time, which the signed entry timestamp vouches for.
        let bundle: Bundle = annotations
            .get(BUNDLE_ANNOTATION)
            .ok_or_else(|| VerifyError::NoTransparencyLog { tag: tag.clone() })
            .and_then(|raw| {
                serde_json::from_str(raw).map_err(|e| VerifyError::BadTransparencyLog {
                    tag: tag.clone(),
                    reason: format!("its bundle does not parse: {e}"),
                })
            })?;
        // Rekor vouches for the entry, and so for the time, before the time is relied on.
        if self.checks_rekor() {
            verify_set(&bundle, &self.rekor_keys).map_err(|e| VerifyError::BadTransparencyLog {
                tag: tag.clone(),
                reason: format!(
                    "its signed entry timestamp does not verify with the Rekor public key ({e})"
                ),
            })?;
        }
        let logged = bundle.payload.integrated_time;
        let validity = leaf.tbs_certificate().validity();
        let not_before = validity.not_before.to_unix_duration().as_secs() as i64;
        let not_after = validity.not_after.to_unix_duration().as_secs() as i64;
        if logged < not_before || logged > not_after {
            return Err(VerifyError::CertificateNotValid {
                tag,
                logged,
                not_before,
                not_after,
            });
        }

        // Issued under the root, as of then.
        let mut intermediates = self.intermediates.clone();
        if let Some(chain) = annotations.get(CHAIN_ANNOTATION) {
            for certificate in Certificate::load_pem_chain(chain.as_bytes())
                .map_err(|e| malformed(e.to_string()))?
            {
                intermediates.push(CertificateDer::from(
                    certificate.to_der().map_err(|e| malformed(e.to_string()))?,
                ));
            }
        }
        let anchors: Vec<TrustAnchor<'_>> = self
            .roots
            .iter()
            .filter_map(|root| webpki::anchor_from_trusted_cert(root).ok())
            .collect();
        let leaf_cert = CertificateDer::from(leaf_der.as_slice());
        let end_entity =
            webpki::EndEntityCert::try_from(&leaf_cert).map_err(|e| malformed(e.to_string()))?;
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                UnixTime::since_unix_epoch(Duration::from_secs(logged.max(0) as u64)),
                webpki::KeyUsage::required(CODE_SIGNING_EKU),
                None,
                None,
            )
            .map_err(|e| VerifyError::UntrustedCertificate {
                tag: tag.clone(),
                reason: chain_failure(&e),
            })?;

        // Who, and who vouches.
        let found = sans(&leaf);
        if !found.contains(&self.identity) {
            return Err(VerifyError::WrongIdentity {
                tag,
                expected: self.identity.clone(),
                found,
            });
        }
        let found_issuer = issuer(&leaf);
        if found_issuer.as_deref() != Some(self.issuer.as_str()) {
            return Err(VerifyError::WrongIssuer {
                tag,
                expected: self.issuer.clone(),
                found: found_issuer,
            });
        }

        // The signature, with the certificate's key.
        let key = CosignVerificationKey::try_from(leaf.tbs_certificate().subject_public_key_info())
            .map_err(|e| malformed(e.to_string()))?;
        if key
            .verify_signature(Signature::Raw(signature), message)
            .is_err()
        {
            return Err(VerifyError::BadSignature { tag });
        }

        // The log entry is for this signature.
        let bad_log = |reason: String| VerifyError::BadTransparencyLog {
            tag: tag.clone(),
            reason,
        };
        let body: serde_json::Value = STANDARD
            .decode(&bundle.payload.body)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| bad_log("its entry body is not base64 JSON".into()))?;
        let field = |pointer: &str| body.pointer(pointer).and_then(serde_json::Value::as_str);
        if field("/spec/data/hash/value") != Some(&hex::encode(Sha256::digest(message)))
            || field("/spec/signature/content")
                .and_then(|s| STANDARD.decode(s).ok())
                .as_deref()
                != Some(signature)
        {
            return Err(bad_log(
                "its entry is for another payload or signature".into(),
            ));
        }
        Ok(())
    }
}

/// Checks the bundle's signed entry timestamp with the Rekor keys (by log ID), through
/// sigstore-rs's own bundle verification.
fn verify_set(
    bundle: &Bundle,
    keys: &BTreeMap<String, CosignVerificationKey>,
) -> Result<(), SigstoreError> {
    let raw = serde_json::json!({
        "base64Signature": "",
        "cert": "",
        "rekorBundle": bundle,
    });
    sigstore::cosign::bundle::SignedArtifactBundle::new_verified(&raw.to_string(), keys).map(drop)
}

/// Why webpki found no path to a root, in words.
fn chain_failure(error: &webpki::Error) -> String {
    match error {
        webpki::Error::UnknownIssuer => {
            "issued by a certificate authority the root does not vouch for".into()
        }
        webpki::Error::InvalidSignatureForPublicKey => "a signature in the chain is invalid".into(),
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            "a certificate of the chain was not valid when Rekor logged the signature".into()
        }
        other => format!("{other:?}"),
    }
}

/// The certificate's URI and email subject alternative names.
fn sans(certificate: &Certificate) -> Vec<String> {
    let Ok(Some((_, san))) = certificate
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
    else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            GeneralName::Rfc822Name(email) => Some(email.to_string()),
            _ => None,
        })
        .collect()
}

/// Fulcio's OIDC issuer extension: the v2 one (a DER UTF8String), else the v1 one (raw).
fn issuer(certificate: &Certificate) -> Option<String> {
    let extensions = certificate.tbs_certificate().extensions()?;
    let value = |oid: &str| {
        extensions
            .iter()
            .find(|ext| ext.extn_id.to_string() == oid)
            .map(|ext| ext.extn_value.as_bytes().to_vec())
    };
    if let Some(der) = value(ISSUER_V2_OID) {
        return x509_cert::der::asn1::Utf8StringRef::from_der(&der)
            .ok()
            .map(|s| s.as_str().to_string());
    }
    value(ISSUER_V1_OID).and_then(|raw| String::from_utf8(raw).ok())
}

fn with_newline(pem: &str) -> String {
    let pem = pem.replace("\r\n", "\n");
    if pem.ends_with('\n') {
        pem
    } else {
        format!("{pem}\n")
    }
}

/// The end of a server's error body, enough to say why.
fn tail(body: &str) -> String {
    let body = body.trim();
    let skip = body.chars().count().saturating_sub(500);
    body.chars().skip(skip).collect()
}

/// A keyless signature could not be made, or its verification inputs are unusable.
#[derive(Debug, thiserror::Error)]
pub enum KeylessError {
    #[error("Failed to get an OIDC identity token from `{url}`")]
    Token {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("The OIDC token endpoint `{url}` answered HTTP {status}")]
    TokenStatus { url: String, status: u16 },
    #[error("The OIDC identity token is malformed: {reason}")]
    MalformedToken { reason: String },
    #[error("Failed to make the ephemeral signing key")]
    Key {
        #[source]
        source: SigstoreError,
    },
    #[error("Failed to get a signing certificate from Fulcio at `{url}`")]
    Fulcio {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Fulcio at `{url}` refused the certificate request (HTTP {status}): {message}")]
    FulcioStatus {
        url: String,
        status: u16,
        message: String,
    },
    #[error("Fulcio's answer from `{url}` is unusable: {reason}")]
    FulcioResponse { url: String, reason: String },
    #[error("Failed to log the signature in Rekor at `{url}`")]
    Rekor {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Rekor at `{url}` refused the entry (HTTP {status}): {message}")]
    RekorStatus {
        url: String,
        status: u16,
        message: String,
    },
    #[error("Rekor's answer from `{url}` is unusable: {reason}")]
    RekorResponse { url: String, reason: String },
    #[error("The Fulcio root certificate is unusable: {reason}")]
    BadRoot { reason: String },
    #[error("The Rekor public key is unusable: {reason}")]
    BadRekorKey { reason: String },
}

impl Diagnose for KeylessError {
    fn hint(&self) -> Option<String> {
        match self {
            KeylessError::Token { .. } | KeylessError::TokenStatus { .. } => Some(
                "GitHub Actions issues OIDC tokens only to jobs with `permissions: id-token: \
                 write`; or pass `--key` to sign with a key pair instead"
                    .into(),
            ),
            KeylessError::MalformedToken { .. } => Some(format!(
                "`{}` must hold an OIDC identity token (a JWT) with audience `sigstore`; in \
                 GitLab: `id_tokens: {}: aud: sigstore`",
                crate::env::SIGSTORE_ID_TOKEN,
                crate::env::SIGSTORE_ID_TOKEN
            )),
            KeylessError::Fulcio { .. } | KeylessError::FulcioStatus { .. } => Some(format!(
                "check `--fulcio-url` (or `{}`), and that the token's issuer is one Fulcio \
                 trusts; or pass `--key` to sign with a key pair",
                crate::env::KILN_FULCIO_URL
            )),
            KeylessError::Rekor { .. } | KeylessError::RekorStatus { .. } => Some(format!(
                "check `--rekor-url` (or `{}`)",
                crate::env::KILN_REKOR_URL
            )),
            KeylessError::BadRoot { .. } => Some(
                "pass the Fulcio root certificate (PEM) with `--certificate-chain`; the public \
                 Sigstore root is distributed through TUF (`cosign initialize`)"
                    .into(),
            ),
            KeylessError::BadRekorKey { .. } => {
                Some("pass Rekor's public key (PEM) with `--rekor-public-key`".into())
            }
            _ => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            KeylessError::Key { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &serde_json::Value) -> SecretString {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        SecretString::from(format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"))
    }

    #[test]
    fn claims_are_read_from_the_payload() {
        let claims = Claims::of(&jwt(&serde_json::json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:acme/app:ref:refs/heads/main",
        })))
        .unwrap();
        assert_eq!(claims.iss, "https://token.actions.githubusercontent.com");
        assert_eq!(
            claims.subject().unwrap(),
            "repo:acme/app:ref:refs/heads/main"
        );

        let claims = Claims::of(&jwt(&serde_json::json!({
            "iss": "https://accounts.google.com", "sub": "123", "email": "dev@example.com",
        })))
        .unwrap();
        assert_eq!(claims.subject().unwrap(), "dev@example.com");
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        for token in ["not-a-jwt", "a.b", "a.!!!.c", "a.e30.c"] {
            let err = Claims::of(&SecretString::from(token)).unwrap_err();
            assert!(
                matches!(err, KeylessError::MalformedToken { .. }),
                "{err:?}"
            );
            assert!(!err.to_string().contains(token), "{err}");
        }
        let err = Claims::of(&jwt(&serde_json::json!({"iss": "x"})))
            .unwrap()
            .subject()
            .unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
    }

    #[test]
    fn token_sources_do_not_debug_print_secrets() {
        let source = TokenSource::GitHubActions {
            url: "https://example.test/token".into(),
            token: SecretString::from("request-secret"),
        };
        assert!(!format!("{source:?}").contains("request-secret"));
        let source = TokenSource::Env(SecretString::from("jwt-secret"));
        assert!(!format!("{source:?}").contains("jwt-secret"));
    }

    #[test]
    fn a_root_without_a_certificate_is_refused() {
        let err = Policy::new("a", "b", "not a pem", None).unwrap_err();
        assert!(matches!(err, KeylessError::BadRoot { .. }), "{err:?}");
    }
}
