//! `stix`: a STIX 2.1 bundle of `indicator` objects (SPEC §9.6), valid for the OASIS `stix2-validator`.
//!
//! Identifiers are UUIDv5 of the list, version and value, so the same data renders the same bytes.

use serde_json::{json, Value};
use uuid::Uuid;

use super::{Entry, RenderContext};
use crate::clock::iso;
use crate::normalise::{is_valid, IocType};

/// iocfeed's UUIDv5 namespace.
const NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c52_8e0b_4d7e_9f21_0c4b_7d93_e5a8);

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
    let published = iso(ctx.published_at);
    let mut objects = Vec::new();
    for e in entries.iter().filter(|e| is_valid(e.ioc_type, &e.value)) {
        let id = Uuid::new_v5(&NAMESPACE, format!("{}:{}", e.ioc_type.as_str(), e.value).as_bytes());
        // created ≤ modified: an indicator is created when first seen (or published, if earlier unknown).
        let created = iso(e.first_seen.unwrap_or(ctx.published_at).min(ctx.published_at));
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
        let labels: Vec<String> = e.tags.iter().filter(|t| !t.trim().is_empty()).cloned().collect();
        if !labels.is_empty() {
            o["labels"] = json!(labels);
        }
        let refs: Vec<Value> = e
            .references
            .iter()
            .filter(|r| url::Url::parse(r).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
            .map(|r| json!({"source_name": "reference", "url": url::Url::parse(r).map(|u| u.to_string()).unwrap_or_default()}))
            .collect();
        if !refs.is_empty() {
            o["external_references"] = json!(refs);
        }
        objects.push(o);
    }
    let bundle_id = Uuid::new_v5(&NAMESPACE, format!("bundle:{}:{}", ctx.list.name, ctx.version).as_bytes());
    let bundle = json!({"type": "bundle", "id": format!("bundle--{bundle_id}"), "objects": objects});
    let mut out = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_quotes() {
        assert_eq!(pattern(IocType::Url, "http://x.example/a'b"), "[url:value = 'http://x.example/a\\'b']");
        assert_eq!(pattern(IocType::Ip, "2a01:4f8::1"), "[ipv6-addr:value = '2a01:4f8::1']");
        assert_eq!(pattern(IocType::Sha1, "ab"), "[file:hashes.'SHA-1' = 'ab']");
    }
}
