//! cosign key pairs: ECDSA P-256, the private key encrypted with scrypt + secretbox.
//!
//! The formats are cosign's, and the cryptography is sigstore-rs's: kiln only reads the
//! PEM label, so that a wrong password and a wrong file give different errors.

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sigstore::crypto::signing_key::ecdsa::ec::EcdsaKeys;
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::{
    COSIGN_PRIVATE_KEY_PEM_LABEL, SIGSTORE_PRIVATE_KEY_PEM_LABEL, kdf,
};
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature};
use sigstore::errors::SigstoreError;

use crate::diagnose::{Blame, Diagnose};

/// A private key that signs: ECDSA P-256 with SHA-256, DER signatures.
pub struct SigningKey {
    signer: SigStoreSigner,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Signs `message` (hashed with SHA-256): an ASN.1 DER ECDSA signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer
            .sign(message)
            .map_err(|source| KeyError::Sign { source })
    }

    /// The public half, to verify what this key signed.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        let key = self
            .signer
            .to_verification_key()
            .map_err(|source| KeyError::Public { source })?;
        Ok(PublicKey { key })
    }
}

/// A public key that verifies cosign signatures.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: CosignVerificationKey,
}

impl PublicKey {
    /// Whether `signature` (DER) over `message` was made by this key's private half.
    pub fn verifies(&self, signature: &[u8], message: &[u8]) -> bool {
        self.key
            .verify_signature(Signature::Raw(signature), message)
            .is_ok()
    }
}

/// Generates a key pair: (encrypted private key PEM, public key PEM).
///
/// The private key is a PKCS#8 ECDSA P-256 key sealed with secretbox under a key derived
/// from `password` with scrypt (N=32768, r=8, p=1), labelled `ENCRYPTED SIGSTORE PRIVATE
/// KEY`, exactly as sigstore-rs writes it and as `cosign sign --key` reads it. An empty
/// password is allowed, as in `cosign generate-key-pair`.
pub fn generate(password: &SecretString) -> Result<(String, String), KeyError> {
    let keys =
        ECDSAKeys::new(EllipticCurve::P256).map_err(|source| KeyError::Generate { source })?;
    let keys = keys.as_inner();
    let private = keys
        .private_key_to_encrypted_pem(password.expose_secret().as_bytes())
        .map_err(|source| KeyError::Generate { source })?;
    let public = keys
        .public_key_to_pem()
        .map_err(|source| KeyError::Generate { source })?;
    // sigstore's PEM encoder ends lines with CRLF; cosign (Go's encoding/pem) with LF.
    Ok((private.replace("\r\n", "\n"), public.replace("\r\n", "\n")))
}

/// Reads an encrypted private key written by `cosign generate-key-pair` (`ENCRYPTED
/// COSIGN PRIVATE KEY`) or by sigstore-rs and [`generate`] (`ENCRYPTED SIGSTORE PRIVATE
/// KEY`).
pub fn load_private(pem: &str, password: &SecretString) -> Result<SigningKey, KeyError> {
    let (label, contents) = parse_pem(pem)?;
    if label != COSIGN_PRIVATE_KEY_PEM_LABEL && label != SIGSTORE_PRIVATE_KEY_PEM_LABEL {
        return Err(KeyError::NotAPrivateKey { found: label });
    }
    let der = kdf::decrypt(&contents, password.expose_secret().as_bytes())
        .map(Zeroizing::new)
        .map_err(|source| match source {
            // sigstore reports a failed secretbox open (a wrong password, or a damaged
            // ciphertext) as `PrivateKeyEncryptError`; no other step of decrypt() does.
            SigstoreError::PrivateKeyEncryptError(_) => KeyError::WrongPassword,
            source => KeyError::Private { source },
        })?;
    let keys = EcdsaKeys::from_pkcs8_der(&der).map_err(|source| KeyError::Private { source })?;
    let signer = match keys
        .to_wrapped_ecdsa_keys()
        .map_err(|source| KeyError::Private { source })?
    {
        ECDSAKeys::P256(key) => SigStoreSigner::ECDSA_P256_SHA256_ASN1(
            key.to_signer()
                .map_err(|source| KeyError::Private { source })?,
        ),
        other => {
            return Err(KeyError::Unsupported {
                kind: other.to_string(),
            });
        }
    };
    Ok(SigningKey { signer })
}

/// Reads a `PUBLIC KEY` PEM (SubjectPublicKeyInfo), as `cosign generate-key-pair` and
/// [`generate`] write it.
pub fn load_public(pem: &str) -> Result<PublicKey, KeyError> {
    let (label, _) = parse_pem(pem)?;
    if label != "PUBLIC KEY" {
        return Err(KeyError::NotAPublicKey { found: label });
    }
    let key = CosignVerificationKey::try_from_pem(pem.as_bytes())
        .map_err(|source| KeyError::Public { source })?;
    let kind = match key {
        CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => return Ok(PublicKey { key }),
        CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_) => "ECDSA P384",
        CosignVerificationKey::ECDSA_P521_SHA512_ASN1(_) => "ECDSA P521",
        CosignVerificationKey::ED25519(_) => "Ed25519",
        CosignVerificationKey::RSA_PSS_SHA256(_) | CosignVerificationKey::RSA_PKCS1_SHA256(_) => {
            "RSA"
        }
    };
    Err(KeyError::Unsupported { kind: kind.into() })
}

/// The label and decoded contents of the first PEM block in `pem`.
fn parse_pem(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    use base64::Engine as _;
    let malformed = || KeyError::NotPem;
    let (_, rest) = pem.split_once("-----BEGIN ").ok_or_else(malformed)?;
    let (label, rest) = rest.split_once("-----").ok_or_else(malformed)?;
    let (body, _) = rest
        .split_once(&format!("-----END {label}-----"))
        .ok_or_else(malformed)?;
    let body: String = body
        .lines()
        // RFC 1421 headers (`Proc-Type: ...`) do not occur in cosign keys.
        .filter(|line| !line.contains(':'))
        .collect::<String>()
        .split_whitespace()
        .collect();
    let contents = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| malformed())?;
    Ok((label.to_string(), contents))
}

/// A key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("Failed to generate a key pair")]
    Generate {
        #[source]
        source: SigstoreError,
    },
    #[error("The key is not PEM-encoded")]
    NotPem,
    #[error(
        "The key is a `{found}`, not an encrypted cosign private key (`{COSIGN_PRIVATE_KEY_PEM_LABEL}` or `{SIGSTORE_PRIVATE_KEY_PEM_LABEL}`)"
    )]
    NotAPrivateKey { found: String },
    #[error("The key is a `{found}`, not a `PUBLIC KEY`")]
    NotAPublicKey { found: String },
    #[error("The password does not decrypt the private key")]
    WrongPassword,
    #[error("Failed to read the private key")]
    Private {
        #[source]
        source: SigstoreError,
    },
    #[error("Failed to read the public key")]
    Public {
        #[source]
        source: SigstoreError,
    },
    #[error("`{kind}` keys are not supported: kiln signs and verifies with ECDSA P-256 keys")]
    Unsupported { kind: String },
    #[error("Failed to sign")]
    Sign {
        #[source]
        source: SigstoreError,
    },
}

impl Diagnose for KeyError {
    fn hint(&self) -> Option<String> {
        match self {
            KeyError::WrongPassword => Some(
                "check the password the key was generated with (`cosign generate-key-pair` \
                 reads it from COSIGN_PASSWORD)"
                    .into(),
            ),
            KeyError::NotAPrivateKey { .. } | KeyError::NotPem => Some(
                "generate a key pair with `cosign generate-key-pair` and pass `cosign.key`".into(),
            ),
            KeyError::NotAPublicKey { .. } => {
                Some("pass the public half of the key pair (`cosign.pub`)".into())
            }
            KeyError::Unsupported { .. } => {
                Some("generate a key pair with `cosign generate-key-pair`".into())
            }
            _ => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            KeyError::Generate { .. } | KeyError::Sign { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::tests::{PASSWORD, generated, key_pair};

    fn password(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn generated_keys_round_trip() {
        let (private, public) = generated();
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(!private.contains('\r') && !public.contains('\r'));

        let key = load_private(private, &password(PASSWORD)).unwrap();
        let public = load_public(public).unwrap();
        let signature = key.sign(b"payload").unwrap();
        assert!(public.verifies(&signature, b"payload"));
        assert!(!public.verifies(&signature, b"payloaD"));
        assert!(key.public_key().unwrap().verifies(&signature, b"payload"));
    }

    #[test]
    fn wrong_password_is_its_own_error() {
        let (private, _) = generated();
        let err = load_private(private, &password("wrong")).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassword), "{err:?}");
        assert_eq!(
            err.to_string(),
            "The password does not decrypt the private key"
        );
        assert!(err.hint().unwrap().contains("COSIGN_PASSWORD"));
    }

    #[test]
    fn reads_the_cosign_label_too() {
        let (private, _) = generated();
        let cosign = private.replace("SIGSTORE PRIVATE KEY", "COSIGN PRIVATE KEY");
        load_private(&cosign, &password(PASSWORD)).unwrap();
    }

    #[test]
    fn reads_a_key_written_by_cosign() {
        // `cosign generate-key-pair` with an empty password (N=65536), from sigstore-rs's
        // test data (tests/data/keys/cosign_generated_encrypted_empty_private.key).
        const COSIGN_KEY: &str = "\
-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n\
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6\n\
OCwicCI6MX0sInNhbHQiOiJFY3pJR3Z0bnpFcCsxaEpudERnbGI1UnoxN3gwQVMy\n\
YklvWGRNcDQrU1NJPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94\n\
Iiwibm9uY2UiOiJtSVVKbG1OMzNINExvZ0dhaG5MamdmK3R4SmJwci93MCJ9LCJj\n\
aXBoZXJ0ZXh0IjoiM3FtS2FidXRuYm1WT1IvTkZGM2NDaUErTXp1WWQ5L0VERDVI\n\
MVlUSGhQVzZsSzAvdjVqdDZCQzlsME12NGV5am9qZkl0d3B6a2JJOXQrZGx5VXZ3\n\
VUgvMWZjbkFZT2dEdXRLQzkvSkNiOE02SVY2VHpVaDF5c0ZFWDFzeG9xb1FzeUpL\n\
bjM0UVlldFNlaVdDaGtmUHUyZXByQjFEV0pwekdzTGZIakxNVTkzOEdmNk1xM1A0\n\
N0ZSd2syZzY1cFZnSGMwVWV1L1N1OUs0Zmc9PSJ9\n\
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n\
";
        let key = load_private(COSIGN_KEY, &password("")).unwrap();
        let signature = key.sign(b"payload").unwrap();
        assert!(key.public_key().unwrap().verifies(&signature, b"payload"));
    }

    #[test]
    fn refuses_the_wrong_kind_of_pem() {
        let (private, public) = generated();
        assert!(matches!(
            load_private(public, &password("")),
            Err(KeyError::NotAPrivateKey { found }) if found == "PUBLIC KEY"
        ));
        assert!(matches!(
            load_public(private),
            Err(KeyError::NotAPublicKey { .. })
        ));
        assert!(matches!(load_public("not a key"), Err(KeyError::NotPem)));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let (key, _) = key_pair();
        assert_eq!(format!("{key:?}"), "SigningKey { .. }");
    }
}
