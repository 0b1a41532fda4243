//! `hosts`: `0.0.0.0 name` lines, for hosts-file blockers (SPEC §9.2).

use super::Entry;
use crate::normalise::{is_valid, IocType};

pub fn render(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.ioc_type == IocType::Domain && is_valid(e.ioc_type, &e.value))
    {
        out.extend_from_slice(b"0.0.0.0 ");
        out.extend_from_slice(e.value.as_bytes());
        out.push(b'\n');
    }
    out
}
