//! `edl`: a PAN-OS External Dynamic List (SPEC §9.9). Domain lists carry `name` and `*.name` (no wildcard for
//! compromised sites), IP lists bare addresses, URL lists the URL without its scheme (PAN-OS's URL form;
//! http and https URLs only, since a URL list applies to web traffic).

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
                // PAN-OS matches URL lists against web traffic only, and the entry has no scheme: a
                // `tcp://host:4959/` C2 written as `host:4959/` would block the host's web traffic instead.
                let Some(bare) = e
                    .value
                    .strip_prefix("http://")
                    .or_else(|| e.value.strip_prefix("https://"))
                else {
                    continue;
                };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::Entry;
    use std::collections::BTreeSet;

    fn url(v: &str) -> Entry {
        Entry {
            ioc_type: IocType::Url,
            value: v.into(),
            families: BTreeSet::new(),
            threat_types: BTreeSet::new(),
            confidence: 100,
            score: 100,
            first_seen: None,
            last_seen: None,
            is_compromised: false,
            references: BTreeSet::new(),
            tags: BTreeSet::new(),
            ports: BTreeSet::new(),
            sources: BTreeSet::new(),
        }
    }

    #[test]
    fn url_lists_hold_web_urls_without_their_scheme() {
        let out = render(&[
            url("http://c2.evil-host.xyz/gate.php"),
            url("https://c2.evil-host.xyz:8443/x"),
            url("tcp://c2.evil-host.xyz:4959/"),
        ]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "c2.evil-host.xyz/gate.php\nc2.evil-host.xyz:8443/x\n"
        );
    }
}
