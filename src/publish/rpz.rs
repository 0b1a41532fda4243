//! `rpz`: a DNS Response Policy Zone (SPEC §9.3) that BIND, Unbound, PowerDNS and Knot all load.
//!
//! Shape: `$TTL`, one SOA and one NS at the apex and nothing else there; relative lowercase owner names, no
//! `$ORIGIN` or `$INCLUDE`; one owner per trigger (PowerDNS before 5.0 refuses a zone with duplicates).
//! IP triggers carry their prefix length (`32.…rpz-ip`, `128.…rpz-ip`): PowerDNS drops a zone without it.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use super::{Entry, RenderContext};
use crate::config::RpzAction;
use crate::normalise::{is_valid, IocType};

/// The longest owner name, as text without the final dot, whose wire form still fits 255 octets.
const MAX_NAME: usize = 253;

pub fn render(ctx: &RenderContext, entries: &[Entry]) -> Vec<u8> {
    let zone = ctx.list.rpz_zone();
    let rpz = &ctx.list.rpz;
    let target = match rpz.action {
        RpzAction::Nxdomain => ".",
        RpzAction::Nodata => "*.",
        RpzAction::Drop => "rpz-drop.",
        RpzAction::Passthru => "rpz-passthru.",
    };
    let mut out = String::new();
    let _ = writeln!(out, "$TTL {}", rpz.ttl);
    let _ = writeln!(
        out,
        "@ IN SOA localhost. hostmaster.localhost. {} 3600 600 604800 {}",
        ctx.serial as u32, rpz.ttl
    );
    out.push_str("@ IN NS localhost.\n");
    let fits = |owner: &str| owner.len() + 1 + zone.len() <= MAX_NAME;
    let mut owners = BTreeSet::new();
    for e in entries {
        if !is_valid(e.ioc_type, &e.value) {
            tracing::warn!(value = %e.value.escape_debug(), "rpz: refusing an invalid value");
            continue;
        }
        let mut triggers = Vec::new();
        match e.ioc_type {
            IocType::Domain => {
                triggers.push(e.value.clone());
                // A hijacked legitimate site is blocked by name only: its subdomains are the victim's.
                if rpz.wildcard && !e.is_compromised {
                    triggers.push(format!("*.{}", e.value));
                }
            }
            IocType::Ip => match e.value.parse::<IpAddr>() {
                Ok(ip) => triggers.push(ip_trigger(ip)),
                Err(_) => continue,
            },
            _ => continue,
        }
        for owner in triggers {
            if !fits(&owner) {
                tracing::warn!(%owner, %zone, "rpz: name too long once the zone is appended; skipped");
                continue;
            }
            if owners.insert(owner.clone()) {
                let _ = writeln!(out, "{owner} CNAME {target}");
            }
        }
    }
    out.into_bytes()
}

/// The RPZ trigger owner for an address: `32.d.c.b.a.rpz-ip`, or `128.<hextets reversed, zz>.rpz-ip`.
pub fn ip_trigger(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("32.{d}.{c}.{b}.{a}.rpz-ip")
        }
        IpAddr::V6(v6) => {
            // RFC 5952 text (what Display gives) compresses the longest zero run to `::`; RPZ writes it `zz`.
            let text = v6.to_string();
            let (left, right) = text.split_once("::").unwrap_or((&text, ""));
            let split = |s: &str| -> Vec<String> {
                s.split(':')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            let mut parts: Vec<String> = split(right).into_iter().rev().collect();
            if text.contains("::") {
                parts.push("zz".into());
            }
            parts.extend(split(left).into_iter().rev());
            format!("128.{}.rpz-ip", parts.join("."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_triggers() {
        assert_eq!(
            ip_trigger("45.192.105.203".parse().unwrap()),
            "32.203.105.192.45.rpz-ip"
        );
        assert_eq!(
            ip_trigger("2a01:4f8:c17:1::1".parse().unwrap()),
            "128.1.zz.1.c17.4f8.2a01.rpz-ip"
        );
        assert_eq!(
            ip_trigger("2a01:4f8:0:1:2:3:4:5".parse().unwrap()),
            "128.5.4.3.2.1.0.4f8.2a01.rpz-ip"
        );
        assert_eq!(ip_trigger("2a00::".parse().unwrap()), "128.zz.2a00.rpz-ip");
    }
}
