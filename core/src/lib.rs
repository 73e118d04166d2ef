//! kiln: turn an ordinary Rust or Python project into a Wasm OCI artifact, from any CI.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: it parses the [`cli`],
//! resolves [`settings`], computes a [`plan`], runs the [`pipeline`] of [`stages`] and
//! prints through [`printer`]. `kiln run` loads a [`target`] and hands it to the
//! [`runner`].

pub mod cache;
pub mod cli;
pub mod env;
pub mod error;
pub mod inputs;
pub mod oci;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod printer;
pub mod process;
pub mod project;
pub mod registry;
pub mod reporter;
pub mod runner;
pub mod sbom;
pub mod settings;
pub mod sign;
pub mod source;
pub mod stages;
pub mod summary;
pub mod target;
pub mod verify;
