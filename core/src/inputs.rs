//! The inputs digest: one hash of everything that decides what a build produces.
//!
//! It covers the source tree (the files git tracks or would track, else every file but
//! build output), which includes the lockfiles; the toolchain the plan chose; kiln's
//! version; the build settings; and the facts that go into the artifact's annotations.
//! It is recorded on the manifest as [`ANNOTATION`]; a store or registry that already
//! holds an artifact with the same inputs digest makes the build a no-op.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::plan::Plan;

/// The manifest annotation that records the inputs digest.
pub const ANNOTATION: &str = "dev.kiln.inputs.digest";

/// Directories that are build output or tool state, never source, when git cannot say.
const NOT_SOURCE: &[&str] = &[
    ".git",
    ".kiln",
    "target",
    "__pycache__",
    ".venv",
    "venv",
    "node_modules",
    "build",
    "dist",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
];

/// `sha256:<hex>` over the plan's inputs.
pub fn digest(plan: &Plan) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    field("kiln", env!("CARGO_PKG_VERSION").as_bytes());
    // The project as detected (kind, entry, features, ...), without where it lives.
    let mut project = plan.project.clone();
    project.root = PathBuf::new();
    let project = serde_json::to_value(&project).expect("project serialises");
    field(
        "project",
        strip_paths(project, &plan.project.root)
            .to_string()
            .as_bytes(),
    );
    field("toolchain", toolchain_identity(plan).as_bytes());
    field(
        "created",
        plan.source.created.as_deref().unwrap_or("").as_bytes(),
    );
    field(
        "revision",
        plan.source.revision.as_deref().unwrap_or("").as_bytes(),
    );
    field(
        "source",
        plan.source.url.as_deref().unwrap_or("").as_bytes(),
    );
    // A workspace member's build also depends on the workspace's manifest and lockfile.
    let root = match &plan.project.kind {
        crate::project::ProjectKind::Rust(rust) => &rust.workspace_root,
        _ => &plan.project.root,
    };
    for file in source_files(root)? {
        let rel = file.strip_prefix(root).unwrap_or(&file);
        let mut content = Vec::new();
        match std::fs::File::open(&file) {
            Ok(mut f) => {
                f.read_to_end(&mut content)?;
            }
            // Listed by git but deleted in the work tree: absent is an input too.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        }
        field(&format!("file:{}", rel.display()), &content);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// What identifies the toolchain: versions, not the paths they were found at.
fn toolchain_identity(plan: &Plan) -> String {
    match &plan.toolchain {
        crate::plan::ToolchainPlan::Rust { candidates } => candidates
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("|"),
        crate::plan::ToolchainPlan::Python(_) => format!(
            "componentize-py {}",
            crate::stages::build::python::COMPONENTIZE_PY_VERSION
        ),
    }
}

/// Replaces absolute paths under `root` with relative ones, so that the same project
/// in another checkout has the same inputs.
fn strip_paths(value: serde_json::Value, root: &Path) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let path = Path::new(&s);
            match path.strip_prefix(root) {
                Ok(rel) => Value::String(rel.display().to_string()),
                Err(_) if path.is_absolute() => Value::String(String::new()),
                Err(_) => Value::String(s),
            }
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| strip_paths(v, root)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, strip_paths(v, root)))
                .collect(),
        ),
        other => other,
    }
}

/// The project's source files, sorted: what git tracks or would track (respecting
/// `.gitignore`), or, outside a work tree, every file not under a [`NOT_SOURCE`] dir.
pub fn source_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let git = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            ".",
        ])
        .current_dir(root)
        .output();
    let mut files: Vec<PathBuf> = match git {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .filter(|p| {
                !p.strip_prefix(root)
                    .map(|rel| rel.starts_with(".kiln"))
                    .unwrap_or(false)
            })
            .collect(),
        _ => {
            let mut found = Vec::new();
            walk(root, &mut found)?;
            found
        }
    };
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let name = name.to_string_lossy();
            if !NOT_SOURCE.contains(&name.as_ref()) && !name.ends_with(".egg-info") {
                walk(&entry.path(), found)?;
            }
        } else if kind.is_file() && !name.to_string_lossy().ends_with(".pyc") {
            found.push(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_skips_build_output() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "src/main.rs",
            "target/x",
            ".kiln/oci/index.json",
            "a/__pycache__/m.pyc",
            "Cargo.lock",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let mut found = Vec::new();
        walk(dir.path(), &mut found).unwrap();
        found.sort();
        let rel: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(rel, ["Cargo.lock", "src/main.rs"]);
    }
}
