//! The toolchain facts every part of kiln agrees on: the targets it builds for and the
//! versions it pins. Stages, the SBOM, the inputs digest and the cache keys read them from
//! here, so none of them imports another to learn a constant.

/// The Rust target of a core module (WASI preview 1).
pub const RUST_TARGET: &str = "wasm32-wasip1";

/// The componentize-py kiln provisions and builds Python components with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// A pip requirements file pinning [`COMPONENTIZE_PY_VERSION`] by the hash of each of
/// its wheels (`core/pins/componentize-py.requirements`, which kiln's image installs
/// from too).
pub const COMPONENTIZE_PY_REQUIREMENTS: &str = include_str!("../pins/componentize-py.requirements");

/// The CPython inside componentize-py's runtime: dependencies are resolved for it, not
/// for the host's Python.
pub const TARGET_PYTHON: &str = "3.14";
/// Its ABI tag, for pip's `--abi`.
pub const TARGET_ABI: &str = "cp314";
/// The wheel platform tag of WASI builds (pip's `--platform`).
pub const WASI_PLATFORM: &str = "wasi_0_0_0_wasm32";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_requirement_is_the_version_kiln_names() {
        let lines: Vec<&str> = COMPONENTIZE_PY_REQUIREMENTS
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        assert_eq!(
            lines.first().map(|l| l.trim_end_matches(" \\")),
            Some(format!("componentize-py=={COMPONENTIZE_PY_VERSION}").as_str())
        );
        let hashes = lines
            .iter()
            .filter(|l| l.contains("--hash=sha256:"))
            .count();
        assert_eq!(hashes, 5, "one per wheel: {COMPONENTIZE_PY_REQUIREMENTS}");
    }
}
