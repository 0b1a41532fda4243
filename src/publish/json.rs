//! `json`: an array of objects sorted by value, with the keys of SPEC §9.5.

use serde::Serialize;

use super::Entry;
use crate::clock::iso;
use crate::normalise::{is_valid, IocType};

#[derive(Serialize)]
pub struct JsonEntry<'a> {
    pub value: &'a str,
    #[serde(rename = "type")]
    pub ioc_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    pub families: Vec<&'a str>,
    pub threat_types: Vec<&'a str>,
    pub confidence: u8,
    pub score: u8,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub is_compromised: bool,
    pub tags: Vec<&'a str>,
    pub references: Vec<&'a str>,
    pub sources: Vec<&'a str>,
}

impl<'a> JsonEntry<'a> {
    pub fn from(e: &'a Entry) -> JsonEntry<'a> {
        let v = |s: &'a std::collections::BTreeSet<String>| s.iter().map(String::as_str).collect();
        JsonEntry {
            value: &e.value,
            ioc_type: e.ioc_type.as_str(),
            ports: (e.ioc_type == IocType::Ip).then(|| e.ports.iter().copied().collect()),
            families: v(&e.families),
            threat_types: v(&e.threat_types),
            confidence: e.confidence,
            score: e.score,
            first_seen: e.first_seen.map(iso),
            last_seen: e.last_seen.map(iso),
            is_compromised: e.is_compromised,
            tags: v(&e.tags),
            references: v(&e.references),
            sources: v(&e.sources),
        }
    }
}

pub fn render(entries: &[Entry]) -> Vec<u8> {
    let items: Vec<JsonEntry> = entries
        .iter()
        .filter(|e| is_valid(e.ioc_type, &e.value))
        .map(JsonEntry::from)
        .collect();
    let mut out = serde_json::to_vec_pretty(&items).unwrap_or_else(|_| b"[]".to_vec());
    out.push(b'\n');
    out
}
