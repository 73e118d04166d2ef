//! What detection found: the project model every later stage reads.
//!
//! Detection's result is part of kiln's printed interface (`kiln plan --output json`), so
//! its types live in [`kiln_cli::output`] and are named here for the library. After
//! planning, what kind of project it is lives in [`crate::stages::build::Language`] (with
//! its toolchain), and the rest in [`Project`].

use std::path::PathBuf;

pub use kiln_cli::output::{
    Project as Detected, ProjectKind, PythonEntry, PythonProject, PythonSource, RustProject,
};

/// The project being built: where it is, what it is called, its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project directory given on the command line, canonicalised.
    pub root: PathBuf,
    /// The project's name (package name, distribution name or directory name).
    pub name: String,
    /// The project's version, when it declares one.
    pub version: Option<String>,
}

impl Project {
    /// Splits what detection found into the project and its kind.
    pub fn from_detected(detected: Detected) -> (Project, ProjectKind) {
        let Detected {
            root,
            name,
            version,
            kind,
        } = detected;
        (
            Project {
                root,
                name,
                version,
            },
            kind,
        )
    }

    /// What detection found, again (for `kiln plan` and the inputs digest).
    pub fn detected(&self, kind: ProjectKind) -> Detected {
        Detected {
            root: self.root.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            kind,
        }
    }
}

/// `--tag` or the default `NAME:VERSION`, made valid for OCI (lowercase repository
/// name; tag of `[A-Za-z0-9_.-]`, at most 128 characters).
/// An invalid one is returned as the error, for the caller to explain.
pub fn reference(
    tag: Option<&str>,
    name: &str,
    version: &Option<String>,
) -> Result<String, String> {
    let default_tag = || version.clone().unwrap_or_else(|| "latest".into());
    let (name, tag) = match tag {
        Some(given) => match given.rsplit_once(':') {
            Some((name, tag)) => (name.to_string(), tag.to_string()),
            None => (given.to_string(), default_tag()),
        },
        None => (name.to_string(), default_tag()),
    };
    let name: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if name.is_empty() || tag.is_empty() {
        return Err(tag);
    }
    Ok(format!("{name}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reference_is_valid_oci() {
        let v = |s: &str| Some(s.to_string());
        assert_eq!(
            reference(None, "My_App", &v("1.0.0+build.5")).unwrap(),
            "my_app:1.0.0_build.5"
        );
        assert_eq!(reference(None, "app", &None).unwrap(), "app:latest");
        assert_eq!(
            reference(Some("acme/tool:v2"), "app", &v("1")).unwrap(),
            "acme/tool:v2"
        );
        assert_eq!(
            reference(Some("tool"), "app", &v("3.1")).unwrap(),
            "tool:3.1"
        );
    }
}
