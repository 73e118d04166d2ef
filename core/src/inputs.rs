//! The inputs digest: one hash of everything that decides what a build produces.
//!
//! It covers the source tree (the files git tracks or would track, else every file but
//! build output), which includes the lockfiles; the toolchain the plan chose; kiln's
//! version; the build settings; and the facts that go into the artifact's annotations.
//! It is recorded on the manifest as [`ANNOTATION`]; a store or registry that already
//! holds an artifact with the same inputs digest makes the build a no-op.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::env::Env;
use crate::project::Detected as Project;
use crate::source::SourceInfo;

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

/// What the inputs digest covers.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The project as detected (kind, entry, features, ...).
    pub project: &'a Project,
    /// Whose files are the source ([`crate::stages::build::Language::source_root`]).
    pub source_root: &'a Path,
    /// [`crate::stages::build::Language::toolchain_identity`].
    pub toolchain: &'a str,
    pub source: &'a SourceInfo,
    pub env: &'a Env,
}

/// `sha256:<hex>` over the inputs.
pub async fn digest(inputs: Inputs<'_>) -> std::io::Result<String> {
    let files = source_files(inputs.source_root, inputs.env).await?;
    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    field("kiln", env!("CARGO_PKG_VERSION").as_bytes());
    // The project as detected, without where it lives.
    let mut project = inputs.project.clone();
    let root = std::mem::take(&mut project.root);
    let project = serde_json::to_value(&project).expect("project serialises");
    field(
        "project",
        strip_paths(project, &root).to_string().as_bytes(),
    );
    field("toolchain", inputs.toolchain.as_bytes());
    let source = inputs.source;
    field(
        "created",
        source.created.as_deref().unwrap_or("").as_bytes(),
    );
    field(
        "revision",
        source.revision.as_deref().unwrap_or("").as_bytes(),
    );
    field("source", source.url.as_deref().unwrap_or("").as_bytes());
    let root = inputs.source_root;
    for file in files {
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
/// `.gitignore`), or, outside a work tree, every file not ignored and not under a
/// [`NOT_SOURCE`] directory.
pub async fn source_files(root: &Path, env: &Env) -> std::io::Result<Vec<PathBuf>> {
    let git = crate::source::git(root, env)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            ".",
        ])
        .output()
        .await;
    let mut files: Vec<PathBuf> = match git {
        Ok(out) => out
            .stdout
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(|p| root.join(p))
            .filter(|p| {
                !p.strip_prefix(root)
                    .map(|rel| rel.starts_with(".kiln"))
                    .unwrap_or(false)
            })
            .collect(),
        Err(_) => walk(root)?,
    };
    files.sort();
    Ok(files)
}

/// Every file under `root` that `.gitignore`/`.ignore` files do not exclude (as ripgrep
/// walks), outside build output.
fn walk(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_global(false)
        // Outside a work tree, `.gitignore` files still say what is not source.
        .require_git(false)
        .filter_entry(|entry| {
            let name = entry.file_name().to_string_lossy();
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            if is_dir {
                !NOT_SOURCE.contains(&name.as_ref()) && !name.ends_with(".egg-info")
            } else {
                !name.ends_with(".pyc")
            }
        })
        .build();
    let mut found = Vec::new();
    for entry in walker {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_some_and(|t| t.is_file()) {
            found.push(entry.into_path());
        }
    }
    Ok(found)
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
        std::fs::write(dir.path().join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x").unwrap();
        let mut found = walk(dir.path()).unwrap();
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
        assert_eq!(rel, [".gitignore", "Cargo.lock", "src/main.rs"]);
    }
}
