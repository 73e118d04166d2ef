//! The Wasm OCI artifact format and where artifacts are stored.
//!
//! Media types follow the CNCF TAG-Runtime Wasm OCI artifact layout: one
//! `application/wasm` layer, a `application/vnd.wasm.config.v0+json` config.

pub mod layout;

use std::path::Path;

use sha2::{Digest, Sha256};

/// The manifest media type (OCI image manifest).
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of a Wasm artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the single Wasm layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// Standard annotation keys (OCI image spec, "Pre-Defined Annotation Keys"), as
/// oci-client names them.
pub mod annotations {
    pub use oci_client::annotations::{
        ORG_OPENCONTAINERS_IMAGE_CREATED as CREATED, ORG_OPENCONTAINERS_IMAGE_REF_NAME as REF_NAME,
        ORG_OPENCONTAINERS_IMAGE_REVISION as REVISION, ORG_OPENCONTAINERS_IMAGE_SOURCE as SOURCE,
        ORG_OPENCONTAINERS_IMAGE_TITLE as TITLE, ORG_OPENCONTAINERS_IMAGE_VERSION as VERSION,
    };
}

/// `sha256:<hex>` of `bytes`.
pub use kiln_cache::archive::digest;

/// `sha256:<hex>` of a file's content and its size, read in chunks.
pub fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    let file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 16, file),
        &mut hasher,
    )?;
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// The hex part of a `sha256:<hex>` digest, if it is one as oci-spec's [`Sha256Digest`]
/// checks it (64 lowercase hex digits): kiln's one digest rule, for everything that names
/// a blob, a tag or a file by digest.
///
/// [`Sha256Digest`]: oci_spec::image::Sha256Digest
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    hex.parse::<oci_spec::image::Sha256Digest>().ok()?;
    Some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(sha256_hex(&digest(b"x")).is_some());
        assert!(sha256_hex("sha256:../../etc/passwd").is_none());
        assert!(sha256_hex("sha512:abcd").is_none());
    }
}
