//! What a save takes from a directory: the [`Selection`] of paths, and the walk that
//! lists the selected entries with what a manifest records of each (kind, mode, size,
//! mtime, symlink target). Sockets, devices, fifos and symlinks pointing out of the
//! root are left out and counted, since a restore would refuse them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::archive::{EntryKind, check_symlink};
use crate::error::Error;
use crate::fsutil::unix_ns;

/// Which paths under the root a save takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Subpaths to save (files or directories); `None` saves the whole root. Missing
    /// subpaths are skipped.
    pub include: Option<Vec<PathBuf>>,
    /// Subpaths left out, with everything under them; a `*` component stands for any
    /// one component (`git/db/*/hooks`).
    pub exclude: Vec<PathBuf>,
}

impl Selection {
    /// The whole root.
    pub fn all() -> Selection {
        Selection::default()
    }

    fn excludes(&self, rel: &Path) -> bool {
        self.exclude.iter().any(|pattern| {
            let mut path = rel.components();
            pattern.components().all(|want| {
                path.next()
                    .is_some_and(|got| want.as_os_str() == "*" || want == got)
            })
        })
    }

    /// Whether an entry at `rel` (relative to the root) is one this selection saves: under
    /// an included path and not excluded, or a directory on the way to an included path.
    /// A restore applies the same test, so that a cache written by anyone else brings
    /// back nothing a save of this root would not have taken.
    pub fn admits(&self, rel: &Path, is_dir: bool) -> bool {
        if self.excludes(rel) {
            return false;
        }
        match &self.include {
            None => true,
            Some(include) => include
                .iter()
                .any(|inc| rel.starts_with(inc) || (is_dir && inc.starts_with(rel))),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Walked {
    pub(crate) rel: String,
    pub(crate) abs: PathBuf,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) target: Option<String>,
    /// A file's size and mtime when walked.
    pub(crate) size: u64,
    pub(crate) mtime_ns: Option<i64>,
    /// `(device, inode)` of a file with several hard links: read once per save.
    pub(crate) inode: Option<(u64, u64)>,
}

/// Lists the selected entries under `root`, sorted by path (a directory before its
/// content); returns them and the count of special files left out.
pub(crate) fn walk(root: &Path, selection: &Selection) -> Result<(Vec<Walked>, u64), Error> {
    let mut out = Vec::new();
    let mut skipped = 0;
    match &selection.include {
        None => walk_dir(root, "", selection, &mut out, &mut skipped)?,
        Some(include) => {
            for sub in include {
                let rel = rel_string(sub)?;
                if rel.is_empty() {
                    walk_dir(root, "", selection, &mut out, &mut skipped)?;
                    continue;
                }
                let abs = root.join(&rel);
                match fs::symlink_metadata(&abs) {
                    Ok(meta) => {
                        if visit(abs, rel.clone(), &meta, selection, &mut out, &mut skipped)? {
                            walk_dir(root, &rel, selection, &mut out, &mut skipped)?;
                        }
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Read { path: abs, source }),
                }
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dedup_by(|a, b| a.rel == b.rel);
    Ok((out, skipped))
}

/// `a/b` for a relative path of plain components.
fn rel_string(path: &Path) -> Result<String, Error> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::Normal(name) => parts.push(
                name.to_str()
                    .ok_or_else(|| Error::NonUtf8Path { path: path.into() })?,
            ),
            std::path::Component::CurDir => {}
            _ => {
                return Err(Error::InvalidPath {
                    path: path.display().to_string(),
                });
            }
        }
    }
    Ok(parts.join("/"))
}

fn walk_dir(
    root: &Path,
    rel_dir: &str,
    selection: &Selection,
    out: &mut Vec<Walked>,
    skipped: &mut u64,
) -> Result<(), Error> {
    let dir = root.join(rel_dir);
    let listing = fs::read_dir(&dir).map_err(|source| Error::Read {
        path: dir.clone(),
        source,
    })?;
    for item in listing {
        let item = item.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let abs = item.path();
        let name = item.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path { path: abs.clone() })?;
        let rel = if rel_dir.is_empty() {
            name.to_owned()
        } else {
            format!("{rel_dir}/{name}")
        };
        let meta = match fs::symlink_metadata(&abs) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path: abs, source }),
        };
        if visit(abs, rel.clone(), &meta, selection, out, skipped)? {
            walk_dir(root, &rel, selection, out, skipped)?;
        }
    }
    Ok(())
}

/// Records one entry; true when it is a directory to descend into.
fn visit(
    abs: PathBuf,
    rel: String,
    meta: &fs::Metadata,
    selection: &Selection,
    out: &mut Vec<Walked>,
    skipped: &mut u64,
) -> Result<bool, Error> {
    if selection.excludes(Path::new(&rel)) {
        return Ok(false);
    }
    let file_type = meta.file_type();
    let (kind, target) = if file_type.is_dir() {
        (EntryKind::Dir, None)
    } else if file_type.is_file() {
        (EntryKind::File, None)
    } else if file_type.is_symlink() {
        let target = fs::read_link(&abs).map_err(|source| Error::Read {
            path: abs.clone(),
            source,
        })?;
        let target = target
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path { path: abs.clone() })?
            .to_owned();
        // A link out of the root (absolute, or climbing out) would make the whole cache
        // unrestorable: it is left out, like a special file.
        if check_symlink(&rel, Some(&target)).is_err() {
            *skipped += 1;
            return Ok(false);
        }
        (EntryKind::Symlink, Some(target))
    } else {
        *skipped += 1;
        return Ok(false);
    };
    let descend = kind == EntryKind::Dir;
    let is_file = kind == EntryKind::File;
    out.push(Walked {
        rel,
        abs,
        kind,
        mode: mode_of(meta),
        target,
        size: if is_file { meta.len() } else { 0 },
        mtime_ns: if is_file {
            meta.modified().ok().map(unix_ns)
        } else {
            None
        },
        inode: if is_file { linked_inode(meta) } else { None },
    });
    Ok(descend)
}

fn linked_inode(meta: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        if meta.is_dir() || !meta.permissions().readonly() {
            0o755
        } else {
            0o555
        }
    }
}
