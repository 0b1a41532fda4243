//! The allowlist (SPEC §7): values that are never published, whatever the feeds say.
//!
//! Entries are names (a name covers itself and every name below it; `*.example.com` says the same), or
//! addresses and CIDR blocks. Top-sites lists (`rank,domain`) add names exactly (and their `www.`), since a
//! popular parent domain says nothing about its tenants. Entries come from the config, from `allowlist`
//! sources and from `iocfeed allow add`.

use std::collections::HashMap;
use std::net::IpAddr;

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::normalise::{self, IocType, Reject};

/// One allow entry and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowEntry {
    pub entry: String,
    pub subdomains: bool,
    pub origin: String,
    pub reason: Option<String>,
}

/// A parsed entry: a name, or an address block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    Name { name: String, subdomains: bool },
    Net { addr: IpAddr, prefix: u8 },
}

/// Parses an allow entry as a user writes it: `example.com`, `*.example.com`, `1.2.3.4`, `10.0.0.0/8`,
/// `2001:db8::/32`. A public suffix (`co.uk`, `workers.dev`) or a very wide block is refused: allowing it
/// would quietly stop blocking everything registered under it.
pub fn parse(raw: &str) -> Result<Pattern, String> {
    let s = raw.trim();
    if let Some((a, p)) = s.split_once('/') {
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{raw:?}: not a name, address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{raw:?}: prefix must be 0 to {max}"))?;
        let min = if addr.is_ipv4() { 8 } else { 16 };
        if prefix < min {
            return Err(format!(
                "{raw:?}: a /{prefix} allows too much (at least /{min})"
            ));
        }
        return Ok(Pattern::Net { addr, prefix });
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Ok(Pattern::Net { addr, prefix });
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    let name = match normalise::domain(name) {
        Ok(n) => n,
        Err(Reject::PublicSuffix | Reject::SingleLabel) => {
            return Err(format!(
                "{raw:?} is a public suffix: allowing it would allow every name under it"
            ))
        }
        Err(r) => return Err(format!("{raw:?}: not a name, address or CIDR ({r})")),
    };
    Ok(Pattern::Name {
        name,
        subdomains: true,
    })
}

/// The canonical text of an entry, as stored and shown.
pub fn canonical(p: &Pattern) -> String {
    match p {
        Pattern::Name { name, .. } => name.clone(),
        Pattern::Net { addr, prefix } if *prefix == if addr.is_ipv4() { 32 } else { 128 } => {
            addr.to_string()
        }
        Pattern::Net { addr, prefix } => format!("{addr}/{prefix}"),
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

/// Every allow entry in force, indexed for lookups.
#[derive(Default)]
pub struct Allowlist {
    entries: Vec<AllowEntry>,
    names: HashMap<String, Vec<usize>>,
    nets: Vec<(IpAddr, u8, usize)>,
}

impl Allowlist {
    /// The config's entries plus those stored in the database.
    pub fn load(conn: &Connection, config_entries: &[String]) -> rusqlite::Result<Allowlist> {
        let mut list = Allowlist::default();
        for e in config_entries {
            if let Ok(p) = parse(e) {
                list.add(&p, "config", None, true);
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT entry, subdomains, origin, reason FROM allow ORDER BY origin, entry",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? != 0,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        for row in rows {
            let (entry, subdomains, origin, reason) = row?;
            if let Ok(p) = parse(&entry) {
                list.add(&p, &origin, reason, subdomains);
            }
        }
        Ok(list)
    }

    fn add(&mut self, p: &Pattern, origin: &str, reason: Option<String>, subdomains: bool) {
        let i = self.entries.len();
        self.entries.push(AllowEntry {
            entry: canonical(p),
            subdomains: subdomains && matches!(p, Pattern::Name { .. }),
            origin: origin.to_string(),
            reason,
        });
        match p {
            Pattern::Name { name, .. } => self.names.entry(name.clone()).or_default().push(i),
            Pattern::Net { addr, prefix } => self.nets.push((*addr, *prefix, i)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry that suppresses `value` of type `t`, if any.
    pub fn find(&self, t: IocType, value: &str) -> Option<&AllowEntry> {
        match t {
            IocType::Domain => self.find_name(value),
            IocType::Ip => value.parse().ok().and_then(|ip| self.find_ip(ip)),
            IocType::Url => {
                let u = url::Url::parse(value).ok()?;
                match u.host()? {
                    url::Host::Domain(d) => self.find_name(d),
                    url::Host::Ipv4(a) => self.find_ip(IpAddr::V4(a)),
                    url::Host::Ipv6(a) => self.find_ip(IpAddr::V6(a)),
                }
            }
            _ => None,
        }
    }

    fn find_name(&self, name: &str) -> Option<&AllowEntry> {
        // An exact entry also covers its `www.` twin (top-sites lists name one or the other).
        if let Some(e) = name
            .strip_prefix("www.")
            .and_then(|rest| self.names.get(rest))
            .and_then(|ids| ids.first())
        {
            return Some(&self.entries[*e]);
        }
        let mut candidate = name;
        let mut exact = true;
        loop {
            if let Some(ids) = self.names.get(candidate) {
                if let Some(e) = ids
                    .iter()
                    .map(|i| &self.entries[*i])
                    .find(|e| exact || e.subdomains)
                {
                    return Some(e);
                }
            }
            let (_, parent) = candidate.split_once('.')?;
            candidate = parent;
            exact = false;
        }
    }

    fn find_ip(&self, ip: IpAddr) -> Option<&AllowEntry> {
        self.nets
            .iter()
            .find(|(n, p, _)| in_net(ip, *n, *p))
            .map(|(_, _, i)| &self.entries[*i])
    }
}

/// Adds (or replaces) an entry from the command line.
pub fn add(conn: &Connection, raw: &str, reason: Option<&str>, now: i64) -> Result<String, String> {
    // Pasted from a report or a ticket as lookups take them (`tolail[.]xyz`).
    let p = parse(&crate::lookup::refang(raw))?;
    let entry = canonical(&p);
    // The reason is shown in `allow list` and lookups: one line of plain text.
    let reason = reason.map(|r| {
        r.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
    });
    conn.execute(
        "INSERT INTO allow (entry, subdomains, origin, reason, added_at) VALUES (?1, 1, 'cli', ?2, ?3)
         ON CONFLICT (entry, origin) DO UPDATE SET reason = coalesce(excluded.reason, reason), added_at = excluded.added_at",
        params![entry, reason, now],
    )
    .map_err(|e| e.to_string())?;
    Ok(entry)
}

/// Removes a command-line entry; false when there was none.
pub fn remove(conn: &Connection, raw: &str) -> Result<bool, String> {
    let entry = canonical(&parse(raw)?);
    let n = conn
        .execute(
            "DELETE FROM allow WHERE entry = ?1 AND origin = 'cli'",
            [entry],
        )
        .map_err(|e| e.to_string())?;
    Ok(n > 0)
}

/// Replaces every entry of an `allowlist` source with a new set: (entry, subdomains).
pub fn replace_source(
    conn: &Connection,
    source: &str,
    entries: &[(String, bool)],
    now: i64,
) -> rusqlite::Result<()> {
    let origin = format!("source:{source}");
    conn.execute("DELETE FROM allow WHERE origin = ?1", [&origin])?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO allow (entry, subdomains, origin, reason, added_at) VALUES (?1, ?2, ?3, NULL, ?4)",
    )?;
    for (e, sub) in entries {
        stmt.execute(params![e, *sub as i64, origin, now])?;
    }
    Ok(())
}

/// Every stored entry (the config's are in the config), for `iocfeed allow list`.
pub fn stored(conn: &Connection) -> rusqlite::Result<Vec<AllowEntry>> {
    let mut stmt =
        conn.prepare("SELECT entry, subdomains, origin, reason FROM allow ORDER BY origin, entry")?;
    let rows = stmt.query_map([], |r| {
        Ok(AllowEntry {
            entry: r.get(0)?,
            subdomains: r.get::<_, i64>(1)? != 0,
            origin: r.get(2)?,
            reason: r.get(3)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        let mut l = Allowlist::default();
        for e in entries {
            l.add(&parse(e).unwrap(), "test", None, true);
        }
        l
    }

    #[test]
    fn names_cover_their_subtree() {
        let l = list(&["splunkcloud.com", "*.veeam.com"]);
        assert_eq!(
            l.find(IocType::Domain, "http-inputs-triad.splunkcloud.com")
                .unwrap()
                .entry,
            "splunkcloud.com"
        );
        assert!(l.find(IocType::Domain, "veeam.com").is_some());
        assert!(l.find(IocType::Domain, "notveeam.com").is_none());
        assert!(l
            .find(IocType::Url, "https://a.splunkcloud.com/x")
            .is_some());
    }

    #[test]
    fn exact_names_do_not_cover_subdomains() {
        let mut l = Allowlist::default();
        l.add(&parse("google.com").unwrap(), "source:top", None, false);
        assert!(l.find(IocType::Domain, "google.com").is_some());
        assert!(l.find(IocType::Domain, "evil.google.com").is_none());
        assert!(l.find(IocType::Domain, "www.google.com").is_some());
        assert!(l.find(IocType::Domain, "x.www.google.com").is_none());
    }

    #[test]
    fn cidrs() {
        let l = list(&["45.192.105.0/24", "2a01:4f8::/32"]);
        assert!(l.find(IocType::Ip, "45.192.105.203").is_some());
        assert!(l.find(IocType::Ip, "45.192.106.1").is_none());
        assert!(l.find(IocType::Ip, "2a01:4f8:c17:1::1").is_some());
        assert!(l.find(IocType::Url, "http://45.192.105.9:8080/").is_some());
        assert!(parse("10.0.0.0/33").is_err());
        assert!(parse("0.0.0.0/0").is_err());
        assert!(parse("co.uk").unwrap_err().contains("public suffix"));
        assert!(parse("com").is_err());
        assert!(parse("a b").is_err());
    }
}
