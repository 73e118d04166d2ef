//! `kiln verify` and `kiln run --verify`: is this the artifact that was signed, with the
//! SBOM that was attested, and does that SBOM pass the policy?
//!
//! 1. Takes the artifact in a layout (`kiln verify` copies one from a registry into a
//!    scratch layout first, every blob checked against its digest on the way: the
//!    manifest and its `.sig`, whose signature must verify ([`check_signature`]) before
//!    any layer is fetched, then the layers and the `.att`).
//! 2. Checks the artifact's own content: the manifest, the config and every layer must
//!    hash to the digests that name them, so a changed byte anywhere is caught.
//! 3. Checks the `sha256-<hex>.sig` signature with the public key, or keylessly: a Fulcio
//!    certificate for the expected identity and issuer under the given root, logged in
//!    Rekor while it was valid ([`crate::sign::keyless::Policy`]).
//! 4. Checks the `sha256-<hex>.att` CycloneDX attestation: its signature, and that its
//!    subject is this artifact. Required with `--require-sbom`.
//! 5. Applies the policy to the attested SBOM: no component under a denied license.

use std::collections::BTreeSet;

use crate::diagnose::{Blame, Diagnose};
use crate::oci::layout::{Layout, LayoutError};
use crate::sbom::CYCLONEDX_PREDICATE_TYPE;
use crate::sign::{self, Verifier, VerifyError};

/// What a verified artifact must satisfy beyond its signature.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// SPDX license ids no component may carry.
    pub deny_licenses: Vec<String>,
    /// A verified CycloneDX attestation must exist.
    pub require_sbom: bool,
}

/// What was checked and found good.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    /// The artifact's manifest digest.
    pub digest: String,
    /// The `.sig` tag whose signature verified.
    pub signature_tag: String,
    /// The verified SBOM attestation, when there is one.
    pub sbom: Option<VerifiedSbom>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifiedSbom {
    /// The `.att` tag.
    pub tag: String,
    /// How many components the SBOM lists.
    pub components: usize,
    /// Every license id, name or expression it mentions.
    pub licenses: BTreeSet<String>,
}

/// Checks the `.sig` in `layout` signs the manifest `digest`; needs nothing of the
/// artifact but its digest, so a registry's artifact is checked before its layers are
/// fetched, as cosign does. Returns the signature's tag.
pub fn check_signature(
    layout: &Layout,
    digest: &str,
    key: &Verifier,
) -> Result<String, VerifyFailure> {
    let signature_tag = sign::cosign_tag(digest, "sig").map_err(|_| VerifyFailure::NotSha256 {
        digest: digest.to_string(),
    })?;
    let signature = tagged(layout, &signature_tag)?.ok_or_else(|| VerifyFailure::Unsigned {
        digest: digest.to_string(),
        tag: signature_tag.clone(),
    })?;
    sign::verify_signature(&signature, layout, digest, key)
        .map_err(|source| VerifyFailure::Signature { source })?;
    Ok(signature_tag)
}

/// Verifies the artifact `digest` in `layout`, with its `.sig` and `.att` there.
pub fn verify_in_layout(
    layout: &Layout,
    digest: &str,
    key: &Verifier,
    policy: &Policy,
) -> Result<Verified, VerifyFailure> {
    check_content(layout, digest)?;
    let signature_tag = check_signature(layout, digest, key)?;

    let att_tag = sign::cosign_tag(digest, "att").expect("checked above");
    let statement = match tagged(layout, &att_tag)? {
        Some(bytes) => {
            match sign::verify_attestation(&bytes, layout, digest, CYCLONEDX_PREDICATE_TYPE, key) {
                Ok(statement) => Some(statement),
                // Attestations of other kinds only: no SBOM, which the policy may allow.
                Err(VerifyError::NoPredicate { .. }) => None,
                Err(source) => return Err(VerifyFailure::Attestation { source }),
            }
        }
        None => None,
    };
    let sbom = match statement {
        Some(statement) => Some(check_sbom(&att_tag, &statement.predicate, policy)?),
        // A license policy needs an SBOM to judge: without one it cannot pass.
        None if policy.require_sbom || !policy.deny_licenses.is_empty() => {
            return Err(VerifyFailure::NoSbom {
                digest: digest.to_string(),
                tag: att_tag,
            });
        }
        None => None,
    };
    Ok(Verified {
        digest: digest.to_string(),
        signature_tag,
        sbom,
    })
}

/// Every blob of the artifact hashes to the digest that names it.
fn check_content(layout: &Layout, digest: &str) -> Result<(), VerifyFailure> {
    let content = |source| VerifyFailure::Content {
        digest: digest.to_string(),
        source,
    };
    let manifest = layout.manifest_at(digest).map_err(content)?;
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        layout.read_blob(&blob.digest).map_err(content)?;
    }
    Ok(())
}

fn tagged(layout: &Layout, tag: &str) -> Result<Option<Vec<u8>>, VerifyFailure> {
    let read = |source| VerifyFailure::Read {
        tag: tag.to_string(),
        source,
    };
    Ok(layout.tagged(tag).map_err(read)?.map(|(_, bytes)| bytes))
}

/// Reads what the policy needs from a CycloneDX document and applies it.
fn check_sbom(
    tag: &str,
    bom: &serde_json::Value,
    policy: &Policy,
) -> Result<VerifiedSbom, VerifyFailure> {
    /// The string at `pointer` in `value`; `None` when missing or of another type.
    fn text<'a>(value: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
        value.pointer(pointer).and_then(serde_json::Value::as_str)
    }
    let components = bom
        .get("components")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut licenses = BTreeSet::new();
    for component in &components {
        let name = format!(
            "{}@{}",
            text(component, "/name").unwrap_or("?"),
            text(component, "/version").unwrap_or("?")
        );
        let choices = component
            .get("licenses")
            .and_then(serde_json::Value::as_array);
        for choice in choices.into_iter().flatten() {
            let license = text(choice, "/license/id")
                .or(text(choice, "/license/name"))
                .or(text(choice, "/expression"));
            let Some(license) = license else { continue };
            licenses.insert(license.to_string());
            if let Some(denied) = denied_in(license, &policy.deny_licenses) {
                return Err(VerifyFailure::DeniedLicense {
                    component: name,
                    license: license.to_string(),
                    denied: denied.to_string(),
                });
            }
        }
    }
    Ok(VerifiedSbom {
        tag: tag.to_string(),
        components: components.len(),
        licenses,
    })
}

/// The denied id `license` (an id, a name or an SPDX expression) mentions, if any.
///
/// An expression is denied when any id in it is: `MIT OR GPL-3.0-only` lets the user
/// choose, but a policy that denies GPL-3.0-only wants a human to look at that choice.
fn denied_in<'a>(license: &str, denied: &'a [String]) -> Option<&'a str> {
    let ids: Vec<&str> = license
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '/')
        .filter(|t| !t.is_empty() && !matches!(*t, "AND" | "OR" | "WITH"))
        .map(|t| t.trim_end_matches('+'))
        .collect();
    denied
        .iter()
        .find(|d| ids.iter().any(|id| id.eq_ignore_ascii_case(d)))
        .map(String::as_str)
}

/// Why an artifact did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    #[error("`{digest}` is not a sha256 digest")]
    NotSha256 { digest: String },
    #[error("The content of artifact `{digest}` does not match its digests")]
    Content {
        digest: String,
        #[source]
        source: LayoutError,
    },
    #[error("Artifact `{digest}` is not signed: there is no `{tag}`")]
    Unsigned { digest: String, tag: String },
    #[error("The artifact's signature does not verify")]
    Signature {
        #[source]
        source: VerifyError,
    },
    #[error("The artifact's SBOM attestation does not verify")]
    Attestation {
        #[source]
        source: VerifyError,
    },
    #[error("Artifact `{digest}` has no CycloneDX SBOM attestation (`{tag}`)")]
    NoSbom { digest: String, tag: String },
    #[error("Component `{component}` is licensed `{license}`, and `{denied}` is denied")]
    DeniedLicense {
        component: String,
        license: String,
        denied: String,
    },
    #[error("Failed to read `{tag}`")]
    Read {
        tag: String,
        #[source]
        source: LayoutError,
    },
}

impl Diagnose for VerifyFailure {
    fn hint(&self) -> Option<String> {
        match self {
            VerifyFailure::Content { .. } => Some(
                "a stored blob was changed after it was written: pull or build the artifact \
                 again, and find out what altered it"
                    .into(),
            ),
            VerifyFailure::Unsigned { .. } => Some(
                "`kiln build` signs what it stores; for an artifact built elsewhere, sign it \
                 with `cosign sign --key cosign.key IMAGE@DIGEST`"
                    .into(),
            ),
            VerifyFailure::Signature { source } | VerifyFailure::Attestation { source } => {
                Some(match source {
                    VerifyError::BadSignature { .. } => {
                        "check that `--key` is the public half of the key that signed \
                         (`kiln build` prints which key it signed with)"
                            .into()
                    }
                    _ => source.hint().unwrap_or_else(|| {
                        "the artifact or its signatures were altered after signing: do not \
                         run it"
                            .into()
                    }),
                })
            }
            VerifyFailure::NoSbom { .. } => Some(
                "`kiln build` attests an SBOM for what it builds; rebuild, or drop \
                 `--require-sbom`"
                    .into(),
            ),
            VerifyFailure::DeniedLicense { .. } => Some(
                "replace the component, or allow the license by removing it from \
                 `--deny-license`"
                    .into(),
            ),
            VerifyFailure::NotSha256 { .. } | VerifyFailure::Read { .. } => None,
        }
    }

    fn blame(&self) -> Blame {
        Blame::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn licenses_are_denied_by_id_inside_expressions() {
        let gpl = deny(&["GPL-3.0-only"]);
        assert_eq!(denied_in("GPL-3.0-only", &gpl), Some("GPL-3.0-only"));
        assert_eq!(denied_in("MIT OR GPL-3.0-only", &gpl), Some("GPL-3.0-only"));
        assert_eq!(
            denied_in("(MIT AND gpl-3.0-only)", &gpl),
            Some("GPL-3.0-only")
        );
        assert_eq!(denied_in("MIT/Apache-2.0", &gpl), None);
        assert_eq!(denied_in("GPL-3.0-or-later", &gpl), None);
        assert_eq!(denied_in("LGPL-3.0-only", &gpl), None);
    }
}
