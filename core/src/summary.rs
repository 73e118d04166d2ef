//! The run summary: kiln's one machine interface for wrappers and scripts.
//!
//! `kiln build --output json` prints it on stdout. Its JSON Schema is committed at
//! `schema/summary.schema.json`; a test fails when this type drifts from it. Bump
//! [`SCHEMA_VERSION`] on any change that is not a pure addition.

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::reporter::Stage;

/// The summary's format version.
pub const SCHEMA_VERSION: u32 = 1;

/// What a `kiln build` did and produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Format version of this document.
    pub schema_version: u32,
    /// The kiln that wrote it.
    pub kiln_version: String,
    pub project: ProjectSummary,
    pub build: BuildSummary,
    pub artifact: ArtifactSummary,
    /// The digest of everything the build depends on (source tree, lockfiles, toolchain,
    /// kiln, settings), recorded on the manifest as `dev.kiln.inputs.digest`.
    pub inputs_digest: String,
    /// Nothing was built: an artifact with the same inputs digest was already stored or
    /// pushed, and was reused (and re-tagged if needed).
    pub skipped: bool,
    /// The push to a registry, when one was asked for.
    pub push: Option<PushSummary>,
    /// The cosign signature of the artifact.
    pub signature: SignatureSummary,
    /// The signed CycloneDX SBOM attestation of the artifact.
    pub attestation: AttestationSummary,
    /// The persisted pip or cargo cache: restored before the build, saved after it.
    /// Absent when caching is off (`--no-cache`) or nothing was built.
    #[serde(default)]
    pub cache: Option<CacheSummary>,
    /// Wall time of each stage, in the order they ran.
    pub stages: Vec<StageTiming>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSummary {
    /// Where caches are kept: a directory, or `REGISTRY/REPOSITORY`.
    pub store: String,
    /// One per cache the project has (`cargo` for Rust, `pip` for Python).
    pub kinds: Vec<CacheKindSummary>,
    pub restore_seconds: f64,
    pub save_seconds: f64,
    /// Cache problems the build went on without (store unreachable, corrupt cache).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheKindSummary {
    /// `pip` or `cargo`.
    pub kind: String,
    /// The key this build's cache is saved under.
    pub key: String,
    pub hit: CacheHit,
    /// The key restored: the same as `key` on an exact hit, an older one on a partial hit.
    pub restored_key: Option<String>,
    /// Files and bytes written by the restore (files already in place not counted).
    pub files_restored: u64,
    pub bytes_restored: u64,
    /// A new cache was written under `key`.
    pub saved: bool,
    /// Why it was not saved, when it was not.
    pub save_skipped: Option<String>,
    /// Uncompressed bytes of the saved cache.
    pub bytes_saved: u64,
    /// Compressed bytes of the chunks the store lacked, written or uploaded.
    pub bytes_uploaded: u64,
    pub chunks_uploaded: u64,
    /// Chunks the store already had.
    pub chunks_reused: u64,
}

/// How a restore matched the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheHit {
    Exact,
    Partial,
    Miss,
}

impl fmt::Display for CacheHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheHit::Exact => "exact hit",
            CacheHit::Partial => "partial hit",
            CacheHit::Miss => "miss",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSummary {
    /// `REGISTRY/REPOSITORY:TAG@sha256:…`: exactly what was pushed.
    pub reference: String,
    /// The manifest digest in the registry.
    pub digest: String,
    /// Bytes uploaded.
    pub bytes_sent: u64,
    /// Bytes of blobs the registry already had.
    pub bytes_skipped: u64,
    /// The registry already held this artifact under that tag: nothing was sent.
    pub up_to_date: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureSummary {
    /// The tag cosign looks under: `sha256-<hex>.sig`, in the layout and the registry.
    pub tag: String,
    /// The digest of the `.sig` manifest.
    pub digest: String,
    /// Which key signed (a path, `$KILN_SIGNING_KEY`, or kiln's local development key), or
    /// `keyless: <identity> from <issuer>` for a keyless signature.
    pub key: String,
    /// The tag already held a valid signature by this key: nothing new was signed.
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationSummary {
    /// The tag cosign looks under: `sha256-<hex>.att`, in the layout and the registry.
    pub tag: String,
    /// The digest of the `.att` manifest.
    pub digest: String,
    /// The in-toto predicate type: `https://cyclonedx.org/bom`.
    pub predicate_type: String,
    /// The CycloneDX SBOM, as attested, on disk.
    pub sbom_path: PathBuf,
    /// `sha256:<hex>` of the SBOM document.
    pub sbom_digest: String,
    /// How many components the SBOM lists.
    pub components: usize,
    /// The tag already held a valid attestation by this key: nothing new was signed.
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSummary {
    pub name: String,
    pub version: Option<String>,
    /// `rust` or `python`.
    pub language: String,
    /// The project directory.
    pub path: PathBuf,
    /// The binary (Rust) or entry point (Python) that was built.
    pub entry: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSummary {
    /// The toolchain that produced the Wasm binary.
    pub toolchain: String,
    /// `module` (WASI preview 1) or `component` (WASI p2).
    pub wasm_kind: String,
    /// Builder-specific facts (target, carried Python modules, ...).
    pub facts: Vec<Fact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSummary {
    /// The manifest digest: what identifies the artifact (`sha256:<hex>`).
    pub digest: String,
    /// The Wasm layer's digest.
    pub layer_digest: String,
    /// The Wasm layer's size in bytes.
    pub size: u64,
    /// `wasip1` or `wasip2`, as in the artifact's config.
    pub os: String,
    /// The OCI image layout it was stored in.
    pub layout: PathBuf,
    /// `NAME:TAG` inside the layout.
    pub reference: String,
    /// The same, as other OCI tools address it: `oci:LAYOUT:NAME:TAG`.
    pub oci_reference: String,
    /// RFC 3339 creation time recorded in the artifact, if any.
    pub created: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageTiming {
    pub stage: Stage,
    pub seconds: f64,
}

/// The JSON Schema of [`Summary`], as committed in `schema/summary.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Summary);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serialises");
    text.push('\n');
    text
}

/// Human-readable bytes: `795 KB`, `18.2 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.project;
        let a = &self.artifact;
        writeln!(
            f,
            "project    {} {} ({})",
            p.name,
            p.version.as_deref().unwrap_or(""),
            p.language
        )?;
        writeln!(f, "entry      {}", p.entry)?;
        writeln!(f, "toolchain  {}", self.build.toolchain)?;
        for fact in &self.build.facts {
            writeln!(f, "{:<10} {}", fact.name, fact.value)?;
        }
        writeln!(
            f,
            "artifact   {} {} ({})",
            self.build.wasm_kind,
            human_size(a.size),
            a.os
        )?;
        writeln!(f, "digest     {}", a.digest)?;
        writeln!(f, "stored     {}", a.oci_reference)?;
        if self.skipped {
            writeln!(f, "skipped    inputs unchanged ({})", self.inputs_digest)?;
        }
        if let Some(push) = &self.push {
            writeln!(
                f,
                "pushed     {} ({})",
                push.reference,
                if push.up_to_date {
                    "already there".to_string()
                } else {
                    format!(
                        "{} sent, {} already there",
                        human_size(push.bytes_sent),
                        human_size(push.bytes_skipped)
                    )
                }
            )?;
        }
        let sig = &self.signature;
        writeln!(f, "signed     {} ({})", sig.tag, sig.key)?;
        let att = &self.attestation;
        writeln!(
            f,
            "attested   {} (CycloneDX SBOM, {} components, {})",
            att.tag,
            att.components,
            att.sbom_path.display()
        )?;
        if let Some(cache) = &self.cache {
            for kind in &cache.kinds {
                writeln!(
                    f,
                    "cache      {} {}, {} restored; {}",
                    kind.kind,
                    kind.hit,
                    human_size(kind.bytes_restored),
                    if kind.saved {
                        format!(
                            "saved, {} uploaded in {} chunks",
                            human_size(kind.bytes_uploaded),
                            kind.chunks_uploaded
                        )
                    } else {
                        format!(
                            "not saved ({})",
                            kind.save_skipped.as_deref().unwrap_or("skipped")
                        )
                    }
                )?;
            }
        }
        write!(
            f,
            "time       {}",
            self.stages
                .iter()
                .map(|s| format!("{} {:.1}s", s.stage, s.seconds))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_matches_the_type() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/summary.schema.json");
        let generated = json_schema();
        if std::env::var_os("KILN_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "schema/summary.schema.json is out of date with `Summary`; \
             regenerate it with `KILN_UPDATE_SCHEMA=1 cargo test -p kiln --lib summary`"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(795_000), "795.0 KB");
        assert_eq!(human_size(18_200_000), "18.2 MB");
    }
}
