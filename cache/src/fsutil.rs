//! Small filesystem helpers shared by the stores, the restore and kiln itself: the one
//! atomic write, and the conversion between modification times and the manifest's
//! nanoseconds since the Unix epoch.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Replaces `path` with `bytes` so that readers see the old content or the new one,
/// never a part of it: writes a temporary file in the same directory, syncs it to disk,
/// renames it over `path`, then syncs the directory so the rename survives a crash too.
///
/// The directory is created when missing. The new file has mode `0600` on Unix (the
/// temporary file's). On error `path` is left as it was and no temporary file remains.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_renamed(path, bytes, true)
}

/// [`write_atomic`] without its two syncs, for chunk files only. A save writes thousands
/// of chunks and the syncs would cost several times the writes (about 0.5 ms a file on
/// ext4); a chunk is named by its digest, so one damaged by a crash fails its check when
/// read, is deleted, and is written again by the next save. Manifests and refs, which
/// nothing checks that way, go through [`write_atomic`].
pub(crate) fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_renamed(path, bytes, false)
}

fn write_renamed(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` names no file to write", path.display()),
            ));
        }
    };
    let temp = || tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir);
    // The directory usually exists: create it only when it does not (a save writes
    // thousands of chunks, and every `mkdir -p` is a few system calls).
    let mut tmp = match temp() {
        Ok(tmp) => tmp,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            temp()?
        }
        Err(err) => return Err(err),
    };
    tmp.write_all(bytes)?;
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Moves a written temporary file to `path` durably: syncs its content, renames it over
/// `path`, then syncs the directory, so after a crash `path` is the whole new file or
/// what was there before (a blob an index is about to name, a downloaded layer).
pub fn persist_synced(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Makes a rename in `dir` durable (Unix only: elsewhere a directory cannot be opened).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Nanoseconds since the Unix epoch, negative before it (as a manifest's `mtime_ns`).
pub(crate) fn unix_ns(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i64,
        Err(before) => -(before.duration().as_nanos() as i64),
    }
}

/// The time a manifest's `mtime_ns` stands for; the inverse of [`unix_ns`].
pub(crate) fn system_time(ns: i64) -> SystemTime {
    let offset = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        SystemTime::UNIX_EPOCH + offset
    } else {
        SystemTime::UNIX_EPOCH - offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_the_file_and_creates_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/file.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["file.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_replaces_a_symlink_instead_of_following_it() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
        assert_eq!(fs::read(&link).unwrap(), b"new");
    }

    #[test]
    fn times_round_trip_before_and_after_the_epoch() {
        for ns in [0, 1, 1_700_000_000_123_456_789, -1_500_000_000] {
            assert_eq!(unix_ns(system_time(ns)), ns);
        }
    }
}
