//! Publishing: select each list's entries from the store, and when the set changed, mint a new version and
//! render every format once (SPEC §9). Rendered bytes are stored with the version and never re-rendered.

pub mod csv;
pub mod edl;
pub mod hosts;
pub mod json;
pub mod kql;
pub mod report;
pub mod rpz;
pub mod stix;
pub mod txt;

use std::collections::{BTreeSet, HashSet};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::allow::Allowlist;
use crate::config::{Config, Format, ListConfig};
use crate::normalise::IocType;
use crate::score;
use crate::store::{self, Artifact, VersionRow};

/// One entry of a list, with the merged attributes that the richer formats show.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub ioc_type: IocType,
    pub value: String,
    pub families: BTreeSet<String>,
    pub threat_types: BTreeSet<String>,
    pub confidence: u8,
    pub score: u8,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub is_compromised: bool,
    pub references: BTreeSet<String>,
    pub tags: BTreeSet<String>,
    pub ports: BTreeSet<u16>,
    pub sources: BTreeSet<String>,
}

/// Everything a renderer needs besides the entries.
pub struct RenderContext<'a> {
    pub list: &'a ListConfig,
    pub version: i64,
    pub serial: i64,
    pub published_at: i64,
}

/// True when a report names one of `spellings` (lowercase) as its family, slug, or one of its aliases.
fn family_matches(r: &store::Sighting, spellings: &[String]) -> bool {
    let is = |s: &Option<String>| {
        s.as_deref()
            .is_some_and(|s| spellings.iter().any(|w| w.eq_ignore_ascii_case(s.trim())))
    };
    is(&r.family)
        || is(&r.malware)
        || r.alias.as_deref().is_some_and(|a| {
            a.split(',')
                .any(|x| spellings.iter().any(|w| w.eq_ignore_ascii_case(x.trim())))
        })
}

/// True when `name` is `pattern` or below it; `*.example.com` and `example.com` both cover the subtree.
pub fn name_covered(name: &str, pattern: &str) -> bool {
    let p = pattern
        .trim()
        .trim_start_matches("*.")
        .trim_end_matches('.');
    let p = p.to_ascii_lowercase();
    !p.is_empty()
        && (name == p
            || name
                .strip_suffix(p.as_str())
                .is_some_and(|h| h.ends_with('.')))
}

/// The host name an entry is about, for exclusions (domains, and the host of URLs).
fn entry_host(t: IocType, value: &str) -> Option<String> {
    match t {
        IocType::Domain => Some(value.to_string()),
        IocType::Url => url::Url::parse(value)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string)),
        _ => None,
    }
}

/// A list's entries at one moment, and the values left out for reasons that are not the feed's doing
/// (ageing, the allowlist, the `max_entries` cut): the safety brake does not count those as removals.
#[derive(Debug, Default)]
pub struct Selection {
    pub entries: Vec<Entry>,
    pub aged: HashSet<String>,
    pub allowed: HashSet<String>,
    /// Eligible, but ranked below `max_entries`: the cut moves as scores decay, which is no feed's doing.
    pub capped: HashSet<String>,
}

/// Selects the entries of `list` at time `now`, sorted by value.
pub fn select(
    conn: &Connection,
    cfg: &Config,
    allow: &Allowlist,
    list: &ListConfig,
    now: i64,
) -> store::Result<Selection> {
    let spellings: Vec<Vec<String>> = list
        .families
        .iter()
        .map(|f| match cfg.family(f) {
            Some(fc) => fc.spellings(),
            None => vec![f.to_lowercase()],
        })
        .collect();
    let excludes: Vec<&str> = list
        .families
        .iter()
        .filter_map(|f| cfg.family(f))
        .flat_map(|f| f.exclude.iter().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    let mut aged = HashSet::new();
    let mut allowed = HashSet::new();
    for t in list.ioc_types() {
        store::for_each_candidate(conn, t.as_str(), list.min_confidence, &mut |c| {
            let family_ok = spellings.is_empty()
                || c.reports
                    .iter()
                    .any(|r| spellings.iter().any(|s| family_matches(r, s)));
            let threat_ok = list.threat_types.is_empty()
                || c.reports.iter().any(|r| {
                    r.threat_type
                        .as_deref()
                        .is_some_and(|t| list.threat_types.iter().any(|w| w == t))
                });
            if !family_ok || !threat_ok {
                return;
            }
            let activity = score::activity(
                c.reports
                    .iter()
                    .map(|r| (r.first_seen, r.last_seen, r.pulled_last)),
            );
            if score::is_aged(&cfg.scoring, activity, now) {
                aged.insert(c.value.clone());
                return;
            }
            if allow.find(t, &c.value).is_some() {
                allowed.insert(c.value.clone());
                return;
            }
            if let Some(host) = entry_host(t, &c.value) {
                if excludes.iter().any(|p| name_covered(&host, p)) {
                    return;
                }
            }
            let terms = score::score(
                &cfg.scoring,
                c.confidence,
                activity,
                now,
                cfg.independent_reports(
                    c.reports
                        .iter()
                        .map(|r| (r.source.as_str(), r.report_id.as_str())),
                ),
                c.is_compromised,
            );
            if terms.score < list.min_score {
                return;
            }
            let mut e = Entry {
                ioc_type: t,
                value: c.value.clone(),
                families: BTreeSet::new(),
                threat_types: BTreeSet::new(),
                confidence: c.confidence,
                score: terms.score,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
                is_compromised: c.is_compromised,
                references: BTreeSet::new(),
                tags: BTreeSet::new(),
                ports: BTreeSet::new(),
                sources: BTreeSet::new(),
            };
            // Feed text (families, threat types, references, tags) is cleaned once here, for every format.
            let text = |s: &Option<String>| s.as_deref().map(clean_text).filter(|s| !s.is_empty());
            for r in &c.reports {
                e.families.extend(text(&r.family));
                e.threat_types.extend(text(&r.threat_type));
                e.references.extend(text(&r.reference));
                e.ports.extend(r.port.and_then(|p| u16::try_from(p).ok()));
                e.sources.insert(r.source.clone());
                if let Some(tags) = &r.tags {
                    e.tags
                        .extend(tags.split(',').map(clean_text).filter(|s| !s.is_empty()));
                }
            }
            out.push(e);
        })?;
    }
    let mut capped = HashSet::new();
    if list.max_entries > 0 && out.len() > list.max_entries {
        out.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.value.cmp(&b.value)));
        capped.extend(out.drain(list.max_entries..).map(|e| e.value));
    }
    out.sort_by(|a, b| a.value.cmp(&b.value).then(a.ioc_type.cmp(&b.ioc_type)));
    out.dedup_by(|a, b| a.value == b.value);
    Ok(Selection {
        entries: out,
        aged,
        allowed,
        capped,
    })
}

/// Free text from a feed, fit for any format: controls become spaces, invisible and direction-changing
/// code points (a "Trojan source" reorders what a reader sees) are dropped, blanks are trimmed, and the
/// length is capped.
pub fn clean_text(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| !crate::normalise::invisible(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect();
    cleaned.trim().to_string()
}

/// The entry set as stored with a version: sorted values, one per line.
pub fn members(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&e.value);
        s.push('\n');
    }
    s
}

/// Renders one format.
pub fn render(format: Format, ctx: &RenderContext, entries: &[Entry]) -> Vec<u8> {
    match format {
        Format::Txt => txt::render(entries),
        Format::Hosts => hosts::render(entries),
        Format::Rpz => rpz::render(ctx, entries),
        Format::Csv => csv::render(entries),
        Format::Json => json::render(entries),
        Format::Stix => stix::render(ctx, entries),
        Format::Kql => kql::render(ctx, entries),
        Format::Edl => edl::render(entries),
    }
}

/// Wraps rendered bytes with their gzip form (compressed once, deterministic: no name, no time) and ETag.
pub fn artifact(body: Vec<u8>) -> Artifact {
    use std::io::Write;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&body).expect("writing to memory");
    let gzip = gz.finish().expect("writing to memory");
    let etag = hex::encode(Sha256::digest(&body));
    Artifact { body, gzip, etag }
}

/// What publishing did to one list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub list: String,
    pub version: i64,
    pub entries: usize,
    pub changed: bool,
    /// Set when the safety brake held a change back.
    pub held: Option<String>,
}

/// The hold scope of a list.
pub fn list_scope(name: &str) -> String {
    format!("list:{name}")
}

/// Re-evaluates every list and mints versions where the set changed. Runs inside the caller's transaction.
/// `force` names a list the safety brake does not apply to (`iocfeed publish LIST --force`).
pub fn publish_all(
    tx: &Connection,
    cfg: &Config,
    now: i64,
    force: Option<&str>,
) -> store::Result<Vec<Outcome>> {
    let allow = Allowlist::load(tx, &cfg.allowlist.entries)?;
    let mut outcomes = Vec::new();
    for list in &cfg.lists {
        let sel = select(tx, cfg, &allow, list, now)?;
        let entries = &sel.entries;
        let set = members(entries);
        let latest = store::latest_version(tx, &list.name)?;
        if let Some(v) = latest.as_ref().filter(|v| v.members == set) {
            // Same set: no new version. Fill in formats added to the config since it was published.
            store::clear_hold(tx, &list_scope(&list.name))?;
            let ctx = RenderContext {
                list,
                version: v.version,
                serial: v.serial,
                published_at: v.published_at,
            };
            for f in &list.formats {
                if !store::has_artifact(tx, &list.name, v.version, f.as_str())? {
                    let a = artifact(render(*f, &ctx, entries));
                    store::insert_artifact(tx, &list.name, v.version, f.as_str(), &a)?;
                }
            }
            outcomes.push(Outcome {
                list: list.name.clone(),
                version: v.version,
                entries: entries.len(),
                changed: false,
                held: None,
            });
            continue;
        }
        if let Some(prev) = &latest {
            if let Some(reason) =
                brake(list, prev, &sel).filter(|_| force != Some(list.name.as_str()))
            {
                store::set_hold(tx, &list_scope(&list.name), &reason, now)?;
                tracing::warn!(
                    list = %list.name,
                    "publish held by the safety brake: {reason}; `iocfeed publish {} --force` releases it",
                    list.name
                );
                outcomes.push(Outcome {
                    list: list.name.clone(),
                    version: prev.version,
                    entries: prev.entries as usize,
                    changed: false,
                    held: Some(reason),
                });
                continue;
            }
        }
        store::clear_hold(tx, &list_scope(&list.name))?;
        let version = latest.as_ref().map_or(1, |v| v.version + 1);
        // Unix time as the serial, bumped past the last one issued: it increases with every version,
        // survives restarts, and still increases after a restore from an older backup.
        let serial = (store::last_serial(tx, &list.name)? + 1).max(now);
        let ctx = RenderContext {
            list,
            version,
            serial,
            published_at: now,
        };
        for f in &list.formats {
            let a = artifact(render(*f, &ctx, entries));
            store::insert_artifact(tx, &list.name, version, f.as_str(), &a)?;
        }
        store::insert_version(
            tx,
            &VersionRow {
                list: list.name.clone(),
                version,
                serial,
                published_at: now,
                entries: entries.len() as i64,
                members: set,
            },
        )?;
        store::prune(tx, &list.name, list.retain_versions)?;
        outcomes.push(Outcome {
            list: list.name.clone(),
            version,
            entries: entries.len(),
            changed: true,
            held: None,
        });
    }
    Ok(outcomes)
}

/// The safety brake (SPEC §8): why publishing `sel` over `prev` must wait, if it must. Entries that left by
/// ageing or the allowlist are the operator's doing, not the feed's, and do not count.
fn brake(list: &ListConfig, prev: &VersionRow, sel: &Selection) -> Option<String> {
    if prev.entries < 100 {
        return None;
    }
    let now: HashSet<&str> = sel.entries.iter().map(|e| e.value.as_str()).collect();
    let removed = prev
        .members
        .lines()
        .filter(|v| {
            !now.contains(v)
                && !sel.aged.contains(*v)
                && !sel.allowed.contains(*v)
                && !sel.capped.contains(*v)
        })
        .count();
    let ratio = removed as f64 / prev.entries as f64;
    (ratio > list.max_removal_ratio).then(|| {
        format!(
            "would remove {removed} of {} entries ({:.0}% > {:.0}%)",
            prev.entries,
            ratio * 100.0,
            list.max_removal_ratio * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_cover_subtrees_only() {
        assert!(name_covered(
            "http-inputs-triad.splunkcloud.com",
            "splunkcloud.com"
        ));
        assert!(name_covered("splunkcloud.com", "*.splunkcloud.com"));
        assert!(!name_covered("notsplunkcloud.com", "splunkcloud.com"));
        assert!(!name_covered("x.com", "*."));
    }

    #[test]
    fn gzip_is_deterministic() {
        let a = artifact(b"a.example.com\n".to_vec());
        let b = artifact(b"a.example.com\n".to_vec());
        assert_eq!(a.gzip, b.gzip);
        assert_eq!(a.etag.len(), 64);
    }
}
