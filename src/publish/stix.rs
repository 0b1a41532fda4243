//! `stix`: a STIX 2.1 bundle of `indicator` objects (SPEC §9.6), valid for the OASIS `stix2-validator`.
//!
//! Identifiers are derived from a hash of what they name (shaped as UUIDv4, which the STIX validator expects
//! of objects that are not cyber observables), so the same data renders the same bytes.

use serde_json::{json, Value};
use uuid::Uuid;

use super::{Entry, RenderContext};
use crate::clock::iso;
use crate::normalise::{is_valid, IocType};

/// A stable UUID (v4 layout) for `name`.
fn stable_id(name: &str) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("iocfeed:{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// STIX timestamps carry milliseconds.
fn stix_time(t: i64) -> String {
    let s = iso(t);
    format!("{}.000Z", s.trim_end_matches('Z'))
}

/// A STIX pattern string literal: `\` and `'` escaped.
fn lit(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub fn pattern(t: IocType, value: &str) -> String {
    match t {
        IocType::Domain => format!("[domain-name:value = {}]", lit(value)),
        IocType::Ip if value.contains(':') => format!("[ipv6-addr:value = {}]", lit(value)),
        IocType::Ip => format!("[ipv4-addr:value = {}]", lit(value)),
        IocType::Url => format!("[url:value = {}]", lit(value)),
        IocType::Md5 => format!("[file:hashes.MD5 = {}]", lit(value)),
        IocType::Sha1 => format!("[file:hashes.'SHA-1' = {}]", lit(value)),
        IocType::Sha256 => format!("[file:hashes.'SHA-256' = {}]", lit(value)),
    }
}

pub fn render(ctx: &RenderContext, entries: &[Entry]) -> Vec<u8> {
    let published = stix_time(ctx.published_at);
    let mut objects = Vec::new();
    for e in entries.iter().filter(|e| is_valid(e.ioc_type, &e.value)) {
        let id = stable_id(&format!("{}:{}", e.ioc_type.as_str(), e.value));
        // created ≤ modified: an indicator is created when first seen (or published, if earlier unknown).
        let created = stix_time(
            e.first_seen
                .unwrap_or(ctx.published_at)
                .min(ctx.published_at),
        );
        let families: Vec<&str> = e.families.iter().map(String::as_str).collect();
        let mut o = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": format!("indicator--{id}"),
            "created": created,
            "modified": published,
            "name": format!("{} {}", e.ioc_type.as_str(), e.value),
            "description": format!("{} ({})", if families.is_empty() { "unknown family".to_string() } else { families.join(", ") },
                e.threat_types.iter().map(String::as_str).collect::<Vec<_>>().join(", ")),
            "indicator_types": ["malicious-activity"],
            "pattern": pattern(e.ioc_type, &e.value),
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": created,
            "confidence": e.confidence,
        });
        let labels: Vec<String> = e
            .tags
            .iter()
            .filter(|t| !t.trim().is_empty())
            .cloned()
            .collect();
        if !labels.is_empty() {
            o["labels"] = json!(labels);
        }
        // Feed references are free text: only a URL that passes the same checks as a URL indicator is kept.
        let refs: Vec<Value> = e
            .references
            .iter()
            .filter_map(|r| crate::normalise::url(r).ok())
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(|u| json!({"source_name": "reference", "url": u}))
            .collect();
        if !refs.is_empty() {
            o["external_references"] = json!(refs);
        }
        objects.push(o);
    }
    let bundle_id = stable_id(&format!("bundle:{}:{}", ctx.list.name, ctx.version));
    let bundle =
        json!({"type": "bundle", "id": format!("bundle--{bundle_id}"), "objects": objects});
    let mut out = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_quotes() {
        assert_eq!(
            pattern(IocType::Url, "http://x.example/a'b"),
            "[url:value = 'http://x.example/a\\'b']"
        );
        assert_eq!(
            pattern(IocType::Ip, "2a01:4f8::1"),
            "[ipv6-addr:value = '2a01:4f8::1']"
        );
        assert_eq!(pattern(IocType::Sha1, "ab"), "[file:hashes.'SHA-1' = 'ab']");
    }
}
