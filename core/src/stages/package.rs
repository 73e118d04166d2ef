//! The package stage: wraps the built `.wasm` as a Wasm OCI artifact (in memory).
//!
//! 1. Reads the built file and digests it: that is the single `application/wasm` layer.
//! 2. For a component, reads its top-level imports and exports from the binary itself.
//! 3. Writes the config (`application/vnd.wasm.config.v0+json`: `architecture`, `os`,
//!    `layerDigests`, `component`, `created`) and the manifest with the standard
//!    `org.opencontainers.image.*` annotations.
//!
//! Nothing here reads the clock: `created` comes from `SOURCE_DATE_EPOCH` or the commit
//! time, so the same inputs always give the same manifest digest. The config always has
//! `created` (consumers built on the Bytecode Alliance's `oci-wasm` types require it):
//! with neither source, it is the Unix epoch, as reproducible builds conventionally use;
//! the manifest's `org.opencontainers.image.created` annotation is then left out rather
//! than claim a time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use crate::diagnose::{Blame, Diagnose};
use crate::oci::{
    MANIFEST_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, annotations, digest,
};
use crate::reporter::Reporter;
use crate::stages::build::{Built, WasmKind};

/// What the package stage needs.
#[derive(Debug, Clone)]
pub struct PackageRequest {
    pub built: Built,
    /// The artifact's name, for the layer's title (`NAME.wasm`).
    pub name: String,
    pub version: Option<String>,
    /// RFC 3339 creation time; `None` leaves `created` out rather than invent one.
    pub created: Option<String>,
    /// The VCS revision the source was at.
    pub revision: Option<String>,
    /// Where the source lives (a repository URL, without credentials).
    pub source: Option<String>,
    /// The build's inputs digest ([`crate::inputs`]).
    pub inputs_digest: Option<String>,
}

/// `created` when the source says nothing about time: the Unix epoch.
pub const UNKNOWN_CREATED: &str = "1970-01-01T00:00:00Z";

/// The config blob's content (Wasm OCI artifact spec). Its fields are those of
/// `oci_wasm::WasmConfig`, which kiln cannot use itself: oci-wasm 0.6 is built on
/// oci-client 0.17, kiln (and sigstore) on 0.18.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339: required by the spec's reference types.
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
}

/// `component` in the config: a component's world, as read from its binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A packaged artifact, ready to store or push.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub manifest: OciImageManifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: String,
    pub config: WasmConfig,
    pub config_bytes: Vec<u8>,
    /// The `.wasm` file behind the layer.
    pub layer_path: PathBuf,
    pub layer_digest: String,
    pub layer_size: u64,
    pub kind: WasmKind,
}

/// Packages the built file.
pub async fn run(req: PackageRequest, _reporter: &dyn Reporter) -> Result<Artifact, PackageError> {
    let path = req.built.wasm.clone();
    let wasm = tokio::fs::read(&path)
        .await
        .map_err(|source| PackageError::Read {
            path: path.clone(),
            source,
        })?;
    let kind = WasmKind::of(&wasm).ok_or_else(|| PackageError::NotWasm { path: path.clone() })?;
    let layer_digest = digest(&wasm);
    let component = match kind {
        WasmKind::Component => {
            Some(
                component_info(&wasm).map_err(|source| PackageError::Component {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        WasmKind::Module => None,
    };
    let config = WasmConfig {
        created: req
            .created
            .clone()
            .unwrap_or_else(|| UNKNOWN_CREATED.to_string()),
        author: None,
        architecture: "wasm".into(),
        os: kind.os().into(),
        layer_digests: vec![layer_digest.clone()],
        component,
    };
    let config_bytes = serde_json::to_vec(&config).expect("config serialises");

    let mut manifest_annotations = BTreeMap::new();
    let mut annotate = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            manifest_annotations.insert(key.to_string(), value.clone());
        }
    };
    annotate(annotations::CREATED, &req.created);
    annotate(annotations::SOURCE, &req.source);
    annotate(annotations::REVISION, &req.revision);
    annotate(annotations::VERSION, &req.version);
    annotate(annotations::TITLE, &Some(req.name.clone()));
    annotate(crate::inputs::ANNOTATION, &req.inputs_digest);

    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: OciDescriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.into(),
            digest: digest(&config_bytes),
            size: config_bytes.len() as i64,
            ..Default::default()
        },
        layers: vec![OciDescriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.into(),
            digest: layer_digest.clone(),
            size: wasm.len() as i64,
            annotations: Some(BTreeMap::from([(
                annotations::TITLE.to_string(),
                format!("{}.wasm", req.name),
            )])),
            ..Default::default()
        }],
        subject: None,
        artifact_type: None,
        annotations: Some(manifest_annotations),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    Ok(Artifact {
        manifest_digest: digest(&manifest_bytes),
        manifest,
        manifest_bytes,
        config,
        config_bytes,
        layer_path: path,
        layer_digest,
        layer_size: wasm.len() as u64,
        kind,
    })
}

/// A component's world as the Wasm OCI spec describes it: the interfaces and functions
/// it imports and exports (decoded from the binary's own type information), and the
/// WASI command world when it exports `wasi:cli/run`.
pub fn component_info(bytes: &[u8]) -> anyhow::Result<ComponentInfo> {
    let (resolve, world) = match wit_component::decode(bytes)? {
        wit_component::DecodedWasm::Component(resolve, world) => (resolve, world),
        wit_component::DecodedWasm::WitPackage(..) => {
            anyhow::bail!("it is a WIT package, not a component")
        }
    };
    let world = resolve
        .worlds
        .get(world)
        .ok_or_else(|| anyhow::anyhow!("its decoded world is not in its own WIT"))?;
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        items
            .iter()
            .filter(|(_, item)| !matches!(item, wit_parser::WorldItem::Type { .. }))
            .map(|(key, _)| resolve.name_world_key(key))
            .collect::<Vec<_>>()
    };
    let exports = names(&world.exports);
    let imports = names(&world.imports);
    let target = exports.iter().find_map(|e| {
        e.strip_prefix("wasi:cli/run@")
            .map(|version| format!("wasi:cli/command@{version}"))
    });
    Ok(ComponentInfo {
        exports,
        imports,
        target,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("Failed to read the built file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The built file `{}` is not a Wasm module or component", path.display())]
    NotWasm { path: PathBuf },
    #[error("Failed to read the component's imports and exports from `{}`", path.display())]
    Component {
        path: PathBuf,
        #[source]
        source: anyhow::Error,
    },
}

impl Diagnose for PackageError {
    fn blame(&self) -> Blame {
        Blame::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(bytes: &[u8]) -> (tempfile::TempDir, Built) {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("a.wasm");
        std::fs::write(&wasm, bytes).unwrap();
        let built = Built {
            wasm,
            kind: WasmKind::Module,
            toolchain: "test".into(),
            facts: vec![],
            version: None,
            sbom: crate::stages::build::SbomInputs::Python {
                deps_dir: dir.path().into(),
                project_dist: None,
            },
        };
        (dir, built)
    }

    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[tokio::test]
    async fn module_artifact_follows_the_spec() {
        let (_dir, built) = built(EMPTY_MODULE);
        let artifact = run(
            PackageRequest {
                built,
                name: "app".into(),
                version: Some("1.0.0".into()),
                created: Some("2024-01-01T00:00:00Z".into()),
                revision: None,
                source: None,
                inputs_digest: None,
            },
            &crate::reporter::Silent,
        )
        .await
        .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&artifact.config_bytes).unwrap();
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "wasip1");
        assert_eq!(config["layerDigests"][0], digest(EMPTY_MODULE).as_str());
        assert!(config.get("component").is_none());
        let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest_bytes).unwrap();
        assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
        assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.created"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(artifact.manifest_digest, digest(&artifact.manifest_bytes));
    }

    #[tokio::test]
    async fn created_is_always_there_and_reproducible() {
        let request = |built| PackageRequest {
            built,
            name: "app".into(),
            version: None,
            created: None,
            revision: None,
            source: None,
            inputs_digest: None,
        };
        let (_dir, built) = built(EMPTY_MODULE);
        let first = run(request(built.clone()), &crate::reporter::Silent)
            .await
            .unwrap();
        let again = run(request(built), &crate::reporter::Silent).await.unwrap();
        let config: serde_json::Value = serde_json::from_slice(&first.config_bytes).unwrap();
        assert_eq!(config["created"], UNKNOWN_CREATED);
        let manifest: serde_json::Value = serde_json::from_slice(&first.manifest_bytes).unwrap();
        assert!(manifest["annotations"].get(annotations::CREATED).is_none());
        assert_eq!(first.manifest_digest, again.manifest_digest);
    }

    #[tokio::test]
    async fn rejects_non_wasm() {
        let (_dir, built) = built(b"#!/bin/sh\n");
        let err = run(
            PackageRequest {
                built,
                name: "app".into(),
                version: None,
                created: None,
                revision: None,
                source: None,
                inputs_digest: None,
            },
            &crate::reporter::Silent,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PackageError::NotWasm { .. }));
    }
}
