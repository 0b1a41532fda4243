//! Per-list access (SPEC §10.4): public, bearer tokens (header or `?token=`), HTTP basic users, and client
//! networks. Secrets are compared in constant time and never logged.

use std::net::IpAddr;

use axum::http::{header, HeaderMap};
use base64::Engine;

use crate::config::{Access, Restricted};

/// What a request may do with a list.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No valid credentials: 401 with a challenge.
    Unauthorized,
    /// The client's network is not allowed: 403.
    Forbidden,
}

/// The client's address, as the server saw the connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

/// Parses `10.0.0.0/8` or `192.0.2.7` into a network.
pub fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = if p.is_empty() {
        max
    } else {
        p.parse().ok().filter(|p| *p <= max)?
    };
    Some((addr, prefix))
}

fn contains((net, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Equality whose time does not depend on where two equal-length secrets differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn any_secret(secrets: &[String], given: &str) -> bool {
    // Every configured secret is compared, so the time does not tell which one (if any) matched.
    secrets
        .iter()
        .map(|s| Restricted::resolve(s))
        .filter(|s| !s.is_empty())
        .fold(false, |hit, s| {
            constant_time_eq(s.as_bytes(), given.as_bytes()) | hit
        })
}

/// Decides a request for a list with `access`.
pub fn check(
    access: &Access,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Decision {
    let Access::Restricted(r) = access else {
        return Decision::Allow;
    };
    if !r.allow_from.is_empty() {
        let inside = peer.is_some_and(|ip| {
            r.allow_from
                .iter()
                .filter_map(|n| parse_net(n))
                .any(|n| contains(n, ip))
        });
        if !inside {
            return Decision::Forbidden;
        }
    }
    if r.tokens.is_empty() && r.basic.is_empty() {
        return Decision::Allow;
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(t) = auth.strip_prefix("Bearer ").map(str::trim) {
        if any_secret(&r.tokens, t) {
            return Decision::Allow;
        }
    }
    if let Some(t) = query_token {
        if any_secret(&r.tokens, t) {
            return Decision::Allow;
        }
    }
    if let Some(b) = auth.strip_prefix("Basic ").map(str::trim) {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b) {
            if let Ok(pair) = String::from_utf8(raw) {
                if any_secret(&r.basic, &pair) {
                    return Decision::Allow;
                }
            }
        }
    }
    Decision::Unauthorized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restricted(tokens: &[&str], basic: &[&str], nets: &[&str]) -> Access {
        Access::Restricted(Restricted {
            tokens: tokens.iter().map(|s| s.to_string()).collect(),
            basic: basic.iter().map(|s| s.to_string()).collect(),
            allow_from: nets.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn decisions() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        let none = HeaderMap::new();
        let a = restricted(&["s3cret-token"], &["soc:pw"], &[]);
        assert_eq!(check(&Access::Public, None, &none, None), Decision::Allow);
        assert_eq!(check(&a, None, &none, None), Decision::Unauthorized);
        assert_eq!(
            check(&a, None, &h("Bearer s3cret-token"), None),
            Decision::Allow
        );
        assert_eq!(
            check(&a, None, &h("Bearer s3cret-tokeX"), None),
            Decision::Unauthorized
        );
        assert_eq!(
            check(&a, None, &none, Some("s3cret-token")),
            Decision::Allow
        );
        assert_eq!(check(&a, None, &h("Basic c29jOnB3"), None), Decision::Allow); // soc:pw
        assert_eq!(
            check(&a, None, &h("Basic c29jOnB4"), None),
            Decision::Unauthorized
        );
        let n = restricted(&[], &[], &["10.0.0.0/8"]);
        assert_eq!(
            check(&n, Some("10.1.2.3".parse().unwrap()), &none, None),
            Decision::Allow
        );
        assert_eq!(
            check(&n, Some("127.0.0.1".parse().unwrap()), &none, None),
            Decision::Forbidden
        );
        assert_eq!(
            check(&n, Some("::ffff:10.1.2.3".parse().unwrap()), &none, None),
            Decision::Allow
        );
        assert_eq!(check(&n, None, &none, None), Decision::Forbidden);
        // An unset env: secret matches nothing, not the empty string.
        let e = restricted(&["env:IOCFEED_TEST_UNSET_TOKEN"], &[], &[]);
        assert_eq!(
            check(&e, None, &h("Bearer "), Some("")),
            Decision::Unauthorized
        );
    }
}
