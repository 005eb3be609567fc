//! Every `unsafe` block of the crate: thin, safe wrappers over the Linux system calls the
//! server needs (randomness, signal masks, process groups, the clock-change timer). Each
//! wrapper states its SAFETY argument. It holds no policy: callers decide what to signal and
//! when.

use std::io;

/// Fill `buf` from the kernel CSPRNG (getrandom(2)); retries on EINTR, never falls back.
pub(crate) fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the writable remainder of `buf`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(())
}

/// The stop signals (SIGTERM, SIGINT), blocked in the calling thread and so in every thread it
/// starts afterwards; `None` when they could not be blocked.
pub(crate) struct StopSignals(libc::sigset_t);

impl StopSignals {
    pub(crate) fn block() -> Option<StopSignals> {
        // SAFETY: sigset manipulation on a local value; pthread_sigmask on the calling thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return None;
            }
            Some(StopSignals(set))
        }
    }

    /// Wait for one of the blocked signals; returns its name.
    pub(crate) fn wait(&self) -> Result<&'static str, i32> {
        let mut signal: libc::c_int = 0;
        // SAFETY: sigwait on a set blocked in every thread, with a valid out-parameter.
        let rc = unsafe { libc::sigwait(&self.0, &mut signal) };
        if rc != 0 {
            return Err(rc);
        }
        Ok(if signal == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        })
    }
}

/// SIGPIPE back to its default (end quietly on a closed pipe), for printing commands.
pub(crate) fn default_sigpipe() {
    // SAFETY: resetting a signal disposition; called before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Send `signal` to every member of process group `pgid` (ignored for `pgid <= 1`; a stale
/// group gives ESRCH, which is ignored).
pub(crate) fn signal_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: killpg only sends a signal.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// A handle on one process (a pidfd): a signal sent through it reaches that process or, once it
/// is gone, nobody — never a later process that was given the same id. Without pidfds (a kernel
/// before Linux 5.3, or a seccomp filter that refuses them with ENOSYS or EPERM) it falls back
/// to the plain id.
pub(crate) struct ProcessHandle {
    pid: i32,
    fd: Option<i32>,
}

impl ProcessHandle {
    /// A handle on the process that has id `pid` now; `None` when there is none.
    pub(crate) fn open(pid: i32) -> Option<ProcessHandle> {
        if pid <= 1 {
            return None;
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor this handle owns.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            return Some(ProcessHandle {
                pid,
                fd: Some(fd as i32),
            });
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => Some(ProcessHandle { pid, fd: None }),
            _ => None,
        }
    }

    /// Send `signal`; false when the process is gone (or may not be signalled).
    pub(crate) fn signal(&self, signal: i32) -> bool {
        if let Some(fd) = self.fd {
            // SAFETY: pidfd_send_signal on the descriptor we own, with no siginfo and no flags.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc == 0 {
                return true;
            }
            // A filter refusing the call itself: the plain id (a real EPERM fails there too).
            if !matches!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM)
            ) {
                return false;
            }
        }
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(self.pid, signal) == 0 }
    }

    /// Wait up to `timeout` for the process to end; true when it has.
    pub(crate) fn wait_gone(&self, timeout: std::time::Duration) -> bool {
        let Some(fd) = self.fd else {
            return false;
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: poll on one valid pollfd that lives for the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        rc > 0
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        if let Some(fd) = self.fd {
            // SAFETY: closing the descriptor this handle owns, once.
            unsafe { libc::close(fd) };
        }
    }
}

/// The process group of `pid` (negative when it is gone).
pub(crate) fn process_group_of(pid: i32) -> i32 {
    // SAFETY: getpgid only inspects a process.
    unsafe { libc::getpgid(pid) }
}

/// This process's own group.
pub(crate) fn own_process_group() -> i32 {
    // SAFETY: getpgrp has no failure mode.
    unsafe { libc::getpgrp() }
}

/// Wait until child `pid` has exited without reaping it (its pid, which is its group id, stays
/// reserved while it is a zombie, so signalling the group afterwards cannot hit a stranger).
pub(crate) fn wait_exit_no_reap(pid: i32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a valid out-parameter; WNOWAIT leaves the child a zombie.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Block until the wall clock is set (NTP step, manual change, resume from suspend), using a
/// CLOCK_REALTIME timerfd armed far in the future with cancel-on-set. `Ok(())` when the clock
/// was set; `Err` when the kernel cannot do it (the caller then stops watching).
pub(crate) fn wait_for_clock_set() -> Result<(), String> {
    loop {
        // SAFETY: creates a file descriptor this function owns and closes below.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err("timerfd unavailable".into());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: i32::MAX as libc::time_t,
                tv_nsec: 0,
            },
        };
        // SAFETY: `fd` is ours; `spec` is a valid itimerspec; no old value is asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                fd,
                libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            // SAFETY: closing the descriptor we own.
            unsafe { libc::close(fd) };
            return Err("timerfd cancel-on-set unavailable".into());
        }
        let mut buf = [0u8; 8];
        // SAFETY: reading at most 8 bytes into an 8-byte buffer from our descriptor.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 8) };
        let err = io::Error::last_os_error();
        // SAFETY: closing the descriptor we own.
        unsafe { libc::close(fd) };
        if n < 0 && err.raw_os_error() == Some(libc::ECANCELED) {
            return Ok(());
        }
        if n < 0 && err.kind() != io::ErrorKind::Interrupted {
            return Err(format!("timerfd read failed: {err}"));
        }
    }
}

/// Set an environment variable. Only for tests that own the variable; the server never calls
/// it once threads run.
/// Cap glibc's malloc at `arenas` arenas. By default it makes up to eight per core, one for
/// each thread that allocates while another holds an arena; each keeps the memory freed into
/// it, so a server with a few dozen short-lived threads holds several idle heaps. Call before
/// other threads start. A no-op where the C library is not glibc.
pub(crate) fn limit_malloc_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; any value is accepted or refused by it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Give the heap's free pages back to the kernel (after start-up, whose reads leave freed memory
/// behind). A no-op where the C library is not glibc.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own heaps to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
pub(crate) fn set_env_for_test(key: &str, value: Option<&std::ffi::OsStr>) {
    // SAFETY: the calling test is the only reader and writer of this variable.
    unsafe {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

/// This process's effective user id.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() }
}

/// Become `uid`:`gid` for good, with no supplementary groups (a root host command that must
/// write files as their owner). Checked afterwards: root cannot be taken back.
pub(crate) fn become_user(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: setgroups with an empty list, then setgid and setuid; plain system calls.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() != uid || libc::getegid() != gid) {
            return Err(io::Error::other("the user change did not hold"));
        }
    }
    Ok(())
}
