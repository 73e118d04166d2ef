//! The pipeline's stages, one module each, run in this order by [`crate::pipeline`]:
//! detect, build, package, store (then the summary is printed).

pub mod build;
pub mod detect;
pub mod package;
pub mod store;
