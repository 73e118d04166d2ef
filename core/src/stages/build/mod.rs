//! The build stage: turns the detected project into a `.wasm` file.
//!
//! 1. Takes the toolchain the plan resolved for the project's language.
//! 2. Hands the project to the language's builder ([`rust`], [`python`]).
//! 3. Returns the built file, whether it is a core module or a component, and which
//!    toolchain produced it.

pub mod python;
pub mod rust;

use std::path::PathBuf;

use serde::Serialize;

/// What a Wasm binary is, which decides the artifact's `os` and how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WasmKind {
    /// A core module importing WASI preview 1 (`os: wasip1`).
    Module,
    /// A component targeting WASI p2 (`os: wasip2`).
    Component,
}

impl WasmKind {
    /// Tells a component from a core module by its header.
    pub fn of(bytes: &[u8]) -> Option<WasmKind> {
        if !wasmparser::Parser::is_core_wasm(bytes) && !wasmparser::Parser::is_component(bytes) {
            return None;
        }
        Some(if wasmparser::Parser::is_component(bytes) {
            WasmKind::Component
        } else {
            WasmKind::Module
        })
    }

    /// The artifact config's `os` value (Wasm OCI artifact spec).
    pub fn os(self) -> &'static str {
        match self {
            WasmKind::Module => "wasip1",
            WasmKind::Component => "wasip2",
        }
    }
}

/// The result of a successful build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `.wasm` file that was produced.
    pub wasm: PathBuf,
    /// Module or component.
    pub kind: WasmKind,
    /// The toolchain that produced it, as shown to the user
    /// ("rustc 1.95.0 with rustup's wasm32-wasip1 target").
    pub toolchain: String,
    /// Facts worth reporting in the summary (name, value): carried modules, sizes.
    pub facts: Vec<(String, String)>,
    /// The version the build itself determined, for projects whose version is dynamic
    /// (setuptools_scm, hatch-vcs): it names the artifact when detection found none.
    pub version: Option<String>,
}
