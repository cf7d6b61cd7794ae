//! The two system calls std does not offer: inheriting a descriptor under a fixed number in a
//! child, and waiting for a child's exit without reaping it.

/// In the forked child (before exec): makes `source` available as `target`, inheritable.
/// Only async-signal-safe calls.
pub(crate) fn inherit_as(source: i32, target: i32) -> std::io::Result<()> {
    if source == target {
        // dup2 to itself keeps FD_CLOEXEC; clear it instead.
        // SAFETY: fcntl on a descriptor this process owns; async-signal-safe.
        let flags = unsafe { libc::fcntl(source, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(source, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 between descriptors of this (forked) process; the new one is inheritable.
    if unsafe { libc::dup2(source, target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks until child `pid` has exited, leaving it unreaped (a zombie keeps its pid reserved),
/// so the caller can record the status before anything could reuse the pid.
pub(crate) fn wait_exited_without_reaping(pid: u32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits on our own child; WNOWAIT leaves it for std's `Child::wait` to reap.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}
