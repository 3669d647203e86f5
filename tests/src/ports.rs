//! Is something listening on a port inside a namespace? Read passively from
//! `/proc/thread-self/net/{tcp,udp}{,6}` by a thread that joined the namespace, so
//! the check sends no packet and cannot disturb the daemon under test.

use std::fs;

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// A TCP socket in LISTEN state.
    Tcp,
    /// Any bound UDP socket.
    Udp,
}

/// TCP state code for LISTEN in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// Whether the calling thread's network namespace has a `proto` socket bound to
/// `port` (TCP: listening). Must run on a thread that joined the namespace.
pub(crate) fn bound_in_current_netns(proto: Proto, port: u16) -> bool {
    let files: [&str; 2] = match proto {
        Proto::Tcp => ["tcp", "tcp6"],
        Proto::Udp => ["udp", "udp6"],
    };
    files.iter().any(|f| {
        fs::read_to_string(format!("/proc/thread-self/net/{f}"))
            .is_ok_and(|table| table_has(&table, proto, port))
    })
}

/// Whether a `/proc/net/{tcp,udp}` table lists a matching socket.
fn table_has(table: &str, proto: Proto, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1);
        let state = cols.nth(1);
        let local_port = local
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        local_port == Some(port) && (proto == Proto::Udp || state == Some(TCP_LISTEN))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
";

    #[test]
    fn finds_listening_tcp_port_only() {
        assert!(table_has(TCP, Proto::Tcp, 53));
        // 8080 is an established connection, not a listener.
        assert!(!table_has(TCP, Proto::Tcp, 8080));
        assert!(!table_has(TCP, Proto::Tcp, 54));
    }

    #[test]
    fn any_bound_udp_socket_counts() {
        let udp = "  sl  local_address rem_address   st
  10: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 3 2 0 0
";
        assert!(table_has(udp, Proto::Udp, 67));
        assert!(!table_has(udp, Proto::Udp, 68));
    }
}
