//! Connections per client. The server-wide cap alone lets one client that opens many slow connections
//! lock every other client out; a per-client cap keeps a resolver or firewall fetching while one
//! misbehaving host waits. IPv6 clients are counted per /64, the block one host usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client, with a cap.
pub struct ClientSlots {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; the slot is freed when it is dropped.
pub struct Slot {
    slots: Arc<ClientSlots>,
    key: IpAddr,
}

impl ClientSlots {
    pub fn new(cap: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `peer`, or `None` when that client already has `cap` open.
    pub fn take(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let key = client_key(peer);
        let mut open = self.open.lock().unwrap();
        let n = open.entry(key).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The unit a client is counted in: its IPv4 address (IPv4-mapped IPv6 included), or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_cap_slots_and_frees_them() {
        let slots = ClientSlots::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = slots.take(a).unwrap();
        let _s2 = slots.take(a).unwrap();
        assert!(slots.take(a).is_none());
        assert!(slots.take(b).is_some());
        drop(s1);
        assert!(slots.take(a).is_some());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let slots = ClientSlots::new(1);
        let _x = slots.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(slots
            .take("2001:db8:1:2:ffff::9".parse().unwrap())
            .is_none());
        assert!(slots.take("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _y = slots.take("192.0.2.9".parse().unwrap()).unwrap();
        assert!(slots.take("::ffff:192.0.2.9".parse().unwrap()).is_none());
    }
}
