//! `iocfeed ioc VALUE` and `GET /iocs?value=V`: what iocfeed knows of one value and why it is (not) listed.

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::allow::Allowlist;
use crate::clock::iso;
use crate::config::Config;
use crate::normalise::{self, IocType};
use crate::score;
use crate::store;

/// Listed parents of a name whose wildcard rules (RPZ `*.parent`, EDL `*.parent`) also block it.
fn covering_parents(conn: &Connection, cfg: &Config, name: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut rest = name;
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') {
            break;
        }
        let mut lists = Vec::new();
        for l in cfg
            .lists
            .iter()
            .filter(|l| l.types.iter().any(|t| t == "domain"))
        {
            let wildcards = (l.formats.contains(&crate::config::Format::Rpz) && l.rpz.wildcard)
                || l.formats.contains(&crate::config::Format::Edl);
            if !wildcards {
                continue;
            }
            if let Some(v) = store::latest_version(conn, &l.name).map_err(|e| e.to_string())? {
                if v.members.lines().any(|m| m == parent) {
                    lists.push(l.name.clone());
                }
            }
        }
        let compromised = store::ioc(conn, "domain", parent)
            .map_err(|e| e.to_string())?
            .is_some_and(|(_, r)| r.is_compromised);
        if !lists.is_empty() && !compromised {
            out.push(json!({"value": parent, "lists": lists}));
        }
        rest = parent;
    }
    Ok(out)
}

/// Undoes the usual defanging of indicators pasted from reports and tickets: `hxxp://`, `[.]`, `(.)`,
/// `[dot]`, `[:]`, `[://]`. Only lookups do this; feeds are taken as they are.
pub fn refang(raw: &str) -> String {
    let mut s = raw.trim().to_string();
    for (from, to) in [
        ("[://]", "://"),
        ("[:]", ":"),
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
    ] {
        s = s.replace(from, to);
    }
    let lower = s.to_ascii_lowercase();
    for (from, to) in [("hxxps://", "https://"), ("hxxp://", "http://")] {
        if lower.starts_with(from) {
            s = format!("{to}{}", &s[from.len()..]);
        }
    }
    s
}

/// The §9.5 object for `raw` (refanged first), with status, lists, score terms, sightings and allowed_by.
pub fn lookup(conn: &Connection, cfg: &Config, raw: &str, now: i64) -> Result<Value, String> {
    let raw = &refang(raw);
    let db = |e: store::StoreError| e.to_string();
    let ind = match normalise::normalise(normalise::guess_type(raw), raw) {
        Ok(i) => i,
        Err(reason) => {
            let seen = store::rejections_of(conn, raw).map_err(db)?;
            return Ok(json!({
                "value": raw,
                "status": "rejected",
                "reason": reason.as_str(),
                "rejected_by": seen.iter().map(|(s, r, n)| json!({"source": s, "reason": r, "count": n})).collect::<Vec<_>>(),
            }));
        }
    };
    let Some((id, row)) = store::ioc(conn, ind.ioc_type.as_str(), &ind.value).map_err(db)? else {
        let mut out =
            json!({"value": ind.value, "type": ind.ioc_type.as_str(), "status": "unknown"});
        if ind.ioc_type == IocType::Domain {
            let covered = covering_parents(conn, cfg, &ind.value)?;
            if !covered.is_empty() {
                out["covered_by"] = json!(covered);
            }
        }
        return Ok(out);
    };
    let sightings = store::sightings(conn, id).map_err(db)?;
    let live: Vec<&store::Sighting> = sightings
        .iter()
        .filter(|s| s.withdrawn_at.is_none())
        .collect();
    let allow = Allowlist::load(conn, &cfg.allowlist.entries).map_err(|e| e.to_string())?;
    let allowed_by = allow.find(ind.ioc_type, &ind.value).cloned();
    let activity = score::activity(
        sightings
            .iter()
            .map(|s| (s.first_seen, s.last_seen, s.pulled_last)),
    );
    let reports = cfg.independent_reports(
        live.iter()
            .map(|s| (s.source.as_str(), s.report_id.as_str())),
    );
    let terms = score::score(
        &cfg.scoring,
        row.confidence,
        activity,
        now,
        reports.max(1),
        row.is_compromised,
    );
    let aged = score::is_aged(&cfg.scoring, activity, now);
    let status = if live.is_empty() {
        "withdrawn"
    } else if allowed_by.is_some() {
        "allowlisted"
    } else if aged {
        "aged"
    } else {
        "active"
    };
    let mut lists = Vec::new();
    for l in &cfg.lists {
        if let Some(v) = store::latest_version(conn, &l.name).map_err(db)? {
            if v.members.lines().any(|m| m == ind.value) {
                lists.push(l.name.clone());
            }
        }
    }
    let set = |f: &dyn Fn(&store::Sighting) -> Option<String>| {
        let mut v: Vec<String> = live.iter().filter_map(|s| f(s)).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut tags: Vec<String> = live
        .iter()
        .filter_map(|s| s.tags.clone())
        .flat_map(|t| {
            t.split(',')
                .map(|x| x.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    let mut ports: Vec<i64> = live.iter().filter_map(|s| s.port).collect();
    ports.sort();
    ports.dedup();
    let mut out = json!({
        "value": ind.value,
        "type": ind.ioc_type.as_str(),
        "status": status,
        "families": set(&|s| s.family.clone()),
        "threat_types": set(&|s| s.threat_type.clone()),
        "confidence": row.confidence,
        "score": terms.score,
        "first_seen": row.first_seen.map(iso),
        "last_seen": row.last_seen.map(iso),
        "is_compromised": row.is_compromised,
        "tags": tags,
        "references": set(&|s| s.reference.clone()),
        "sources": set(&|s| Some(s.source.clone())),
        "lists": lists,
        "score_terms": terms,
        "sightings": sightings.iter().map(|s| json!({
            "source": s.source,
            "report_id": s.report_id,
            "family": s.family,
            "malware": s.malware,
            "threat_type": s.threat_type,
            "port": s.port,
            "first_seen": s.first_seen.map(iso),
            "last_seen": s.last_seen.map(iso),
            "confidence": s.confidence,
            "is_compromised": s.is_compromised,
            "reference": s.reference,
            "tags": s.tags,
            "reporter": s.reporter,
            "pulled_first": iso(s.pulled_first),
            "pulled_last": iso(s.pulled_last),
            "withdrawn_at": s.withdrawn_at.map(iso),
        })).collect::<Vec<_>>(),
        "allowed_by": allowed_by,
    });
    if ind.ioc_type == IocType::Ip {
        out["ports"] = json!(ports);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::refang;

    #[test]
    fn defanged_indicators_are_refanged() {
        assert_eq!(refang("hxxp://cochru[.]xyz/a"), "http://cochru.xyz/a");
        assert_eq!(
            refang(" HXXPS[://]evil(.)example[dot]com "),
            "https://evil.example.com"
        );
        assert_eq!(refang("45.192.105[.]12[:]443"), "45.192.105.12:443");
        assert_eq!(refang("beltka.shop"), "beltka.shop");
    }
}
