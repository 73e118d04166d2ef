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
