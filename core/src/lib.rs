//! kiln: turn an ordinary Rust or Python project into a Wasm OCI artifact, from any CI.
//!
//! The binary (`src/main.rs`) hands over to [`commands`], the CLI layer: it resolves
//! [`settings`], computes a [`plan`] (the ordered steps of a build) and runs it with the
//! [`pipeline`], one loop over the [`stages`]. `kiln run` loads a [`target`] and hands it
//! to the [`runner`]. Every subprocess goes through [`process`] (the steps that run project code, isolated by
//! [`isolation`]), and every environment
//! variable is read through [`env`].

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

pub mod cache;
#[cfg(feature = "runtime")]
pub mod commands;
pub mod diagnose;
pub mod env;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod inputs;
pub mod isolation;
pub mod oci;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod process;
pub mod project;
pub mod registry;
pub mod reporter;
#[cfg(feature = "runtime")]
pub mod runner;
pub mod sbom;
pub mod settings;
pub mod sign;
pub mod source;
pub mod stages;
pub mod summary;
pub mod target;
pub mod toolchain;
pub mod verify;

pub use error::Error;
