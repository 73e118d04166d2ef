//! The manifests cosign attaches by tag: an OCI image whose layers are signed payloads.
//!
//! cosign builds them with go-containerregistry, so the config is a real (empty) image
//! config with zero timestamps, one history entry per layer, and each layer's digest as
//! its diff ID (the layers are not compressed). Adding a signature appends a layer and
//! rewrites the config; it never drops the layers already there.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageManifest};

use super::{Blobs, CosignArtifact, SignError, VerifyError};
use crate::oci::{MANIFEST_MEDIA_TYPE, digest};

const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A layer to add: its content, media type and annotations.
pub(super) struct NewLayer {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub annotations: BTreeMap<String, String>,
}

/// The manifest tagged `tag` with `layer` appended to the layers of `existing` (or as
/// its only layer).
pub(super) fn append(
    tag: String,
    existing: Option<&[u8]>,
    layer: NewLayer,
) -> Result<CosignArtifact, SignError> {
    let (mut layers, annotations) = match existing {
        Some(bytes) => {
            let manifest: OciImageManifest =
                serde_json::from_slice(bytes).map_err(|source| SignError::ExistingManifest {
                    tag: tag.clone(),
                    source,
                })?;
            (manifest.layers, manifest.annotations)
        }
        None => (Vec::new(), None),
    };
    let layer_digest = digest(&layer.bytes);
    layers.push(OciDescriptor {
        media_type: layer.media_type.to_string(),
        digest: layer_digest.clone(),
        size: layer.bytes.len() as i64,
        annotations: Some(layer.annotations),
        ..Default::default()
    });

    let config = config_for(&layers);
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        config: OciDescriptor {
            media_type: CONFIG_MEDIA_TYPE.to_string(),
            digest: digest(&config),
            size: config.len() as i64,
            ..Default::default()
        },
        layers,
        subject: None,
        artifact_type: None,
        annotations,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("OCI types serialise");
    Ok(CosignArtifact {
        manifest_digest: digest(&manifest_bytes),
        manifest_bytes,
        blobs: vec![(layer_digest, layer.bytes), (digest(&config), config)],
        tag,
    })
}

/// go-containerregistry's `ConfigFile` for an image of `layers`, byte for byte as
/// cosign writes it.
fn config_for(layers: &[OciDescriptor]) -> Vec<u8> {
    // Field order and omitted fields follow the Go struct's JSON tags; serde writes
    // struct fields in declaration order.
    #[derive(serde::Serialize)]
    struct ConfigFile<'a> {
        architecture: &'a str,
        created: &'a str,
        history: Vec<History<'a>>,
        os: &'a str,
        rootfs: RootFs<'a>,
        config: Empty,
    }
    #[derive(serde::Serialize)]
    struct History<'a> {
        created: &'a str,
    }
    #[derive(serde::Serialize)]
    struct RootFs<'a> {
        r#type: &'a str,
        diff_ids: Vec<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Empty {}

    let config = ConfigFile {
        architecture: "",
        created: ZERO_TIME,
        history: layers
            .iter()
            .map(|_| History { created: ZERO_TIME })
            .collect(),
        os: "",
        rootfs: RootFs {
            r#type: "layers",
            diff_ids: layers.iter().map(|l| l.digest.as_str()).collect(),
        },
        config: Empty {},
    };
    serde_json::to_vec(&config).expect("the config serialises")
}

/// Parses a cosign manifest for verification.
pub(super) fn parse(tag: &str, bytes: &[u8]) -> Result<OciImageManifest, VerifyError> {
    serde_json::from_slice(bytes).map_err(|source| VerifyError::MalformedManifest {
        tag: tag.to_string(),
        source,
    })
}

/// The content of `layer`, checked against its digest.
pub(super) fn read_layer(
    tag: &str,
    blobs: &(impl Blobs + ?Sized),
    layer: &OciDescriptor,
) -> Result<Vec<u8>, VerifyError> {
    let bytes = blobs
        .blob(&layer.digest)
        .ok_or_else(|| VerifyError::MissingBlob {
            tag: tag.to_string(),
            digest: layer.digest.clone(),
        })?;
    let actual = digest(&bytes);
    if actual != layer.digest {
        return Err(VerifyError::BlobDigestMismatch {
            tag: tag.to_string(),
            expected: layer.digest.clone(),
            actual,
        });
    }
    Ok(bytes.into_owned())
}

/// Runs `check` on every layer of `media_type` and returns what the layers that pass
/// yield; when none passes, the error of the layer that got furthest.
pub(super) fn each_layer<T>(
    tag: &str,
    manifest: &OciImageManifest,
    media_type: &str,
    mut check: impl FnMut(&OciDescriptor) -> Result<T, VerifyError>,
) -> Result<Vec<T>, VerifyError> {
    let mut passed = Vec::new();
    let mut worst: Option<VerifyError> = None;
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == media_type)
    {
        match check(layer) {
            Ok(value) => passed.push(value),
            Err(err) => {
                if worst.as_ref().is_none_or(|w| err.rank() > w.rank()) {
                    worst = Some(err);
                }
            }
        }
    }
    if passed.is_empty() {
        return Err(worst.unwrap_or_else(|| VerifyError::NoSignature {
            tag: tag.to_string(),
        }));
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_matches_cosign_byte_for_byte() {
        // What cosign 2.x writes for a one-signature `.sig` image.
        let payload = "sha256:b671489ededd1a180bd87235bba00fd83354f9c7d13b71d9f8b66a8e52965ebc";
        let layers = [OciDescriptor {
            digest: payload.into(),
            ..Default::default()
        }];
        assert_eq!(
            String::from_utf8(config_for(&layers)).unwrap(),
            format!(
                r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{payload}"]}},"config":{{}}}}"#
            )
        );
    }

    #[test]
    fn appending_keeps_the_existing_layers() {
        let layer = |text: &str| NewLayer {
            bytes: text.as_bytes().to_vec(),
            media_type: "text/plain",
            annotations: BTreeMap::from([("k".to_string(), text.to_string())]),
        };
        let first = append("t.sig".into(), None, layer("one")).unwrap();
        let second = append("t.sig".into(), Some(&first.manifest_bytes), layer("two")).unwrap();
        let manifest: OciImageManifest = serde_json::from_slice(&second.manifest_bytes).unwrap();
        assert_eq!(
            manifest
                .layers
                .iter()
                .map(|l| l.digest.as_str())
                .collect::<Vec<_>>(),
            [digest(b"one"), digest(b"two")]
        );
        // Only the new layer and the new config are new blobs.
        assert_eq!(second.blobs.len(), 2);
        assert_eq!(second.blobs[0].0, digest(b"two"));
        let config: serde_json::Value = serde_json::from_slice(&second.blobs[1].1).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        assert_eq!(manifest.config.digest, second.blobs[1].0);
    }

    #[test]
    fn a_foreign_manifest_is_refused() {
        let err = append(
            "t.sig".into(),
            Some(b"{}"),
            NewLayer {
                bytes: vec![],
                media_type: "text/plain",
                annotations: BTreeMap::new(),
            },
        )
        .unwrap_err();
        assert!(matches!(err, SignError::ExistingManifest { .. }), "{err:?}");
    }
}
