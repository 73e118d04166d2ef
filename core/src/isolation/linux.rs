//! The Linux half of [`super`]: namespaces, mounts and PID 1.

use std::path::Path;

use super::{HELPER, HelperArgs, SETUP_FAILED, report};

/// Step 1, or step 2 and 3 when started as the namespace's PID 1 (`--init`).
pub(super) fn helper(mut args: HelperArgs) -> Result<i32, String> {
    if args.init.is_some() {
        return pid_one(&args);
    }
    use nix::sched::{CloneFlags, unshare};
    use nix::unistd::{getgid, getuid};

    let (uid, gid) = (getuid(), getgid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
        .map_err(|err| format!("unshare(user, mount, pid namespaces) failed: {err}"))?;
    // The caller is root inside (and nothing outside): PID 1 keeps the capabilities to
    // mount across its exec, and what the step writes is owned by the caller on disk.
    write_proc("/proc/self/setgroups", "deny", true)?;
    write_proc("/proc/self/uid_map", &format!("0 {uid} 1"), false)?;
    write_proc("/proc/self/gid_map", &format!("0 {gid} 1"), false)?;
    mount_private()?;
    // The empty file laid over hidden files; removed when the step is done.
    let empty = tempfile::Builder::new()
        .prefix(".kiln-hidden-")
        .tempfile()
        .map_err(|err| format!("could not create an empty file to hide files with: {err}"))?;
    args.init = Some(empty.path().to_owned());
    // The first process started after `unshare` is the new PID namespace's PID 1.
    let exe =
        std::env::current_exe().map_err(|err| format!("kiln cannot find its own binary: {err}"))?;
    let status = std::process::Command::new(exe)
        .arg(HELPER)
        .args(args.to_args())
        .status()
        .map_err(|err| format!("could not start the namespace's first process: {err}"))?;
    drop(empty);
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(SETUP_FAILED)
}

fn write_proc(path: &str, contents: &str, missing_ok: bool) -> Result<(), String> {
    match std::fs::write(path, contents) {
        Err(err) if missing_ok && err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("could not write `{path}`: {err}")),
        Ok(()) => Ok(()),
    }
}

/// Nothing mounted in here propagates back to the CI's mount namespace.
fn mount_private() -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|err| format!("could not make the mount namespace private: {err}"))
}

/// Steps 2 and 3: PID 1 of the new namespace.
fn pid_one(args: &HelperArgs) -> Result<i32, String> {
    // When the helper dies (kiln's timeout kills it), so does PID 1, and with it the
    // whole namespace.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|err| format!("prctl(PR_SET_PDEATHSIG) failed: {err}"))?;
    mount_proc()?;
    let empty = args.init.as_deref().ok_or("PID 1 needs its empty file")?;
    for path in &args.hidden {
        hide(path, empty)?;
    }
    let Some(command) = &args.command else {
        return Ok(0);
    };
    let (program, program_args) = command.split_first().ok_or("no program to run")?;
    let step = match std::process::Command::new(program)
        .args(program_args)
        .spawn()
    {
        Ok(step) => step,
        Err(err) => {
            report(&format!(
                "could not run `{}`: {err}",
                program.to_string_lossy()
            ));
            return Ok(if err.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let pid = nix::unistd::Pid::from_raw(step.id() as i32);
    Ok(reap_until(pid))
}

/// A `/proc` that shows this PID namespace only: no kiln, no CI shell, no environments.
fn mount_proc() -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|err| format!("could not mount a fresh /proc: {err}"))
}

/// An empty read-only tmpfs over a directory, the empty file over a file, read-only too
/// (one step must not leave anything there for the next to read).
fn hide(path: &Path, empty: &Path) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    let failed = |err: nix::Error| format!("could not hide `{}`: {err}", path.display());
    if path.is_dir() {
        return mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=4k,mode=0700"),
        )
        .map_err(failed);
    }
    mount(
        Some(empty),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(failed)?;
    // A bind mount takes `MS_RDONLY` only on a remount, which must keep the flags the
    // kernel locked on the mount it came from.
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(path),
        None::<&str>,
    )
    .map_err(failed)
}

/// The `nosuid`, `nodev`, `noexec` and atime flags of the mount `path` is on.
fn locked_flags(path: &Path) -> nix::mount::MsFlags {
    use nix::mount::MsFlags;
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let flags = stat.flags();
    [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(fs, _)| flags.contains(*fs))
    .fold(MsFlags::empty(), |all, (_, ms)| all | ms)
}

/// PID 1 inherits every orphan: reaps them all until the step itself ends.
fn reap_until(step: nix::unistd::Pid) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == step => return code,
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == step => {
                return 128 + signal as i32;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return SETUP_FAILED,
        }
    }
}
