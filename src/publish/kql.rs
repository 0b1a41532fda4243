//! `kql`: a Microsoft Sentinel hunting query in the seed's shape (SPEC §9.7): domains through `DnsEvents`,
//! addresses through the network tables, URLs through `DeviceNetworkEvents.RemoteUrl`, hashes through
//! `DeviceFileEvents`. Value lists over 10,000 are split into several `dynamic([...])` blocks, since large
//! literals slow or break queries.

use std::fmt::Write;

use super::{Entry, RenderContext};
use crate::normalise::{is_valid, IocType};

/// The most values in one `dynamic([...])` literal.
pub const MAX_VALUES: usize = 10_000;

/// A KQL string literal. Values are validated before this, so this only has to be correct, not clever.
fn lit(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `let NAME_1 = dynamic([...]);` blocks; returns the names bound.
fn lets(out: &mut String, name: &str, values: &[&str]) -> Vec<String> {
    let chunks: Vec<&[&str]> = if values.is_empty() {
        vec![&[]]
    } else {
        values.chunks(MAX_VALUES).collect()
    };
    let mut names = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let n = if chunks.len() == 1 {
            name.to_string()
        } else {
            format!("{name}_{}", i + 1)
        };
        let items: Vec<String> = chunk.iter().map(|v| lit(v)).collect();
        let _ = writeln!(out, "let {n} = dynamic([{}]);", items.join(", "));
        names.push(n);
    }
    names
}

fn any_of(column: &str, op: &str, names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{column} {op} ({n})"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The query for one kind of indicator, or nothing when the entries hold none of it.
pub fn query(kind: IocType, values: &[&str], source: &str) -> String {
    let mut out = String::new();
    match kind {
        IocType::Domain => {
            let _ = writeln!(
                out,
                "// Hunt for DNS queries to known malicious domains\n// Source: {source}"
            );
            let names = lets(&mut out, "malicious_domains", values);
            let _ = writeln!(
                out,
                "DnsEvents\n| where {}\n| project TimeGenerated, Computer, Name, IPAddresses, QueryType\n| order by TimeGenerated desc",
                any_of("Name", "has_any", &names)
            );
        }
        IocType::Ip => {
            let _ = writeln!(
                out,
                "// Hunt for connections to known malicious addresses\n// Source: {source}"
            );
            let names = lets(&mut out, "malicious_ips", values);
            let _ = writeln!(
                out,
                "union isfuzzy=true\n    (DeviceNetworkEvents\n    | where {}\n    | project TimeGenerated, Computer = DeviceName, RemoteIP, RemotePort),\n    (CommonSecurityLog\n    | where {}\n    | project TimeGenerated, Computer, RemoteIP = DestinationIP, RemotePort = DestinationPort)\n| order by TimeGenerated desc",
                any_of("RemoteIP", "in", &names),
                any_of("DestinationIP", "in", &names)
            );
        }
        IocType::Url => {
            let _ = writeln!(
                out,
                "// Hunt for requests to known malicious URLs\n// Source: {source}"
            );
            let names = lets(&mut out, "malicious_urls", values);
            let _ = writeln!(
                out,
                "DeviceNetworkEvents\n| where {}\n| project TimeGenerated, DeviceName, RemoteUrl, RemoteIP, InitiatingProcessFileName\n| order by TimeGenerated desc",
                any_of("RemoteUrl", "has_any", &names)
            );
        }
        IocType::Md5 | IocType::Sha1 | IocType::Sha256 => {
            let column = match kind {
                IocType::Md5 => "MD5",
                IocType::Sha1 => "SHA1",
                _ => "SHA256",
            };
            let _ = writeln!(
                out,
                "// Hunt for known malicious files ({column})\n// Source: {source}"
            );
            let names = lets(
                &mut out,
                &format!("malicious_{}", column.to_lowercase()),
                values,
            );
            let _ = writeln!(
                out,
                "DeviceFileEvents\n| where {}\n| project TimeGenerated, DeviceName, FileName, FolderPath, {column}\n| order by TimeGenerated desc",
                any_of(column, "in", &names)
            );
        }
    }
    out
}

pub fn render(ctx: &RenderContext, entries: &[Entry]) -> Vec<u8> {
    let source = format!(
        "iocfeed list {} v{} (ThreatFox)",
        ctx.list.name, ctx.version
    );
    let mut parts = Vec::new();
    for kind in ctx.list.ioc_types() {
        let values: Vec<&str> = entries
            .iter()
            .filter(|e| e.ioc_type == kind && is_valid(e.ioc_type, &e.value))
            .map(|e| e.value.as_str())
            .collect();
        parts.push(query(kind, &values, &source));
    }
    // One query per indicator kind; a list of several kinds gets several queries, separated by a blank line.
    parts.join("\n").into_bytes()
}
