//! The SBOM of a Rust artifact: the `wasm32-wasip1` build graph from `cargo metadata`.
//!
//! 1. Runs `cargo metadata --filter-platform wasm32-wasip1` with the project's features
//!    and `--no-default-features`, as the build does.
//! 2. Walks the resolved graph from the project's package along normal and build edges
//!    (dev-dependencies are not built). Packages reached only through build scripts or
//!    proc-macros get scope `excluded`: they run at build time and are not linked in.
//! 3. Names each package by its source: crates.io `pkg:cargo/NAME@VERSION`; another
//!    registry adds `?repository_url=INDEX`; git adds `?vcs_url=git+URL@COMMIT`; path
//!    packages (workspace members, local path dependencies) have no purl, since they
//!    have no public identity, and a `bom-ref` of `path:NAME@VERSION` that holds no
//!    machine path, so the SBOM is the same on every checkout.
//! 4. Takes each package's `license` as given (an SPDX expression) and its sha256 from
//!    `Cargo.lock`'s `checksum` (registry packages only: git and path packages have none).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use cargo_metadata::{
    CargoOpt, DependencyKind, Metadata, MetadataCommand, Package, PackageId, TargetKind,
};
use cyclonedx_bom::models::component::{Classification, Scope};
use cyclonedx_bom::models::hash::Hashes;
use cyclonedx_bom::prelude::*;
use serde::Deserialize;

use crate::env::Env;

use super::{
    Inventory, SbomError, SbomInput, finish, license_from_text, purl, sha256, source_date_epoch,
    with_qualifiers,
};
use crate::process::Cmd;
use crate::project::RustProject;
use crate::toolchain::RUST_TARGET as TARGET;

/// The CycloneDX 1.5 JSON SBOM of the artifact built from `project`.
///
/// Lists every package in the project's `wasm32-wasip1` build graph with the project's
/// features. Not listed: the standard library (`std`, `core`, `alloc`, and wasi-libc
/// when std is built from source), which comes with the toolchain named as a tool.
pub async fn rust(project: &RustProject, input: &SbomInput<'_>) -> Result<String, SbomError> {
    let metadata = cargo_metadata(project, input.env).await?;
    let lockfile = metadata.workspace_root.as_std_path().join("Cargo.lock");
    let checksums = read_checksums(&lockfile)?;
    let inventory = inventory(&metadata, &project.package, &checksums).ok_or_else(|| {
        SbomError::PackageNotInGraph {
            package: project.package.clone(),
            manifest: project.manifest_path.clone(),
        }
    })?;
    finish(input, inventory, source_date_epoch(input.env)?)
}

/// `cargo metadata` for the build's platform and features.
async fn cargo_metadata(project: &RustProject, env: &Env) -> Result<Metadata, SbomError> {
    let mut command = MetadataCommand::new();
    // Not `$CARGO` from kiln's own environment: the same `cargo` detection ran.
    command
        .cargo_path("cargo")
        .manifest_path(&project.manifest_path)
        .current_dir(&project.workspace_root)
        .other_options(vec!["--filter-platform".to_string(), TARGET.to_string()]);
    if project.no_default_features {
        command.features(CargoOpt::NoDefaultFeatures);
    }
    if !project.features.is_empty() {
        command.features(CargoOpt::SomeFeatures(project.features.clone()));
    }
    // cargo_metadata says which arguments; kiln's one subprocess builder runs them.
    let std = command.cargo_command();
    let captured = Cmd::new(std.get_program(), env)
        .args(std.get_args())
        .current_dir(&project.workspace_root)
        .output()
        .await
        .map_err(|source| SbomError::CargoMetadata {
            manifest: project.manifest_path.clone(),
            source,
        })?;
    serde_json::from_str(&captured.stdout).map_err(|source| SbomError::CargoMetadataOutput {
        manifest: project.manifest_path.clone(),
        source,
    })
}

#[derive(Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

/// (name, version, source) → sha256 checksum, from `Cargo.lock` (none when there is
/// no lockfile).
type Checksums = HashMap<(String, String, String), String>;

fn read_checksums(path: &Path) -> Result<Checksums, SbomError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checksums::new()),
        Err(source) => {
            return Err(SbomError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let lockfile: Lockfile = toml::from_str(&text).map_err(|source| SbomError::Lockfile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(lockfile
        .package
        .into_iter()
        .filter_map(|p| {
            let checksum = p.checksum?;
            Some(((p.name, p.version, p.source?), checksum))
        })
        .collect())
}

/// The build graph of workspace member `package`, or `None` when it is not one.
fn inventory(metadata: &Metadata, package: &str, checksums: &Checksums) -> Option<Inventory> {
    let packages: HashMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let root = metadata
        .packages
        .iter()
        .find(|p| metadata.workspace_members.contains(&p.id) && p.name.as_str() == package)?;
    let resolve = metadata.resolve.as_ref()?;
    // Each package's dependencies that are built: normal and build edges, not dev ones.
    let edges: HashMap<&PackageId, Vec<(&PackageId, bool)>> = resolve
        .nodes
        .iter()
        .map(|node| {
            let deps = node
                .deps
                .iter()
                .filter_map(|dep| {
                    let kinds = &dep.dep_kinds;
                    // An empty list is what cargo before 1.41 wrote: a normal dependency.
                    let normal =
                        kinds.is_empty() || kinds.iter().any(|k| k.kind == DependencyKind::Normal);
                    let build = kinds.iter().any(|k| k.kind == DependencyKind::Build);
                    (normal || build).then_some((&dep.pkg, normal))
                })
                .collect();
            (&node.id, deps)
        })
        .collect();

    let built = reach(&root.id, &edges, |_, _| true);
    let linked = reach(&root.id, &edges, |to, normal| {
        normal && !packages.get(to).is_some_and(|p| is_proc_macro(p))
    });

    let mut refs: BTreeMap<&PackageId, String> = BTreeMap::new();
    let mut taken = HashSet::new();
    let mut components = Vec::new();
    // Sorted by id, so that a `bom-ref` clash is broken the same way every time.
    for id in &built {
        let package = packages.get(id)?;
        let (component, bom_ref) = component(package, checksums, linked.contains(id), &mut taken);
        refs.insert(id, bom_ref);
        components.push(component);
    }
    // Every package reached (edge targets included) is in `built`, so has a ref.
    let bom_ref = |id: &PackageId| refs.get(id).cloned();
    let dependencies = built
        .iter()
        .map(|id| {
            let deps = edges
                .get(id)
                .into_iter()
                .flatten()
                .map(|(to, _)| bom_ref(to))
                .collect::<Option<_>>()?;
            Some((bom_ref(id)?, deps))
        })
        .collect::<Option<_>>()?;
    Some(Inventory {
        components,
        dependencies,
        roots: vec![bom_ref(&root.id)?],
        tools: Vec::new(),
    })
}

/// Every package reached from `root` along the edges `follow` accepts, root included.
fn reach<'a>(
    root: &'a PackageId,
    edges: &HashMap<&'a PackageId, Vec<(&'a PackageId, bool)>>,
    follow: impl Fn(&PackageId, bool) -> bool,
) -> BTreeSet<&'a PackageId> {
    let mut seen = BTreeSet::from([root]);
    let mut queue = vec![root];
    while let Some(id) = queue.pop() {
        for &(to, normal) in edges.get(id).into_iter().flatten() {
            if follow(to, normal) && seen.insert(to) {
                queue.push(to);
            }
        }
    }
    seen
}

fn is_proc_macro(package: &Package) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.kind.contains(&TargetKind::ProcMacro))
}

/// The component of `package` and its `bom-ref` (unique within `taken`).
fn component(
    package: &Package,
    checksums: &Checksums,
    linked: bool,
    taken: &mut HashSet<String>,
) -> (Component, String) {
    let name = package.name.as_str();
    let version = package.version.to_string();
    let source = package.source.as_ref().map(|s| s.repr.as_str());
    let purl = cargo_purl(name, &version, source);
    let base = match (&purl, source) {
        (Some(purl), _) => purl.to_string(),
        (None, None) => format!("path:{name}@{version}"),
        (None, Some(source)) => format!("{source}#{name}@{version}"),
    };
    let mut bom_ref = base.clone();
    let mut n = 1;
    while !taken.insert(bom_ref.clone()) {
        n += 1;
        bom_ref = format!("{base}#{n}");
    }

    let classification = if source.is_none() && package.targets.iter().any(|t| t.is_bin()) {
        Classification::Application
    } else {
        Classification::Library
    };
    let mut component = Component::new(classification, name, &version, Some(bom_ref.clone()));
    component.purl = purl;
    component.scope = Some(if linked {
        Scope::Required
    } else {
        Scope::Excluded
    });
    component.description = package
        .description
        .as_deref()
        .map(|d| NormalizedString::new(d.trim()));
    component.licenses = package.license.as_deref().and_then(license_from_text);
    component.hashes = source
        .and_then(|s| checksums.get(&(name.to_string(), version.clone(), s.to_string())))
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|c| Hashes(vec![sha256(c)]));
    (component, bom_ref)
}

/// The package URL of a package from `source` (`None` for a path package).
fn cargo_purl(name: &str, version: &str, source: Option<&str>) -> Option<Purl> {
    let source = source?;
    let base = purl("cargo", name, version).ok()?;
    if source == "registry+https://github.com/rust-lang/crates.io-index"
        || source == "sparse+https://index.crates.io/"
    {
        return Some(base);
    }
    if let Some(index) = source.strip_prefix("registry+") {
        return Some(with_qualifiers(
            base,
            &[("repository_url", index.to_string())],
        ));
    }
    if source.starts_with("sparse+") {
        return Some(with_qualifiers(
            base,
            &[("repository_url", source.to_string())],
        ));
    }
    if let Some(git) = source.strip_prefix("git+") {
        // `URL?branch=…#COMMIT`: the commit is what was built.
        let (url, commit) = git.split_once('#').unwrap_or((git, ""));
        let url = url.split('?').next().unwrap_or(url);
        let vcs = if commit.is_empty() {
            format!("git+{url}")
        } else {
            format!("git+{url}@{commit}")
        };
        return Some(with_qualifiers(base, &[("vcs_url", vcs)]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::tests::input;

    const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

    fn package(name: &str, version: &str, source: Option<&str>, kind: &str) -> serde_json::Value {
        let id = match source {
            Some(s) => format!("{s}#{name}@{version}"),
            None => format!("path+file:///work/{name}#{version}"),
        };
        serde_json::json!({
            "name": name, "version": version, "id": id, "source": source,
            "license": if source.is_some() { Some("MIT OR Apache-2.0") } else { None },
            "dependencies": [], "features": {},
            "targets": [{"kind": [kind], "crate_types": [kind], "name": name,
                         "src_path": "/x/src/lib.rs", "edition": "2021"}],
            "manifest_path": format!("/x/{name}/Cargo.toml"),
        })
    }

    fn dep(id: &str, kinds: &[Option<&str>]) -> serde_json::Value {
        let kinds: Vec<_> = kinds
            .iter()
            .map(|k| serde_json::json!({"kind": k, "target": null}))
            .collect();
        serde_json::json!({"name": "x", "pkg": id, "dep_kinds": kinds})
    }

    /// app → serde (normal) → serde_derive (proc-macro) → syn; app → cc (build);
    /// app → insta (dev only); app → helper (path) → git-dep (git).
    fn metadata() -> Metadata {
        let git = "git+https://github.com/acme/gitdep?branch=main#0123abcd";
        let packages = vec![
            package("app", "0.1.0", None, "bin"),
            package("serde", "1.0.200", Some(CRATES_IO), "lib"),
            package("serde_derive", "1.0.200", Some(CRATES_IO), "proc-macro"),
            package("syn", "2.0.0", Some(CRATES_IO), "lib"),
            package("cc", "1.1.0", Some(CRATES_IO), "lib"),
            package("insta", "1.40.0", Some(CRATES_IO), "lib"),
            package("helper", "0.2.0", None, "lib"),
            package("gitdep", "0.3.0", Some(git), "lib"),
        ];
        let id = |i: usize| packages[i]["id"].as_str().unwrap().to_string();
        let nodes = serde_json::json!([
            {"id": id(0), "dependencies": [], "features": [], "deps": [
                dep(&id(1), &[None]), dep(&id(4), &[Some("build")]),
                dep(&id(5), &[Some("dev")]), dep(&id(6), &[None])]},
            {"id": id(1), "dependencies": [], "features": [], "deps": [dep(&id(2), &[None])]},
            {"id": id(2), "dependencies": [], "features": [], "deps": [dep(&id(3), &[None])]},
            {"id": id(3), "dependencies": [], "features": [], "deps": []},
            {"id": id(4), "dependencies": [], "features": [], "deps": []},
            {"id": id(5), "dependencies": [], "features": [], "deps": []},
            {"id": id(6), "dependencies": [], "features": [], "deps": [dep(&id(7), &[None])]},
            {"id": id(7), "dependencies": [], "features": [], "deps": []},
        ]);
        serde_json::from_value(serde_json::json!({
            "packages": packages,
            "workspace_members": [id(0), id(6)],
            "workspace_default_members": [id(0)],
            "resolve": {"nodes": nodes, "root": id(0)},
            "target_directory": "/x/target",
            "version": 1,
            "workspace_root": "/x",
        }))
        .unwrap()
    }

    fn bom() -> serde_json::Value {
        let checksums = Checksums::from([(
            (
                "serde".to_string(),
                "1.0.200".to_string(),
                CRATES_IO.to_string(),
            ),
            "ab".repeat(32),
        )]);
        let inventory = inventory(&metadata(), "app", &checksums).unwrap();
        serde_json::from_str(&finish(&input(), inventory, None).unwrap()).unwrap()
    }

    fn component<'a>(bom: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
    }

    #[test]
    fn lists_the_built_graph_without_dev_dependencies() {
        let bom = bom();
        let mut names: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "app",
                "cc",
                "gitdep",
                "helper",
                "serde",
                "serde_derive",
                "syn"
            ]
        );
    }

    #[test]
    fn build_time_packages_are_excluded_from_the_runtime_scope() {
        let bom = bom();
        for (name, scope) in [
            ("app", "required"),
            ("serde", "required"),
            ("helper", "required"),
            ("gitdep", "required"),
            ("serde_derive", "excluded"),
            ("syn", "excluded"),
            ("cc", "excluded"),
        ] {
            assert_eq!(component(&bom, name).unwrap()["scope"], scope, "{name}");
        }
    }

    #[test]
    fn names_packages_by_source() {
        let bom = bom();
        let serde = component(&bom, "serde").unwrap();
        assert_eq!(serde["purl"], "pkg:cargo/serde@1.0.200");
        assert_eq!(serde["bom-ref"], "pkg:cargo/serde@1.0.200");
        assert_eq!(serde["hashes"][0]["alg"], "SHA-256");
        assert_eq!(serde["hashes"][0]["content"], "ab".repeat(32));
        assert_eq!(serde["licenses"][0]["expression"], "MIT OR Apache-2.0");
        let git = component(&bom, "gitdep").unwrap();
        assert_eq!(
            git["purl"],
            "pkg:cargo/gitdep@0.3.0?vcs_url=git%2Bhttps%3A//github.com/acme/gitdep%400123abcd"
        );
        assert!(git.get("hashes").is_none());
        let helper = component(&bom, "helper").unwrap();
        assert!(helper.get("purl").is_none());
        assert_eq!(helper["bom-ref"], "path:helper@0.2.0");
        assert_eq!(component(&bom, "app").unwrap()["type"], "application");
    }

    #[test]
    fn records_dependency_edges_by_bom_ref() {
        let bom = bom();
        let deps = bom["dependencies"].as_array().unwrap();
        let of = |r: &str| {
            deps.iter()
                .find(|d| d["ref"] == r)
                .map(|d| d.get("dependsOn").cloned().unwrap_or(serde_json::json!([])))
                .expect("every component has a dependencies entry")
        };
        assert_eq!(
            of("path:app@0.1.0"),
            serde_json::json!([
                "path:helper@0.2.0",
                "pkg:cargo/cc@1.1.0",
                "pkg:cargo/serde@1.0.200"
            ])
        );
        let artifact = bom["metadata"]["component"]["bom-ref"].as_str().unwrap();
        assert_eq!(of(artifact), serde_json::json!(["path:app@0.1.0"]));
        // Every component has an entry, leaves included.
        assert_eq!(deps.len(), 8);
    }

    #[test]
    fn a_package_outside_the_workspace_is_not_a_root() {
        assert!(inventory(&metadata(), "serde", &Checksums::new()).is_none());
    }

    #[test]
    fn reads_checksums_from_the_lockfile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Cargo.lock");
        std::fs::write(
            &path,
            format!(
                "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n\
                 [[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"{CRATES_IO}\"\n\
                 checksum = \"{}\"\n",
                "cd".repeat(32)
            ),
        )
        .unwrap();
        let checksums = read_checksums(&path).unwrap();
        assert_eq!(checksums.len(), 1);
        assert_eq!(
            checksums[&("serde".into(), "1.0.200".into(), CRATES_IO.into())],
            "cd".repeat(32)
        );
        assert!(
            read_checksums(&dir.path().join("missing.lock"))
                .unwrap()
                .is_empty()
        );
        std::fs::write(&path, "[[package]\n").unwrap();
        assert!(matches!(
            read_checksums(&path),
            Err(SbomError::Lockfile { .. })
        ));
    }
}
