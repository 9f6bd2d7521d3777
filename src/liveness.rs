//! Dead-peer detection: TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged,
//! keepalive probes an idle connection. Without them a black-holed peer looks alive for
//! about 15 minutes of retransmits (tcp_retries2).
//!
//! On Linux the two interact: once a user timeout is set, it, and no longer the probe
//! count, decides when keepalive gives up (tcp(7); the kernel's keepalive timer drops the
//! connection when the peer has been silent for the user timeout and a probe is out). So
//! a user timeout the library chose by default must not outlast keepalive the caller
//! asked for: it follows the keepalive instead (gRPC's rule, TCP_USER_TIMEOUT = the
//! keepalive timeout). A user timeout the caller chose is the caller's and always wins.

use std::ffi::c_int;

/// What a connection gets when neither the context options nor the caller say otherwise.
/// Server connections are left as the caller made the socket; client connections, whose
/// peer is a server that should answer, get these (see the header for the trade-off).
pub(crate) const CLIENT_USER_TIMEOUT_MS: u32 = 30_000;
pub(crate) const CLIENT_KEEPALIVE_S: u32 = 15;

/// TCP settings from the context options, applied to each new connection. None: the
/// option is not set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub user_timeout_ms: Option<u32>,
    pub keepalive_s: Option<u32>,
}

/// Who decides a connection's TCP_USER_TIMEOUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserTimeout {
    /// The caller (the tcp-user-timeout option or conn_tls_set_user_timeout): kept as set.
    Caller,
    /// The library's client default: CLIENT_USER_TIMEOUT_MS with the default keepalive,
    /// and the keepalive's own deadline once the caller sets keepalive.
    FollowsKeepalive,
    /// Nobody: the socket keeps what it had (server connections by default).
    Untouched,
}

/// Valkey's anetKeepAlive shape for a single keepalive number: probes start after `s`
/// idle seconds, then every s/3 seconds, three of them.
fn keepalive_shape(s: u32) -> (u32, u32, u32) {
    (s, (s / 3).max(1), 3)
}

/// The user timeout that ends keepalive where its probe count would: half an interval
/// before the last probe's answer is due. The kernel checks only on its keepalive ticks
/// (idle, then every interval), so the tick of the count-th unanswered probe is the
/// first at which the peer has been silent this long, with room for timer rounding.
pub fn user_timeout_for_keepalive(idle_s: u32, interval_s: u32, count: u32) -> u32 {
    let (idle, interval, count) = (u64::from(idle_s), u64::from(interval_s), u64::from(count));
    let ms = (idle + interval * count).saturating_mul(1000).saturating_sub(interval * 500);
    ms.min(c_int::MAX as u64) as u32
}

impl Liveness {
    /// Applies the options (and, for clients, the defaults) to a new connection's socket;
    /// returns who decides its user timeout from now on.
    pub fn apply(&self, fd: c_int, client: bool) -> Result<UserTimeout, String> {
        let keepalive = match (self.keepalive_s, client) {
            (Some(s), _) => Some(keepalive_shape(s)),
            (None, true) => Some(keepalive_shape(CLIENT_KEEPALIVE_S)),
            (None, false) => None,
        };
        if let Some((idle, interval, count)) = keepalive {
            set_keepalive(fd, idle, interval, count)?;
        }
        let owner = match (self.user_timeout_ms, client) {
            (Some(ms), _) => {
                set_user_timeout(fd, ms)?;
                UserTimeout::Caller
            }
            (None, true) => {
                // The default keepalive and the default user timeout agree (probes at 15,
                // 20, 25 s, given up at 30 s); a keepalive option sets the pace instead.
                let ms = self.keepalive_s.map_or(CLIENT_USER_TIMEOUT_MS, |s| {
                    let (idle, interval, count) = keepalive_shape(s);
                    user_timeout_for_keepalive(idle, interval, count)
                });
                set_user_timeout(fd, ms)?;
                UserTimeout::FollowsKeepalive
            }
            (None, false) => UserTimeout::Untouched,
        };
        Ok(owner)
    }
}

/// Sets keepalive as the caller asked and, where the library chose the user timeout,
/// moves that to match (keepalive off: back to the client default).
pub fn set_keepalive_for(fd: c_int, owner: UserTimeout, idle_s: u32, interval_s: u32, count: u32) -> Result<(), String> {
    set_keepalive(fd, idle_s, interval_s, count)?;
    if owner == UserTimeout::FollowsKeepalive {
        let ms = if idle_s == 0 { CLIENT_USER_TIMEOUT_MS } else { user_timeout_for_keepalive(idle_s, interval_s, count) };
        set_user_timeout(fd, ms)?;
    }
    Ok(())
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

/// The peer has closed its sending side (or the socket failed): POLLRDHUP shows a FIN even
/// behind unread data. One poll, never waiting.
pub fn peer_has_closed(fd: c_int) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
    let ready = unsafe { libc::poll(&mut p, 1, 0) };
    ready == 1 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_timeout_ends_at_the_last_probe() {
        assert_eq!(user_timeout_for_keepalive(1, 1, 2), 2500);
        assert_eq!(user_timeout_for_keepalive(15, 5, 3), 27_500);
        // The kernel's largest values do not overflow.
        assert_eq!(user_timeout_for_keepalive(u32::MAX, u32::MAX, u32::MAX), c_int::MAX as u32);
    }
}
