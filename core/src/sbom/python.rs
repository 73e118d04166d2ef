//! The SBOM of a Python component: the distributions pip installed, and the runtime
//! componentize-py put around them.
//!
//! 1. Reads every `*.dist-info/METADATA` in the dependency directory (`pip install
//!    --target`): name, version, licence, `Requires-Dist`.
//! 2. Licence, first found: `License-Expression` (an SPDX expression); a one-line
//!    `License` field (an SPDX expression when it parses as one, else a named licence;
//!    a field holding a whole licence text is skipped); the `License ::` classifiers
//!    (SPDX ids for the unambiguous ones, else named by the classifier).
//! 3. Hashes: a distribution installed from a file or URL has its archive's sha256 in
//!    `direct_url.json` (the project's own wheel does). Distributions installed from an
//!    index have no hash: pip keeps no hash of the wheel it installed, and `RECORD`
//!    hashes each installed file, not the distribution, so none is claimed.
//! 4. Package URLs: `pkg:pypi/NAME@VERSION` with the PEP 503 normalised name; a
//!    distribution installed from a VCS adds `vcs_url`, one from a remote archive
//!    `download_url` (a local `file:` URL is left out: it names a machine path).
//! 5. Dependencies: `Requires-Dist` entries whose distribution is installed. Entries
//!    guarded by an `extra` are skipped (which extras were asked for is not recorded);
//!    other markers are not evaluated: an entry counts when its distribution is there.
//! 6. The runtime inside every component: CPython (`pkg:generic/cpython@3.14`, type
//!    `platform`) and componentize-py's runtime (`pkg:pypi/componentize-py@…`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cyclonedx_bom::models::component::{Classification, Scope};
use cyclonedx_bom::models::hash::Hashes;
use cyclonedx_bom::models::license::{License, LicenseChoice, Licenses};
use cyclonedx_bom::prelude::*;
use serde::Deserialize;

use super::{
    Inventory, SbomError, SbomInput, finish, license_from_text, purl, sha256, source_date_epoch,
    with_qualifiers,
};
use crate::toolchain::COMPONENTIZE_PY_VERSION;

/// The CPython version componentize-py embeds in its components.
pub use crate::toolchain::TARGET_PYTHON as CPYTHON_VERSION;

/// The CycloneDX 1.5 JSON SBOM of a Python component whose dependencies pip installed
/// into `deps_dir`.
///
/// `project_dist` is the project's own distribution (a `pyproject.toml` project installs
/// itself there): it becomes what the artifact depends on. Without one (a requirements
/// project), the artifact depends on every installed distribution that no other one
/// requires.
pub fn python(
    deps_dir: &Path,
    project_dist: Option<&str>,
    input: &SbomInput<'_>,
) -> Result<String, SbomError> {
    let dists = read_dists(deps_dir)?;
    let inventory = inventory(dists, deps_dir, project_dist)?;
    finish(input, inventory, source_date_epoch(input.env)?)
}

/// One installed distribution, as its `.dist-info` describes it.
#[derive(Debug)]
struct Dist {
    name: String,
    version: String,
    summary: Option<String>,
    licenses: Option<Licenses>,
    requires: Vec<String>,
    direct_url: Option<DirectUrl>,
}

/// `direct_url.json` (PEP 610).
#[derive(Debug, Deserialize)]
struct DirectUrl {
    url: String,
    #[serde(default)]
    archive_info: Option<ArchiveInfo>,
    #[serde(default)]
    vcs_info: Option<VcsInfo>,
}

#[derive(Debug, Deserialize)]
struct ArchiveInfo {
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    /// The older single `ALG=HEX` form.
    #[serde(default)]
    hash: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VcsInfo {
    vcs: String,
    commit_id: String,
}

/// Every `*.dist-info` in `deps_dir`, sorted by directory name.
fn read_dists(deps_dir: &Path) -> Result<Vec<Dist>, SbomError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SbomError::Read { path, source }
    };
    let mut dirs: Vec<_> = std::fs::read_dir(deps_dir)
        .map_err(read_error(deps_dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dist-info") && p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let path = dir.join("METADATA");
            let text = std::fs::read(&path).map_err(read_error(&path))?;
            let mut dist = parse_metadata(&String::from_utf8_lossy(&text), &path)?;
            let direct = dir.join("direct_url.json");
            if direct.is_file() {
                let text = std::fs::read(&direct).map_err(read_error(&direct))?;
                dist.direct_url =
                    Some(
                        serde_json::from_slice(&text).map_err(|source| SbomError::DirectUrl {
                            path: direct.clone(),
                            source,
                        })?,
                    );
            }
            Ok(dist)
        })
        .collect()
}

/// The headers of a core metadata file (RFC 822 style; the body is the description).
fn parse_metadata(text: &str, path: &Path) -> Result<Dist, SbomError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let first = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let all = |key: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let missing = |field| SbomError::DistMetadata {
        path: path.to_path_buf(),
        field,
    };
    let name = first("name").ok_or_else(|| missing("Name"))?.to_string();
    let version = first("version")
        .ok_or_else(|| missing("Version"))?
        .to_string();
    let licenses = first("license-expression")
        .and_then(license_from_text)
        .or_else(|| {
            first("license")
                .filter(|l| !l.contains('\n') && l.len() <= 100 && *l != "UNKNOWN")
                .and_then(license_from_text)
        })
        .or_else(|| licenses_from_classifiers(&all("classifier")));
    Ok(Dist {
        name,
        version,
        summary: first("summary").map(str::to_string),
        licenses,
        requires: all("requires-dist")
            .into_iter()
            .filter_map(required_name)
            .collect(),
        direct_url: None,
    })
}

/// The normalised distribution name a `Requires-Dist` entry needs, or `None` when it
/// applies only with an extra.
fn required_name(requirement: &str) -> Option<String> {
    let (spec, marker) = requirement.split_once(';').unwrap_or((requirement, ""));
    if marker_mentions_extra(marker) {
        return None;
    }
    // Up to the first character that cannot be in a name (`split` yields at least one).
    let name = spec
        .trim()
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .next()
        .unwrap_or_default();
    (!name.is_empty()).then(|| normalize(name))
}

fn marker_mentions_extra(marker: &str) -> bool {
    marker
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == "extra")
}

/// PEP 503: lower case, runs of `-`, `_` and `.` become one `-`.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Trove licence classifiers whose SPDX identifier is unambiguous.
const CLASSIFIER_SPDX: &[(&str, &str)] = &[
    ("MIT License", "MIT"),
    ("MIT No Attribution License (MIT-0)", "MIT-0"),
    ("ISC License (ISCL)", "ISC"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("The Unlicense (Unlicense)", "Unlicense"),
    ("Boost Software License 1.0 (BSL-1.0)", "BSL-1.0"),
    ("Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
    ("Universal Permissive License (UPL)", "UPL-1.0"),
    ("Zero-Clause BSD (0BSD)", "0BSD"),
    (
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
    (
        "GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    (
        "GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    (
        "GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
];

fn licenses_from_classifiers(classifiers: &[&str]) -> Option<Licenses> {
    let licenses: Vec<LicenseChoice> = classifiers
        .iter()
        .filter_map(|c| c.strip_prefix("License ::"))
        .map(|c| c.trim())
        .map(|c| c.strip_prefix("OSI Approved ::").map_or(c, str::trim))
        // `License :: OSI Approved` alone says nothing about which.
        .filter(|c| !c.is_empty() && *c != "OSI Approved")
        .map(|c| {
            let license = match CLASSIFIER_SPDX.iter().find(|(name, _)| *name == c) {
                Some((_, id)) => License::license_id(id),
                None => License::named_license(c),
            };
            LicenseChoice::License(license)
        })
        .collect();
    (!licenses.is_empty()).then_some(Licenses(licenses))
}

fn inventory(
    dists: Vec<Dist>,
    deps_dir: &Path,
    project_dist: Option<&str>,
) -> Result<Inventory, SbomError> {
    // Normalised name → the distribution's bom-ref and what it requires.
    let mut installed: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut components = Vec::new();
    for dist in dists {
        let key = normalize(&dist.name);
        let component = component(&dist, &key)?;
        let bom_ref = component.bom_ref.clone().expect("set by component()");
        components.push(component);
        installed.insert(key, (bom_ref, dist.requires));
    }
    let dependencies: Vec<(String, Vec<String>)> = installed
        .values()
        .map(|(bom_ref, requires)| {
            let deps = requires
                .iter()
                .filter_map(|name| installed.get(name).map(|(r, _)| r.clone()))
                .filter(|r| r != bom_ref)
                .collect();
            (bom_ref.clone(), deps)
        })
        .collect();

    let mut roots: Vec<String> = match project_dist {
        Some(name) => {
            let (bom_ref, _) =
                installed
                    .get(&normalize(name))
                    .ok_or_else(|| SbomError::ProjectDistMissing {
                        name: name.to_string(),
                        deps_dir: deps_dir.to_path_buf(),
                    })?;
            if let Some(root) = components
                .iter_mut()
                .find(|c| c.bom_ref.as_ref() == Some(bom_ref))
            {
                root.component_type = Classification::Application;
            }
            vec![bom_ref.clone()]
        }
        None => {
            let required: BTreeSet<&String> =
                dependencies.iter().flat_map(|(_, deps)| deps).collect();
            installed
                .values()
                .map(|(r, _)| r)
                .filter(|r| !required.contains(r))
                .cloned()
                .collect()
        }
    };

    let (cpython, componentize_py) = runtime()?;
    let cpython_ref = cpython.bom_ref.clone().expect("set by runtime()");
    let componentize_ref = componentize_py.bom_ref.clone().expect("set by runtime()");
    roots.extend([cpython_ref.clone(), componentize_ref.clone()]);
    components.extend([cpython, componentize_py]);
    let mut dependencies = dependencies;
    dependencies.push((componentize_ref, vec![cpython_ref.clone()]));
    dependencies.push((cpython_ref, Vec::new()));

    Ok(Inventory {
        components,
        dependencies,
        roots,
        tools: Vec::new(),
    })
}

fn component(dist: &Dist, normalized: &str) -> Result<Component, SbomError> {
    let mut qualifiers = Vec::new();
    let mut hashes = None;
    if let Some(direct) = &dist.direct_url {
        if let Some(vcs) = &direct.vcs_info {
            qualifiers.push((
                "vcs_url",
                format!("{}+{}@{}", vcs.vcs, direct.url, vcs.commit_id),
            ));
        } else if !direct.url.starts_with("file:") {
            qualifiers.push(("download_url", direct.url.clone()));
        }
        if let Some(archive) = &direct.archive_info {
            let hex = archive.hashes.get("sha256").cloned().or_else(|| {
                archive
                    .hash
                    .as_deref()
                    .and_then(|h| h.strip_prefix("sha256="))
                    .map(str::to_string)
            });
            hashes = hex
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|h| Hashes(vec![sha256(&h)]));
        }
    }
    let purl = with_qualifiers(purl("pypi", normalized, &dist.version)?, &qualifiers);
    let mut component = Component::new(
        Classification::Library,
        &dist.name,
        &dist.version,
        Some(purl.to_string()),
    );
    component.purl = Some(purl);
    component.scope = Some(Scope::Required);
    component.description = dist.summary.as_deref().map(NormalizedString::new);
    component.licenses = dist.licenses.clone();
    component.hashes = hashes;
    Ok(component)
}

/// CPython and componentize-py's runtime, which every component carries.
fn runtime() -> Result<(Component, Component), SbomError> {
    let cpython_purl = purl("generic", "cpython", CPYTHON_VERSION)?;
    let mut cpython = Component::new(
        Classification::Platform,
        "cpython",
        CPYTHON_VERSION,
        Some(cpython_purl.to_string()),
    );
    cpython.purl = Some(cpython_purl);
    cpython.scope = Some(Scope::Required);
    cpython.description = Some(NormalizedString::new(
        "CPython built for WASI, with its standard library, as embedded by componentize-py",
    ));
    cpython.licenses = license_from_text("PSF-2.0");

    let purl = purl("pypi", "componentize-py", COMPONENTIZE_PY_VERSION)?;
    let mut componentize_py = Component::new(
        Classification::Library,
        "componentize-py",
        COMPONENTIZE_PY_VERSION,
        Some(purl.to_string()),
    );
    componentize_py.purl = Some(purl);
    componentize_py.scope = Some(Scope::Required);
    componentize_py.description = Some(NormalizedString::new(
        "The component runtime componentize-py links around the interpreter",
    ));
    componentize_py.licenses = license_from_text("Apache-2.0 WITH LLVM-exception");
    Ok((cpython, componentize_py))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::tests::input;

    fn dist_info(deps: &Path, dir: &str, metadata: &str, direct_url: Option<&str>) {
        let dir = deps.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("METADATA"), metadata).unwrap();
        std::fs::write(dir.join("RECORD"), "").unwrap();
        if let Some(json) = direct_url {
            std::fs::write(dir.join("direct_url.json"), json).unwrap();
        }
    }

    /// rot13-cli → wcwidth; zope.interface (requirement with an extra, a marker);
    /// the project is installed from a local wheel.
    fn deps() -> tempfile::TempDir {
        let deps = tempfile::tempdir().unwrap();
        dist_info(
            deps.path(),
            "rot13_cli-1.2.0.dist-info",
            "Metadata-Version: 2.4\nName: rot13-cli\nVersion: 1.2.0\n\
             Summary: Rotate text by 13 letters\nLicense-Expression: MIT OR Apache-2.0\n\
             Requires-Dist: wcwidth==0.2.13\nRequires-Dist: Zope.Interface>=5; python_version >= \"3.8\"\n\
             Requires-Dist: pytest; extra == \"test\"\n\nThe description.\nLicense: nope\n",
            Some(
                "{\"archive_info\": {\"hash\": \"sha256=d59b\", \"hashes\": {\"sha256\": \
                 \"d59b80d040a3bb8df508eb8731395805453d9f468503192db7831df0482f06b4\"}}, \
                 \"url\": \"file:///tmp/x/wheel/rot13_cli-1.2.0-py3-none-any.whl\"}",
            ),
        );
        dist_info(
            deps.path(),
            "wcwidth-0.2.13.dist-info",
            "Metadata-Version: 2.1\nName: wcwidth\nVersion: 0.2.13\nLicense: MIT\n\
             Classifier: License :: OSI Approved :: MIT License\n\
             Requires-Dist: backports.functools-lru-cache >=1.2.1 ; python_version < \"3.2\"\n",
            None,
        );
        dist_info(
            deps.path(),
            "zope.interface-7.0.dist-info",
            "Metadata-Version: 2.1\nName: zope.interface\nVersion: 7.0\n\
             License: ZPL 2.1\n   with a second line\n\
             Classifier: License :: OSI Approved :: Zope Public License\n\
             Classifier: License :: OSI Approved\n",
            Some(
                "{\"url\": \"https://github.com/zopefoundation/zope.interface\", \
                 \"vcs_info\": {\"vcs\": \"git\", \"commit_id\": \"abc123\"}}",
            ),
        );
        std::fs::create_dir_all(deps.path().join("wcwidth")).unwrap();
        deps
    }

    fn bom(project: Option<&str>) -> serde_json::Value {
        let deps = deps();
        let dists = read_dists(deps.path()).unwrap();
        let inventory = inventory(dists, deps.path(), project).unwrap();
        serde_json::from_str(&finish(&input(), inventory, None).unwrap()).unwrap()
    }

    fn find<'a>(bom: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no component {name}"))
    }

    fn depends_on(bom: &serde_json::Value, bom_ref: &str) -> serde_json::Value {
        bom["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == bom_ref)
            .map(|d| d.get("dependsOn").cloned().unwrap_or(serde_json::json!([])))
            .expect("every component has a dependencies entry")
    }

    #[test]
    fn lists_installed_distributions_and_the_runtime() {
        let bom = bom(Some("rot13_cli"));
        let wcwidth = find(&bom, "wcwidth");
        assert_eq!(wcwidth["version"], "0.2.13");
        assert_eq!(wcwidth["purl"], "pkg:pypi/wcwidth@0.2.13");
        assert_eq!(wcwidth["licenses"][0]["expression"], "MIT");
        assert!(wcwidth.get("hashes").is_none());
        assert_eq!(
            find(&bom, "cpython")["purl"],
            format!("pkg:generic/cpython@{CPYTHON_VERSION}")
        );
        assert_eq!(find(&bom, "cpython")["type"], "platform");
        assert_eq!(
            find(&bom, "componentize-py")["purl"],
            format!("pkg:pypi/componentize-py@{COMPONENTIZE_PY_VERSION}")
        );
        assert_eq!(bom["components"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn the_project_is_the_root_with_its_wheel_hash() {
        let bom = bom(Some("rot13_cli"));
        let project = find(&bom, "rot13-cli");
        assert_eq!(project["type"], "application");
        assert_eq!(project["purl"], "pkg:pypi/rot13-cli@1.2.0");
        assert_eq!(project["licenses"][0]["expression"], "MIT OR Apache-2.0");
        assert_eq!(
            project["hashes"][0]["content"],
            "d59b80d040a3bb8df508eb8731395805453d9f468503192db7831df0482f06b4"
        );
        let artifact = bom["metadata"]["component"]["bom-ref"].as_str().unwrap();
        assert_eq!(
            depends_on(&bom, artifact),
            serde_json::json!([
                format!("pkg:generic/cpython@{CPYTHON_VERSION}"),
                format!("pkg:pypi/componentize-py@{COMPONENTIZE_PY_VERSION}"),
                "pkg:pypi/rot13-cli@1.2.0",
            ])
        );
    }

    #[test]
    fn requires_dist_gives_edges_to_installed_distributions_only() {
        let bom = bom(Some("rot13-cli"));
        // pytest is behind an extra; backports is not installed.
        assert_eq!(
            depends_on(&bom, "pkg:pypi/rot13-cli@1.2.0"),
            serde_json::json!([
                "pkg:pypi/wcwidth@0.2.13",
                "pkg:pypi/zope-interface@7.0?vcs_url=git%2Bhttps%3A//github.com/zopefoundation/zope.interface%40abc123"
            ])
        );
        assert_eq!(
            depends_on(&bom, "pkg:pypi/wcwidth@0.2.13"),
            serde_json::json!([])
        );
    }

    #[test]
    fn a_multi_line_license_field_falls_back_to_classifiers() {
        let bom = bom(None);
        let zope = find(&bom, "zope.interface");
        assert_eq!(
            zope["licenses"],
            serde_json::json!([{"license": {"name": "Zope Public License"}}])
        );
    }

    #[test]
    fn without_a_project_the_top_level_distributions_are_roots() {
        let bom = bom(None);
        let artifact = bom["metadata"]["component"]["bom-ref"].as_str().unwrap();
        let roots = depends_on(&bom, artifact);
        let roots: Vec<&str> = roots
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(roots.contains(&"pkg:pypi/rot13-cli@1.2.0"));
        assert!(!roots.contains(&"pkg:pypi/wcwidth@0.2.13"));
    }

    #[test]
    fn a_missing_project_distribution_is_an_error() {
        let deps = deps();
        let dists = read_dists(deps.path()).unwrap();
        assert!(matches!(
            inventory(dists, deps.path(), Some("other")),
            Err(SbomError::ProjectDistMissing { .. })
        ));
    }

    #[test]
    fn metadata_without_a_version_is_an_error() {
        let err = parse_metadata("Name: x\n", Path::new("METADATA")).unwrap_err();
        assert!(matches!(
            err,
            SbomError::DistMetadata {
                field: "Version",
                ..
            }
        ));
    }

    #[test]
    fn classifiers_map_to_spdx_ids_when_unambiguous() {
        let licenses = licenses_from_classifiers(&[
            "License :: OSI Approved :: MIT License",
            "License :: OSI Approved :: BSD License",
            "Programming Language :: Python",
        ])
        .unwrap();
        assert_eq!(licenses.0.len(), 2);
        assert_eq!(
            licenses.0[0],
            LicenseChoice::License(License::license_id("MIT"))
        );
        assert_eq!(
            licenses.0[1],
            LicenseChoice::License(License::named_license("BSD License"))
        );
    }

    #[test]
    fn normalizes_names_as_pep_503() {
        assert_eq!(normalize("Zope.Interface"), "zope-interface");
        assert_eq!(normalize("typing__extensions"), "typing-extensions");
        assert_eq!(normalize("rot13_cli"), "rot13-cli");
        assert_eq!(
            required_name("Foo.Bar[baz] >=1 ; os_name == 'posix'"),
            Some("foo-bar".into())
        );
        assert_eq!(required_name("x; extra == \"dev\""), None);
        assert_eq!(
            required_name("x; python_version>'3' and extra=='dev'"),
            None
        );
    }
}
