//! CycloneDX 1.5 SBOMs of the artifacts kiln builds, as JSON.
//!
//! 1. Lists what went into the artifact: for Rust, [`rust()`] asks `cargo metadata` for
//!    the `wasm32-wasip1` build graph with the project's features and reads checksums
//!    from `Cargo.lock`; for Python, [`python()`] reads every `*.dist-info` pip installed
//!    into the dependency directory, plus the CPython and componentize-py runtime the
//!    component carries.
//! 2. Describes the artifact itself as `metadata.component` (type `application`: it is a
//!    runnable Wasm program), with its manifest digest as a SHA-256 hash and a
//!    `pkg:oci` package URL, and the build toolchain and kiln as tools.
//! 3. Makes the document reproducible: the serial number is a UUID made from the
//!    artifact digest, the timestamp is `SOURCE_DATE_EPOCH` (omitted when unset), and
//!    components and dependencies are sorted.
//! 4. Checks the document with cyclonedx-bom's own validation (a check of the data, not
//!    of the JSON schema) and writes it as CycloneDX 1.5 JSON.

use std::path::PathBuf;
use std::str::FromStr;

use cyclonedx_bom::external_models::uri::UriError;
use cyclonedx_bom::models::component::Classification;
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::license::{License, LicenseChoice, Licenses};
use cyclonedx_bom::models::tool::Tools;
use cyclonedx_bom::prelude::*;

use crate::diagnose::{Blame, Diagnose};
use crate::env::Env;
use crate::process::ProcessError;

mod python;
mod rust;

pub use python::{CPYTHON_VERSION, python};
pub use rust::rust;

/// The in-toto predicate type of a CycloneDX SBOM attestation.
pub const CYCLONEDX_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

/// What the SBOM says about the artifact it describes.
#[derive(Debug, Clone, Copy)]
pub struct SbomInput<'a> {
    /// The artifact's name: a repository (`ghcr.io/acme/app`) or a bare name (`app`).
    pub artifact_name: &'a str,
    /// The version of what was built, when the project declares one.
    pub artifact_version: Option<&'a str>,
    /// The digest of the artifact's OCI manifest, `sha256:<64 hex digits>`.
    pub artifact_digest: &'a str,
    /// The toolchain that built it, as it names itself (`rustc 1.95.0 (…)`).
    pub toolchain: &'a str,
    /// kiln's environment (`SOURCE_DATE_EPOCH`, and `cargo metadata`'s).
    pub env: &'a Env,
}

/// Why an SBOM could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("Failed to read the dependency graph of `{}` with `cargo metadata`", manifest.display())]
    CargoMetadata {
        manifest: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error("`cargo metadata` wrote output kiln cannot read for `{}`", manifest.display())]
    CargoMetadataOutput {
        manifest: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("Package `{package}` is not in the dependency graph of `{}`", manifest.display())]
    PackageNotInGraph { package: String, manifest: PathBuf },
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a valid Cargo lockfile", path.display())]
    Lockfile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("`{}` has no `{field}` field", path.display())]
    DistMetadata { path: PathBuf, field: &'static str },
    #[error("`{}` is not valid JSON", path.display())]
    DirectUrl {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("The project's distribution `{name}` is not installed in `{}`", deps_dir.display())]
    ProjectDistMissing { name: String, deps_dir: PathBuf },
    #[error("`SOURCE_DATE_EPOCH` is `{value}`, which is not a number of seconds since 1970")]
    SourceDateEpoch { value: String },
    #[error("Artifact digest `{digest}` is not a `sha256:` digest")]
    Digest { digest: String },
    #[error("Failed to make a package URL for `{name}`")]
    Purl {
        name: String,
        #[source]
        source: UriError,
    },
    #[error("The SBOM is not valid CycloneDX 1.5: {details}")]
    Invalid { details: String },
    #[error("Failed to write the SBOM as CycloneDX 1.5 JSON")]
    Write {
        #[source]
        source: cyclonedx_bom::errors::JsonWriteError,
    },
}

impl Diagnose for SbomError {
    fn hint(&self) -> Option<String> {
        use SbomError::*;
        match self {
            CargoMetadata { manifest, .. } => Some(format!(
                "run `cargo metadata --format-version 1 --filter-platform {} --manifest-path {}` \
                 to see cargo's error",
                crate::toolchain::RUST_TARGET,
                manifest.display()
            )),
            SourceDateEpoch { .. } => Some(
                "set `SOURCE_DATE_EPOCH` to a whole number of seconds since 1970-01-01 UTC \
                 (`export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`), or unset it"
                    .to_string(),
            ),
            Lockfile { path, .. } => Some(format!(
                "regenerate it with `cargo generate-lockfile` in `{}`",
                path.parent().unwrap_or(path).display()
            )),
            _ => None,
        }
    }

    fn blame(&self) -> Blame {
        use SbomError::*;
        match self {
            CargoMetadata { .. } | Lockfile { .. } | SourceDateEpoch { .. } => Blame::User,
            // The rest describe what kiln itself built or installed a moment before.
            _ => Blame::Internal,
        }
    }
}

/// What a language's generator found, ready to be put under the artifact.
#[derive(Debug, Default)]
struct Inventory {
    components: Vec<Component>,
    /// `bom-ref` → the `bom-ref`s it depends on.
    dependencies: Vec<(String, Vec<String>)>,
    /// What the artifact is made of directly.
    roots: Vec<String>,
    /// Tools besides kiln and the toolchain named in [`SbomInput`].
    tools: Vec<Component>,
}

/// Puts `inventory` under the artifact described by `input` and writes the JSON.
///
/// `timestamp` is [`source_date_epoch`] in production; tests pass their own.
fn finish(
    input: &SbomInput<'_>,
    inventory: Inventory,
    timestamp: Option<DateTime>,
) -> Result<String, SbomError> {
    let hex = sha256_hex(input.artifact_digest)?;
    let artifact = artifact_component(input, hex)?;
    let artifact_ref = artifact
        .bom_ref
        .clone()
        .expect("the artifact has a bom-ref");

    let mut components = inventory.components;
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));

    let mut dependencies = inventory.dependencies;
    for (_, deps) in &mut dependencies {
        deps.sort();
        deps.dedup();
    }
    dependencies.sort();
    let mut roots = inventory.roots;
    roots.sort();
    roots.dedup();
    dependencies.insert(0, (artifact_ref, roots));

    let mut tools = inventory.tools;
    tools.push(toolchain_component(input.toolchain));
    tools.push(kiln_component()?);

    let bom = Bom {
        serial_number: Some(serial_number(hex)?),
        metadata: Some(Metadata {
            timestamp,
            tools: Some(Tools::Object {
                services: None,
                components: Some(Components(tools)),
            }),
            component: Some(artifact),
            ..Metadata::default()
        }),
        components: Some(Components(components)),
        dependencies: Some(Dependencies(
            dependencies
                .into_iter()
                .map(|(dependency_ref, dependencies)| Dependency {
                    dependency_ref,
                    dependencies,
                })
                .collect(),
        )),
        spec_version: SpecVersion::V1_5,
        ..Bom::default()
    };

    let result = bom.validate_version(SpecVersion::V1_5);
    if result.has_errors() {
        return Err(SbomError::Invalid {
            details: format!("{result:?}"),
        });
    }
    let mut out = Vec::new();
    bom.output_as_json_v1_5(&mut out)
        .map_err(|source| SbomError::Write { source })?;
    out.push(b'\n');
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// The artifact as the BOM's subject: its digest as hash, `pkg:oci/NAME@sha256%3A…` as
/// purl and bom-ref (with `repository_url` when the name is a repository).
fn artifact_component(input: &SbomInput<'_>, hex: &str) -> Result<Component, SbomError> {
    let (repository, tag) = split_tag(input.artifact_name);
    let name = repository.rsplit('/').next().unwrap_or(repository);
    let mut qualifiers = Vec::new();
    if repository.contains('/') {
        qualifiers.push(("repository_url", repository.to_ascii_lowercase()));
    }
    if let Some(tag) = tag {
        qualifiers.push(("tag", tag.to_string()));
    }
    // The purl spec's own form, `sha256%3A…` (the purl crate leaves `:` in versions as is).
    let purl = Purl::from_str(&format!(
        "pkg:oci/{}@sha256%3A{}",
        percent_encode(&name.to_ascii_lowercase()).replace('/', "%2F"),
        hex.to_ascii_lowercase()
    ))
    .expect("Purl::from_str is infallible");
    let purl = with_qualifiers(purl, &qualifiers);
    let mut component = Component::new(
        Classification::Application,
        name,
        input.artifact_version.unwrap_or(""),
        Some(purl.to_string()),
    );
    if input.artifact_version.is_none() {
        component.version = None;
    }
    component.hashes = Some(Hashes(vec![sha256(hex)]));
    component.purl = Some(purl);
    Ok(component)
}

/// `name[:tag]` → (`name`, `tag`); a `:` before the last `/` is a registry port.
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (reference, None),
    }
}

/// The toolchain named in [`SbomInput::toolchain`] as a tool: `rustc 1.95.0 (…)` is
/// name `rustc`, version `1.95.0`, and the whole string as its description.
fn toolchain_component(toolchain: &str) -> Component {
    let mut words = toolchain.split_whitespace();
    let name = words.next().unwrap_or("toolchain");
    let version = words.next().unwrap_or("");
    let mut component = Component::new(Classification::Application, name, version, None);
    if version.is_empty() {
        component.version = None;
    }
    if toolchain.trim() != format!("{name} {version}").trim() {
        component.description = Some(NormalizedString::new(toolchain.trim()));
    }
    component
}

fn kiln_component() -> Result<Component, SbomError> {
    let version = env!("CARGO_PKG_VERSION");
    let mut component = Component::new(Classification::Application, "kiln", version, None);
    component.purl = Some(purl("cargo", "kiln", version)?);
    Ok(component)
}

/// The 64 hex digits of a `sha256:` digest.
fn sha256_hex(digest: &str) -> Result<&str, SbomError> {
    crate::oci::sha256_hex(digest).ok_or_else(|| SbomError::Digest {
        digest: digest.to_string(),
    })
}

fn sha256(hex: &str) -> Hash {
    Hash {
        alg: HashAlgorithm::SHA_256,
        content: HashValue(hex.to_ascii_lowercase()),
    }
}

/// `urn:uuid:` made from the first 16 bytes of the artifact digest, marked as an
/// RFC 9562 version 8 (custom) UUID: the same artifact always gets the same serial
/// number, and a different artifact a different one.
fn serial_number(hex: &str) -> Result<UrnUuid, SbomError> {
    let mut bytes = [0u8; 16];
    hex.get(..32)
        .and_then(|head| hex::decode_to_slice(head, &mut bytes).ok())
        .ok_or_else(|| SbomError::Digest {
            digest: format!("sha256:{hex}"),
        })?;
    // Version (the high nibble of byte 6): 8. Variant (the top two bits of byte 8): `10`.
    bytes[6] = 0x80 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    let n = u128::from_be_bytes(bytes);
    Ok(UrnUuid(format!(
        "urn:uuid:{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        n >> 96,
        (n >> 80) & 0xffff,
        (n >> 64) & 0xffff,
        (n >> 48) & 0xffff,
        n & 0xffff_ffff_ffff
    )))
}

/// `SOURCE_DATE_EPOCH` as an RFC 3339 UTC time, or `None` when it is unset or empty.
pub(crate) fn source_date_epoch(env: &Env) -> Result<Option<DateTime>, SbomError> {
    match env.get(crate::env::SOURCE_DATE_EPOCH) {
        Some(value) if !value.trim().is_empty() => epoch_to_datetime(value).map(Some),
        _ => Ok(None),
    }
}

fn epoch_to_datetime(value: &str) -> Result<DateTime, SbomError> {
    let invalid = || SbomError::SourceDateEpoch {
        value: value.to_string(),
    };
    let seconds: i64 = value.trim().parse().map_err(|_| invalid())?;
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(invalid());
    }
    let text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    DateTime::try_from(text).map_err(|_| invalid())
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `pkg:TYPE/NAME@VERSION`, encoded by the purl rules.
fn purl(ty: &str, name: &str, version: &str) -> Result<Purl, SbomError> {
    Purl::new(ty, name, version).map_err(|source| SbomError::Purl {
        name: name.to_string(),
        source,
    })
}

/// `purl` with qualifiers appended, keys sorted as the purl spec asks.
fn with_qualifiers(purl: Purl, qualifiers: &[(&str, String)]) -> Purl {
    if qualifiers.is_empty() {
        return purl;
    }
    let mut sorted: Vec<&(&str, String)> = qualifiers.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let query: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    Purl::from_str(&format!("{purl}?{}", query.join("&"))).expect("Purl::from_str is infallible")
}

/// Percent-encodes a purl qualifier value: everything but unreserved characters and `/`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A license string as CycloneDX licenses: an SPDX expression when it is one (cargo's
/// legacy `MIT/Apache-2.0` is read as `MIT OR Apache-2.0`), else a named license.
fn license_from_text(text: &str) -> Option<Licenses> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let choice = if let Ok(expression) = SpdxExpression::try_from(text.to_string()) {
        LicenseChoice::Expression(expression)
    } else if let Ok(expression) = SpdxExpression::parse_lax(text.to_string()) {
        LicenseChoice::Expression(expression)
    } else {
        LicenseChoice::License(License::named_license(text))
    };
    Some(Licenses(vec![choice]))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const DIGEST: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    pub(super) fn input() -> SbomInput<'static> {
        SbomInput {
            artifact_name: "ghcr.io/acme/App",
            artifact_version: Some("1.2.0"),
            artifact_digest: DIGEST,
            toolchain: "rustc 1.95.0 (abcdef 2026-11-01)",
            env: &NO_ENV,
        }
    }

    static NO_ENV: Env = Env::new();

    #[test]
    fn serial_number_is_a_uuid_made_from_the_digest() {
        let serial = serial_number(sha256_hex(DIGEST).unwrap()).unwrap();
        assert_eq!(serial.0, "urn:uuid:01234567-89ab-8def-8123-456789abcdef");
        let other = serial_number(&"f".repeat(64)).unwrap();
        assert_eq!(other.0, "urn:uuid:ffffffff-ffff-8fff-bfff-ffffffffffff");
    }

    #[test]
    fn rejects_digests_that_are_not_sha256() {
        assert!(sha256_hex("sha512:abcd").is_err());
        assert!(sha256_hex("sha256:abcd").is_err());
        assert!(sha256_hex(&format!("sha256:{}", "g".repeat(64))).is_err());
    }

    #[test]
    fn formats_source_date_epoch_as_utc() {
        assert_eq!(
            epoch_to_datetime("0").unwrap().to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            epoch_to_datetime("1700000000").unwrap().to_string(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            epoch_to_datetime("951782400").unwrap().to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert!(matches!(
            epoch_to_datetime("yesterday"),
            Err(SbomError::SourceDateEpoch { .. })
        ));
    }

    #[test]
    fn artifact_purl_names_the_repository_and_digest() {
        let hex = sha256_hex(DIGEST).unwrap();
        let component = artifact_component(&input(), hex).unwrap();
        assert_eq!(
            component.purl.unwrap().to_string(),
            format!("pkg:oci/app@sha256%3A{hex}?repository_url=ghcr.io/acme/app")
        );
        let bare = SbomInput {
            artifact_name: "localhost:5000/app:v1",
            artifact_version: None,
            ..input()
        };
        let component = artifact_component(&bare, hex).unwrap();
        assert_eq!(
            component.purl.unwrap().to_string(),
            format!("pkg:oci/app@sha256%3A{hex}?repository_url=localhost%3A5000/app&tag=v1")
        );
        assert_eq!(component.version, None);
    }

    #[test]
    fn licenses_are_expressions_when_spdx() {
        let text = |l: Option<Licenses>| match &l.unwrap().0[0] {
            LicenseChoice::Expression(e) => format!("expression {e}"),
            LicenseChoice::License(_) => "named".to_string(),
        };
        assert_eq!(
            text(license_from_text("MIT OR Apache-2.0")),
            "expression MIT OR Apache-2.0"
        );
        assert_eq!(
            text(license_from_text("MIT/Apache-2.0")),
            "expression MIT OR Apache-2.0"
        );
        assert_eq!(text(license_from_text("Some custom terms")), "named");
        assert!(license_from_text("  ").is_none());
    }

    #[test]
    fn finish_writes_cyclonedx_1_5_with_the_artifact_as_subject() {
        let json = finish(&input(), Inventory::default(), None).unwrap();
        let bom: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["metadata"]["component"]["type"], "application");
        assert_eq!(bom["metadata"]["component"]["version"], "1.2.0");
        assert_eq!(
            bom["metadata"]["component"]["hashes"][0]["content"],
            DIGEST.strip_prefix("sha256:").unwrap()
        );
        let tools = bom["metadata"]["tools"]["components"].as_array().unwrap();
        assert_eq!(tools[0]["name"], "rustc");
        assert_eq!(tools[0]["version"], "1.95.0");
        assert_eq!(tools[1]["name"], "kiln");
        assert!(bom["metadata"].get("timestamp").is_none());
        assert_eq!(json, finish(&input(), Inventory::default(), None).unwrap());
        let stamped = finish(
            &input(),
            Inventory::default(),
            Some(epoch_to_datetime("0").unwrap()),
        )
        .unwrap();
        let bom: serde_json::Value = serde_json::from_str(&stamped).unwrap();
        assert_eq!(bom["metadata"]["timestamp"], "1970-01-01T00:00:00Z");
    }
}
