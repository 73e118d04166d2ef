//! SBOMs of real builds: each fixture is built by the real `kiln`, then its SBOM is
//! made with `kiln::sbom`, validated against the official CycloneDX 1.5 JSON schema by
//! PyPI `cyclonedx-python-lib`, and its package list checked against cargo's own view
//! of the build graph (`cargo tree`, `cargo metadata`) or pip's install.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{TestContext, peer_python, repo_root, stderr};
use kiln::env::Env;
use kiln::project::{Detected, ProjectKind, RustProject};
use kiln::sbom::{SbomInput, python};
use kiln::stages::detect::{self, DetectRequest};

/// The project `kiln build --package PACKAGE` detected at `path`, with its `kiln.toml`.
fn detect(path: &Path, package: Option<&str>) -> Detected {
    let config = kiln::settings::KilnToml::read(path).unwrap();
    let request = DetectRequest {
        env: Env::from_process(),
        path: path.to_path_buf(),
        config,
        package: package.map(str::to_string),
        ..DetectRequest::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(detect::run(&request, &kiln::reporter::Silent))
        .unwrap()
}

fn rust_project(project: &Detected) -> &RustProject {
    match &project.kind {
        ProjectKind::Rust(rust) => rust,
        other => panic!("not a Rust project: {other:?}"),
    }
}

/// What the SBOM describes, from the build's summary.
fn input<'a>(summary: &'a serde_json::Value, env: &'a Env) -> SbomInput<'a> {
    SbomInput {
        artifact_name: summary["project"]["name"].as_str().unwrap(),
        artifact_version: summary["project"]["version"].as_str(),
        artifact_digest: summary["artifact"]["digest"].as_str().unwrap(),
        toolchain: summary["build"]["toolchain"].as_str().unwrap(),
        env,
    }
}

/// Validates `sbom` against the CycloneDX 1.5 JSON schema (strict: no extra fields).
#[track_caller]
fn assert_valid_cyclonedx(sbom: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), sbom).unwrap();
    let out = Command::new(peer_python())
        .arg(repo_root().join("tests/peers/validate_cyclonedx.py"))
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the SBOM is not valid CycloneDX 1.5:\n{}\n--- SBOM\n{sbom}",
        stderr(&out)
    );
}

fn components(bom: &serde_json::Value) -> &Vec<serde_json::Value> {
    bom["components"].as_array().unwrap()
}

/// (name, version) of every component but `root`.
fn packages_but(bom: &serde_json::Value, root: &str) -> BTreeSet<(String, String)> {
    components(bom)
        .iter()
        .filter(|c| c["name"] != root)
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `cargo tree` for the build: every package compiled for the wasm build (normal and
/// build edges, the project's features), as (name, version), root excluded.
fn cargo_tree(rust: &RustProject) -> BTreeSet<(String, String)> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&rust.workspace_root)
        .args(["tree", "--target", "wasm32-wasip1", "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .arg("--manifest-path")
        .arg(&rust.manifest_path)
        .args(["--package", &rust.package])
        .env_remove("CARGO_TARGET_DIR");
    if rust.no_default_features {
        cmd.arg("--no-default-features");
    }
    if !rust.features.is_empty() {
        cmd.arg("--features").arg(rust.features.join(","));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "cargo tree: {}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            (name != rust.package).then(|| (name.to_string(), version.to_string()))
        })
        .collect()
}

/// `cargo metadata --filter-platform wasm32-wasip1` with the build's features: the
/// version of every resolved package, by name.
fn cargo_metadata_versions(rust: &RustProject) -> BTreeMap<String, BTreeSet<String>> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&rust.workspace_root)
        .args(["metadata", "--format-version", "1"])
        .args(["--filter-platform", "wasm32-wasip1"])
        .arg("--manifest-path")
        .arg(&rust.manifest_path);
    if rust.no_default_features {
        cmd.arg("--no-default-features");
    }
    if !rust.features.is_empty() {
        cmd.arg("--features").arg(rust.features.join(","));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "cargo metadata: {}", stderr(&out));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        versions
            .entry(package["name"].as_str().unwrap().to_string())
            .or_default()
            .insert(package["version"].as_str().unwrap().to_string());
    }
    versions
}

/// `Cargo.lock`'s checksums by (name, version).
fn lock_checksums(rust: &RustProject) -> BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(rust.workspace_root.join("Cargo.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                (
                    p["name"].as_str()?.to_string(),
                    p["version"].as_str()?.to_string(),
                ),
                p.get("checksum")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

fn rust_sbom(rust: &RustProject, input: &SbomInput<'_>) -> String {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(kiln::sbom::rust(rust, input))
        .unwrap()
}

/// Builds a Rust fixture (`--package` for a workspace), makes its SBOM and checks it
/// against the schema and cargo.
fn check_rust_fixture(fixture: &str, package: Option<&str>) -> serde_json::Value {
    let ctx = TestContext::new();
    let path = ctx.fixture(fixture);
    let args: Vec<&str> = package.iter().flat_map(|p| ["--package", p]).collect();
    let summary = ctx.build(&path, &args);
    let project = detect(&path, package);
    let rust = rust_project(&project);
    let env = Env::from_process();
    let input = input(&summary, &env);

    let sbom = rust_sbom(rust, &input);
    assert_valid_cyclonedx(&sbom);
    assert_eq!(
        sbom,
        rust_sbom(rust, &input),
        "the SBOM is not reproducible"
    );
    let bom: serde_json::Value = serde_json::from_str(&sbom).unwrap();

    // The subject is the artifact kiln stored.
    let subject = &bom["metadata"]["component"];
    let digest = summary["artifact"]["digest"].as_str().unwrap();
    assert_eq!(
        subject["hashes"][0]["content"],
        digest.strip_prefix("sha256:").unwrap()
    );
    assert!(
        subject["purl"]
            .as_str()
            .unwrap()
            .ends_with(&digest.replace(':', "%3A")),
        "{subject}"
    );
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "rustc");

    // Every package cargo builds for wasm32-wasip1 is listed, at its version, and
    // nothing else is.
    let listed = packages_but(&bom, &rust.package);
    assert_eq!(listed, cargo_tree(rust), "SBOM vs `cargo tree`");
    let versions = cargo_metadata_versions(rust);
    for (name, version) in &listed {
        assert!(
            versions.get(name).is_some_and(|v| v.contains(version)),
            "{name} {version} is not in `cargo metadata`: {versions:?}"
        );
    }

    // Registry packages carry Cargo.lock's checksum.
    let checksums = lock_checksums(rust);
    for c in components(&bom) {
        let key = (
            c["name"].as_str().unwrap().to_string(),
            c["version"].as_str().unwrap().to_string(),
        );
        match checksums.get(&key) {
            Some(sum) => assert_eq!(c["hashes"][0]["content"], sum.as_str(), "{c}"),
            None => assert!(c.get("hashes").is_none(), "{c}"),
        }
    }

    // The dependency graph covers every component, from the artifact down.
    let refs: BTreeSet<&str> = components(&bom)
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    let deps = bom["dependencies"].as_array().unwrap();
    assert_eq!(deps.len(), refs.len() + 1);
    let root_ref = format!(
        "path:{}@{}",
        rust.package,
        project.version.as_deref().unwrap()
    );
    let artifact_deps = deps
        .iter()
        .find(|d| d["ref"] == subject["bom-ref"])
        .unwrap();
    assert_eq!(artifact_deps["dependsOn"], serde_json::json!([root_ref]));
    for d in deps {
        for to in d["dependsOn"].as_array().into_iter().flatten() {
            assert!(refs.contains(to.as_str().unwrap()), "dangling {to}");
        }
    }
    bom
}

#[test]
fn rust_bin_sbom_lists_the_wasm_build_graph() {
    let bom = check_rust_fixture("rust-bin", None);
    let find = |name: &str| {
        components(&bom)
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let serde_json = find("serde_json");
    assert_eq!(
        serde_json["purl"],
        format!(
            "pkg:cargo/serde_json@{}",
            serde_json["version"].as_str().unwrap()
        )
    );
    assert_eq!(serde_json["scope"], "required");
    assert_eq!(serde_json["licenses"][0]["expression"], "MIT OR Apache-2.0");
    // serde_derive is a proc-macro: it runs in the compiler, it is not in the module.
    assert_eq!(find("serde_derive")["scope"], "excluded");
    let root = find("rust-bin");
    assert_eq!(root["type"], "application");
    assert_eq!(root["licenses"][0]["expression"], "MIT");
    assert!(root.get("purl").is_none());
}

#[test]
fn rust_features_sbom_honours_no_default_features() {
    // kiln.toml turns the default `fast-alloc` (mimalloc, C code) off.
    let bom = check_rust_fixture("rust-features", None);
    let names: Vec<&str> = components(&bom)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rust-features"]);
}

#[test]
fn rust_workspace_sbom_covers_only_the_built_member() {
    let bom = check_rust_fixture("rust-workspace", Some("count"));
    let names: Vec<&str> = components(&bom)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["count"]);
}

#[test]
fn python_sbom_lists_installed_distributions_and_the_runtime() {
    let ctx = TestContext::new();
    let path = ctx.fixture("python-pyproject");
    let summary = ctx.build(&path, &[]);
    let deps = path.join(".kiln/build/python/deps");
    let env = Env::from_process();
    let input = input(&summary, &env);

    let sbom = python(&deps, Some("rot13-cli"), &input).unwrap();
    assert_valid_cyclonedx(&sbom);
    assert_eq!(sbom, python(&deps, Some("rot13-cli"), &input).unwrap());
    let bom: serde_json::Value = serde_json::from_str(&sbom).unwrap();

    let listed: BTreeMap<&str, (&str, &str)> = components(&bom)
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                (c["version"].as_str().unwrap(), c["purl"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        listed,
        BTreeMap::from([
            (
                "componentize-py",
                ("0.25.1", "pkg:pypi/componentize-py@0.25.1")
            ),
            ("cpython", ("3.14", "pkg:generic/cpython@3.14")),
            ("rot13-cli", ("1.2.0", "pkg:pypi/rot13-cli@1.2.0")),
            ("wcwidth", ("0.2.13", "pkg:pypi/wcwidth@0.2.13")),
        ])
    );
    // Every distribution pip installed is listed.
    let installed: BTreeSet<String> = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".dist-info").map(str::to_string)
        })
        .collect();
    assert_eq!(
        installed,
        BTreeSet::from(["rot13_cli-1.2.0".to_string(), "wcwidth-0.2.13".to_string()])
    );

    let deps_of = |r: &str| {
        bom["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == r)
            .unwrap()
            .get("dependsOn")
            .cloned()
            .unwrap_or(serde_json::json!([]))
    };
    assert_eq!(
        deps_of("pkg:pypi/rot13-cli@1.2.0"),
        serde_json::json!(["pkg:pypi/wcwidth@0.2.13"])
    );
    let subject = bom["metadata"]["component"]["bom-ref"].as_str().unwrap();
    assert_eq!(
        deps_of(subject),
        serde_json::json!([
            "pkg:generic/cpython@3.14",
            "pkg:pypi/componentize-py@0.25.1",
            "pkg:pypi/rot13-cli@1.2.0"
        ])
    );
    // The project's own wheel, installed from a file, has its sha256.
    let project = components(&bom)
        .iter()
        .find(|c| c["name"] == "rot13-cli")
        .unwrap();
    assert_eq!(project["type"], "application");
    assert_eq!(project["hashes"][0]["alg"], "SHA-256");
    assert_eq!(bom["metadata"]["tools"]["components"][1]["name"], "kiln");
}
