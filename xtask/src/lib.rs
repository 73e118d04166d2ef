//! Repository chores, run as `cargo run -p xtask -- <task>`.
//!
//! `checksums DIR --version V` prints (or `--append`s to `action/checksums.txt`) the
//! sha256 lines of the release archives `dist build` left in DIR ([`checksums`]).
//!
//! `generate` writes the CI wrappers' inputs from `kiln build`'s clap definition into
//! the generated regions of the wrapper files, and the JSON Schema of every document
//! kiln prints into `schema/`; `generate --check` changes nothing and fails with a
//! unified diff when a file differs from what it would write. Both come from the small
//! `kiln-cli` crate, so this never compiles kiln itself.

pub mod checksums;
pub mod inputs;
pub mod regions;
pub mod render;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The files with generated regions, relative to the repository root.
pub const FILES: &[&str] = &[
    "action/action.yml",
    "action/scripts/kiln-build.sh",
    "action/scripts/kiln-cache-save.sh",
    "gitlab-component/templates/kiln.yml",
    "tekton/task/kiln-build/0.1/kiln-build.yaml",
    "jenkins/vars/kilnBuild.groovy",
    "jenkins/vars/kilnBuild.txt",
];

/// The checksums of kiln's release binaries, which the wrappers check downloads
/// against: `SHA256  vVERSION/kiln-TARGET` lines.
pub const CHECKSUMS: &str = "action/checksums.txt";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository")
        .to_path_buf()
}

/// A generated file: its path and what it should contain.
#[derive(Debug)]
pub struct Generated {
    pub path: String,
    pub current: String,
    pub expected: String,
}

impl Generated {
    pub fn is_current(&self) -> bool {
        self.current == self.expected
    }

    /// A unified diff from what the file holds to what it should hold.
    pub fn diff(&self) -> String {
        similar::TextDiff::from_lines(&self.current, &self.expected)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{}", self.path), &format!("b/{}", self.path))
            .to_string()
    }
}

/// Computes every generated file's expected content.
pub fn generate(root: &Path) -> Result<Vec<Generated>> {
    let inputs = inputs::inputs();
    let checksums_text = std::fs::read_to_string(root.join(CHECKSUMS))
        .with_context(|| format!("Failed to read `{CHECKSUMS}`"))?;
    let checksums: String = checksums_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let render = |path: &str, region: &str| -> Option<String> {
        Some(match (path, region) {
            ("action/action.yml", "inputs") => render::github_inputs(&inputs),
            ("action/action.yml", "env") => render::github_env(&inputs),
            ("gitlab-component/templates/kiln.yml", "inputs") => render::gitlab_inputs(&inputs),
            ("gitlab-component/templates/kiln.yml", "variables") => {
                render::gitlab_variables(&inputs)
            }
            ("gitlab-component/templates/kiln.yml", "checksums") => checksums.clone(),
            ("tekton/task/kiln-build/0.1/kiln-build.yaml", "params") => {
                render::tekton_params(&inputs)
            }
            ("tekton/task/kiln-build/0.1/kiln-build.yaml", "env") => render::tekton_env(&inputs),
            ("jenkins/vars/kilnBuild.txt", "parameters") => render::jenkins_parameters(&inputs),
            ("jenkins/vars/kilnBuild.groovy", "defaults") => render::jenkins_defaults(&inputs),
            ("jenkins/vars/kilnBuild.groovy", "inputs") => render::jenkins_inputs(&inputs),
            (_, "args") => render::shell_args(&inputs),
            (_, "cache-save-args") => render::shell_args(&inputs::inputs_for(&["cache", "save"])),
            _ => return None,
        })
    };
    let mut generated = FILES
        .iter()
        .map(|path| {
            let current = std::fs::read_to_string(root.join(path))
                .with_context(|| format!("Failed to read `{path}`"))?;
            let expected = regions::fill(&current, &|region| render(path, region))
                .with_context(|| format!("Failed to generate `{path}`"))?;
            Ok(Generated {
                path: path.to_string(),
                current,
                expected,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for (name, schema) in kiln_cli::output::schemas() {
        let path = format!("{SCHEMA_DIR}/{name}");
        generated.push(Generated {
            // A schema not yet written is simply stale.
            current: std::fs::read_to_string(root.join(&path)).unwrap_or_default(),
            expected: schema,
            path,
        });
    }
    Ok(generated)
}

/// Where the JSON Schemas of kiln's printed documents are committed.
pub const SCHEMA_DIR: &str = "schema";

/// Writes the files that are not current; returns their paths.
pub fn write(root: &Path, generated: &[Generated]) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for file in generated.iter().filter(|f| !f.is_current()) {
        std::fs::write(root.join(&file.path), &file.expected)
            .with_context(|| format!("Failed to write `{}`", file.path))?;
        written.push(file.path.clone());
    }
    Ok(written)
}
