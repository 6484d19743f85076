//! The process's file descriptor limit and the connection limit derived from it.
//!
//! Every connection costs a descriptor, and a process that runs out of them can accept
//! nothing at all, not even the connection that would tell a client why. So at start
//! the soft limit is raised to the hard one (as Go's runtime and nginx do), and the
//! router admits at most that many connections minus a reserve, which keeps
//! descriptors for the listeners, logs, future database connections, and for answering
//! refusals at the limit.

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in force.
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), soft = lim.rlim_cur, "cannot raise the descriptor limit");
        }
    }
    Ok(lim.rlim_cur)
}

/// Descriptors kept back from connections: a twentieth of the limit, at least 64.
pub fn reserve(nofile: u64) -> usize {
    usize::try_from(nofile / 20).unwrap_or(usize::MAX).max(64)
}

/// Connections the router may admit: `max_sessions`, or fewer when the descriptor
/// limit minus the reserve is lower (at least 1).
pub fn connection_limit(nofile: u64, max_sessions: usize) -> usize {
    let available = usize::try_from(nofile).unwrap_or(usize::MAX).saturating_sub(reserve(nofile));
    max_sessions.min(available).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_a_reserve() {
        assert_eq!((reserve(256), connection_limit(256, 100_000)), (64, 192));
        assert_eq!((reserve(20_000), connection_limit(20_000, 100_000)), (1_000, 19_000));
        assert_eq!(connection_limit(1 << 20, 100_000), 100_000);
        assert_eq!(connection_limit(10, 100_000), 1);
    }

    #[test]
    fn raising_never_lowers() {
        let before = {
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
            lim
        };
        let now = raise_nofile().unwrap();
        assert!(now >= before.rlim_cur);
        assert!(now <= before.rlim_max);
    }
}
