//! `txt`: one value per line, nothing else (SPEC §9.1) — the one shape every firewall parser accepts.

use super::Entry;
use crate::normalise::is_valid;

pub fn render(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if is_valid(e.ioc_type, &e.value) {
            out.extend_from_slice(e.value.as_bytes());
            out.push(b'\n');
        } else {
            tracing::warn!(value = %e.value.escape_debug(), "txt: refusing an invalid value");
        }
    }
    out
}
