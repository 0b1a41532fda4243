//! `edl`: a PAN-OS External Dynamic List (SPEC §9.9). Domain lists carry `name` and `*.name` (no wildcard for
//! compromised sites), IP lists bare addresses, URL lists the URL without its scheme (PAN-OS's URL form).

use super::Entry;
use crate::normalise::{is_valid, IocType};

pub fn render(entries: &[Entry]) -> Vec<u8> {
    let mut out = String::new();
    for e in entries.iter().filter(|e| is_valid(e.ioc_type, &e.value)) {
        match e.ioc_type {
            IocType::Domain => {
                out.push_str(&e.value);
                out.push('\n');
                if !e.is_compromised {
                    out.push_str("*.");
                    out.push_str(&e.value);
                    out.push('\n');
                }
            }
            IocType::Url => {
                let bare = e
                    .value
                    .split_once("://")
                    .map_or(e.value.as_str(), |(_, rest)| rest);
                out.push_str(bare);
                out.push('\n');
            }
            _ => {
                out.push_str(&e.value);
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}
