//! Dead-peer detection: TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged,
//! keepalive probes an idle connection. Without them a black-holed peer looks alive for
//! about 15 minutes of retransmits (tcp_retries2).

use std::ffi::c_int;

/// What a connection gets when neither the context options nor the caller say otherwise.
/// Server connections are left as the caller made the socket; client connections, whose
/// peer is a server that should answer, get these (see the header for the trade-off).
pub(crate) const CLIENT_USER_TIMEOUT_MS: u32 = 30_000;
pub(crate) const CLIENT_KEEPALIVE_S: u32 = 15;

/// TCP settings applied to each new connection. None: leave the socket's own setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub user_timeout_ms: Option<u32>,
    pub keepalive_s: Option<u32>,
}

impl Liveness {
    /// Client connections fall back to the client defaults where the options are silent.
    pub fn for_client(self) -> Liveness {
        Liveness {
            user_timeout_ms: self.user_timeout_ms.or(Some(CLIENT_USER_TIMEOUT_MS)),
            keepalive_s: self.keepalive_s.or(Some(CLIENT_KEEPALIVE_S)),
        }
    }

    pub fn apply(&self, fd: c_int) -> Result<(), String> {
        if let Some(ms) = self.user_timeout_ms {
            set_user_timeout(fd, ms)?;
        }
        if let Some(s) = self.keepalive_s {
            // Valkey's anetKeepAlive shape: probes start after `s` idle seconds, then
            // every s/3 seconds, three of them.
            set_keepalive(fd, s, (s / 3).max(1), 3)?;
        }
        Ok(())
    }
}

fn setsockopt(fd: c_int, level: c_int, name: c_int, value: c_int, what: &str) -> Result<(), String> {
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(format!("cannot set {what} on fd {fd}: {}", std::io::Error::last_os_error()))
    }
}

/// 0 turns the user timeout off (the kernel's retransmit limit applies again).
pub fn set_user_timeout(fd: c_int, ms: u32) -> Result<(), String> {
    let ms = c_int::try_from(ms).map_err(|_| format!("user timeout {ms} ms is too large"))?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms, "TCP_USER_TIMEOUT")
}

/// idle_s 0 turns keepalive off; otherwise all three values must be at least 1.
pub fn set_keepalive(fd: c_int, idle_s: u32, interval_s: u32, count: u32) -> Result<(), String> {
    if idle_s == 0 {
        return setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0, "SO_KEEPALIVE");
    }
    let small = |v: u32, what: &str| {
        c_int::try_from(v).ok().filter(|v| *v >= 1).ok_or_else(|| format!("keepalive {what} must be 1 or more, got {v}"))
    };
    let (idle, interval, count) = (small(idle_s, "idle")?, small(interval_s, "interval")?, small(count, "count")?);
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1, "SO_KEEPALIVE")?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle, "TCP_KEEPIDLE")?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval, "TCP_KEEPINTVL")?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, count, "TCP_KEEPCNT")
}

/// Words for a socket error, naming a dead peer as such.
pub fn describe_socket_error(errno: c_int) -> String {
    match errno {
        libc::ETIMEDOUT => "peer timed out: sent data stayed unacknowledged past the TCP user timeout, \
                            or keepalive probes went unanswered"
            .to_string(),
        libc::ECONNRESET => "connection reset by peer".to_string(),
        libc::EPIPE => "peer closed the connection (broken pipe)".to_string(),
        e => format!("socket error: {}", std::io::Error::from_raw_os_error(e)),
    }
}
