//! Carrying an artifact's cosign tags along when the artifact moves.
//!
//! `kiln push` and `kiln pull` copy the `sha256-<hex>.sig` and `.att` manifests with the
//! artifact, as `cosign copy` does, so that what was verifiable in one place stays
//! verifiable in the other.

use crate::oci::layout::Layout;
use crate::registry::{Registry, RegistryError};
use crate::reporter::Reporter;

/// The suffixes of the tags cosign attaches to an artifact: signatures, attestations.
pub const SUFFIXES: [&str; 2] = ["sig", "att"];

/// Pushes the layout's `.sig`/`.att` manifests of `digest` to `registry`'s repository.
/// Returns the tags pushed.
pub async fn push(
    layout: &Layout,
    registry: &Registry,
    digest: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, RegistryError> {
    let mut pushed = Vec::new();
    for tag in tags(digest) {
        let Some((manifest_digest, _)) = layout.tagged(&tag)? else {
            continue;
        };
        registry
            .at_tag(&tag)
            .push(layout, &manifest_digest, reporter)
            .await?;
        pushed.push(tag);
    }
    Ok(pushed)
}

/// Pulls `registry`'s `.sig`/`.att` manifests of `digest` into the layout, tagged as in
/// the registry. Returns the tags pulled.
pub async fn pull(
    layout: &Layout,
    registry: &Registry,
    digest: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, RegistryError> {
    let mut pulled = Vec::new();
    for tag in tags(digest) {
        let found = registry
            .at_tag(&tag)
            .pull_if_exists(layout, &tag, reporter)
            .await?;
        if found.is_some() {
            pulled.push(tag);
        }
    }
    Ok(pulled)
}

fn tags(digest: &str) -> impl Iterator<Item = String> + '_ {
    SUFFIXES
        .iter()
        .filter_map(move |suffix| super::cosign_tag(digest, suffix).ok())
}
