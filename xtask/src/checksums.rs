//! `checksums DIR --version V`: the release's lines for `action/checksums.txt`.
//!
//! `dist build` writes each archive with a `.sha256` beside it (`HEX *NAME` or
//! `HEX  NAME`). This reads every `kiln-TARGET.tar.xz.sha256` in DIR, checks that the
//! archive beside it has that digest, and returns `HEX  vVERSION/kiln-TARGET.tar.xz`
//! lines, the form the wrappers look downloads up by. The release appends them to
//! `action/checksums.txt` (then `generate` copies them into the GitLab template); CI
//! writes them to a scratch file and installs the archive it built through the action's
//! own script.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One `HEX  vVERSION/NAME` line per archive in `dir`, sorted by name.
pub fn lines(dir: &Path, version: &str) -> Result<String> {
    let version = version.trim_start_matches('v');
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("Failed to read `{}`", dir.display()))?
    {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(archive) = name.strip_suffix(".sha256") else {
            continue;
        };
        if !(archive.starts_with("kiln-") && archive.ends_with(".tar.xz")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("Failed to read `{}`", path.display()))?;
        let mut fields = text.split_whitespace();
        let (Some(hex), Some(listed)) = (fields.next(), fields.next()) else {
            bail!("`{}` is not `HEX NAME`: {text:?}", path.display());
        };
        if listed.trim_start_matches('*') != archive {
            bail!("`{}` lists `{listed}`, not `{archive}`", path.display());
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("`{}` holds no sha256: {hex:?}", path.display());
        }
        let bytes = std::fs::read(dir.join(archive))
            .with_context(|| format!("Failed to read `{archive}` beside its checksum"))?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != hex.to_ascii_lowercase() {
            bail!("`{archive}` has sha256 {actual}, not the {hex} its checksum file says");
        }
        found.push(format!("{actual}  v{version}/{archive}\n"));
    }
    if found.is_empty() {
        bail!(
            "no kiln-*.tar.xz.sha256 in `{}`: run `dist build` first",
            dir.display()
        );
    }
    found.sort();
    Ok(found.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_each_archive_under_its_version_and_check_it() {
        let dir = tempfile::tempdir().unwrap();
        let archive = "kiln-x86_64-unknown-linux-gnu.tar.xz";
        std::fs::write(dir.path().join(archive), b"archive").unwrap();
        let hex = hex::encode(Sha256::digest(b"archive"));
        std::fs::write(
            dir.path().join(format!("{archive}.sha256")),
            format!("{hex} *{archive}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("dist-manifest.json"), "{}").unwrap();
        assert_eq!(
            lines(dir.path(), "v0.2.0").unwrap(),
            format!("{hex}  v0.2.0/{archive}\n")
        );
        // An archive that is not what its checksum says is refused.
        std::fs::write(dir.path().join(archive), b"changed").unwrap();
        let err = lines(dir.path(), "0.2.0").unwrap_err().to_string();
        assert!(err.contains("not the"), "{err}");
    }
}
