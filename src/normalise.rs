//! Indicator normalisation and rejection (SPEC §6).
//!
//! Every value that reaches the store passes through [`normalise`]. A value that cannot be made valid is
//! rejected with a [`Reject`] reason; nothing rejected is ever rendered. Renderers call the same checks again
//! ([`is_valid_domain`] and friends) before they write a value, so a database edited by hand cannot inject
//! syntax either.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kinds of indicator iocfeed stores. ThreatFox `ip:port` becomes `Ip` with the port kept aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IocType {
    Domain,
    Ip,
    Url,
    Md5,
    Sha1,
    Sha256,
}

impl IocType {
    pub const ALL: [IocType; 6] = [
        IocType::Domain,
        IocType::Ip,
        IocType::Url,
        IocType::Md5,
        IocType::Sha1,
        IocType::Sha256,
    ];

    /// The name used in config, the database and every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            IocType::Domain => "domain",
            IocType::Ip => "ip",
            IocType::Url => "url",
            IocType::Md5 => "md5",
            IocType::Sha1 => "sha1",
            IocType::Sha256 => "sha256",
        }
    }

    /// Parses both our own names and the upstream spellings (`ip:port`, `sha256_hash`, …).
    pub fn parse(s: &str) -> Option<IocType> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "domain" | "hostname" | "fqdn" => IocType::Domain,
            "ip" | "ip:port" | "ipv4" | "ipv6" => IocType::Ip,
            "url" => IocType::Url,
            "md5" | "md5_hash" => IocType::Md5,
            "sha1" | "sha1_hash" => IocType::Sha1,
            "sha256" | "sha256_hash" => IocType::Sha256,
            _ => return None,
        })
    }
}

impl fmt::Display for IocType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a value was rejected. The code (`as_str`) is what `iocfeed sources` and `/sources` count by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    Empty,
    UnknownType,
    InvalidCharacter,
    LabelTooLong,
    NameTooLong,
    EmptyLabel,
    SingleLabel,
    PublicSuffix,
    IpLiteral,
    Idna,
    BadAddress,
    ReservedAddress,
    BadPort,
    BadUrl,
    BadHash,
    SpecialUse,
    BadLabel,
    UnknownTld,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Empty => "empty",
            Reject::UnknownType => "unknown-type",
            Reject::InvalidCharacter => "invalid-character",
            Reject::LabelTooLong => "label-too-long",
            Reject::NameTooLong => "name-too-long",
            Reject::EmptyLabel => "empty-label",
            Reject::SingleLabel => "single-label",
            Reject::PublicSuffix => "public-suffix",
            Reject::IpLiteral => "ip-literal",
            Reject::Idna => "idna",
            Reject::BadAddress => "bad-address",
            Reject::ReservedAddress => "reserved-address",
            Reject::BadPort => "bad-port",
            Reject::BadUrl => "bad-url",
            Reject::BadHash => "bad-hash",
            Reject::SpecialUse => "special-use",
            Reject::BadLabel => "bad-label",
            Reject::UnknownTld => "unknown-tld",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalised indicator: the (type, value) pair is the IOC's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indicator {
    pub ioc_type: IocType,
    pub value: String,
    /// The port of a ThreatFox `ip:port` (or a URL's explicit port is part of the URL itself).
    pub port: Option<u16>,
}

/// Normalises `raw` as an indicator of upstream type `upstream_type` (`domain`, `ip:port`, `sha256_hash`, …).
pub fn normalise(upstream_type: &str, raw: &str) -> Result<Indicator, Reject> {
    let ioc_type = IocType::parse(upstream_type).ok_or(Reject::UnknownType)?;
    let (value, port) = match ioc_type {
        IocType::Domain => (domain(raw)?, None),
        IocType::Ip => {
            let (ip, port) = ip_port(raw)?;
            (ip.to_string(), port)
        }
        IocType::Url => (url(raw)?, None),
        IocType::Md5 => (hash(raw, 32)?, None),
        IocType::Sha1 => (hash(raw, 40)?, None),
        IocType::Sha256 => (hash(raw, 64)?, None),
    };
    Ok(Indicator {
        ioc_type,
        value,
        port,
    })
}

/// Characters that are never part of a name as it arrives from a feed: whitespace and controls (zone-file and
/// log injection), `*` (wildcards are iocfeed's to add), `/` and `:` (a URL or an address in the wrong field).
fn forbidden_in_name(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '*' | '/' | ':' | '\\' | '"' | ';' | '@')
}

/// Code points that IDNA silently drops (soft hyphen, zero-width and direction marks, variation selectors):
/// `ex\u{200b}ample.com` must not quietly become `example.com`.
pub fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xE0000..=0xE0FFF)
}

/// Top-level names that are never on the public Internet or that DNS software treats specially: RFC 6761
/// (`test`, `invalid`, `localhost`), RFC 6762 (`local`), RFC 7686 (`onion`), RFC 9476 (`alt`), ICANN's
/// 2024 private-use `internal`, `arpa` (reverse zones, `home.arpa` of RFC 8375), and the `localdomain` of
/// `localhost.localdomain`. A blocklist entry under one of them could only ever match a customer's own hosts.
const SPECIAL_TLDS: [&str; 9] = [
    "localhost",
    "local",
    "invalid",
    "test",
    "arpa",
    "onion",
    "alt",
    "internal",
    "localdomain",
];

/// RFC 2606's documentation TLD. Still accepted, as are `example.com`, `example.net` and `example.org`,
/// although no report naming them can be a real C2: the shared cases (`values.tsv`: `Example.COM.` →
/// `example.com`) and the test suites use these names as their indicators, and rejecting them waits for those
/// to move to other names.
const DOCUMENTATION_TLD: &str = "example";

/// Normalises a domain name: trim, lowercase, one trailing dot removed, IDNA (UTS #46) to punycode, then
/// strict label checks and the Public Suffix List (private section included).
pub fn domain(raw: &str) -> Result<String, Reject> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    if s.chars().any(|c| forbidden_in_name(c) || invisible(c)) {
        return Err(Reject::InvalidCharacter);
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.parse::<IpAddr>().is_ok() {
        return Err(Reject::IpLiteral);
    }
    let ascii = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).map_err(|_| Reject::Idna)?
    };
    check_domain(&ascii)?;
    Ok(ascii)
}

/// The checks a stored domain must pass; also used by renderers as a last line of defence.
fn check_domain(name: &str) -> Result<(), Reject> {
    if name.len() > 253 {
        return Err(Reject::NameTooLong);
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err(Reject::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(Reject::LabelTooLong);
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(Reject::InvalidCharacter);
        }
        // Hostname rules: no hyphen at either end of a label (a leading one also reads as a CSV formula).
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Reject::BadLabel);
        }
        // RPZ gives these labels meaning (rpz-ip, rpz-nsdname, rpz-client-ip, rpz-drop, …): a feed value
        // carrying one would become a resolver-wide policy rule instead of a name.
        if label.starts_with("rpz-") {
            return Err(Reject::SpecialUse);
        }
        // A-labels must decode: `xn--zz` is not a name any resolver or registry would hand out.
        if label.starts_with("xn--") {
            let (_, r) = idna::domain_to_unicode(label);
            if r.is_err() {
                return Err(Reject::Idna);
            }
        }
    }
    if labels < 2 {
        return Err(Reject::SingleLabel);
    }
    let tld = name.rsplit('.').next().unwrap_or("");
    if SPECIAL_TLDS.contains(&tld) {
        return Err(Reject::SpecialUse);
    }
    // A name whose last label is a number is an IPv4 address to every URL parser and to inet_aton
    // (`0x7f.1`, `10.0.0.0x1`, `1.2.3`, even `evil.1`): never a domain.
    if ends_in_number(name) {
        return Err(Reject::IpLiteral);
    }
    // A TLD that is not in the root zone is a private namespace (`corp`, `lan`, `home`, `intranet`): its
    // names are a network's internal hosts, never a public C2. The Public Suffix List has a rule for every
    // delegated TLD, but some only below it (`co.za`, `com.np`, `*.ck`): the name's own suffix must match a
    // rule, not fall through to the list's default.
    if tld != DOCUMENTATION_TLD && !psl::suffix(name.as_bytes()).is_some_and(|s| s.typ().is_some())
    {
        return Err(Reject::UnknownTld);
    }
    if let Some(suffix) = psl::suffix(name.as_bytes()) {
        if suffix.as_bytes() == name.as_bytes() {
            return Err(Reject::PublicSuffix);
        }
    }
    Ok(())
}

/// The WHATWG URL "ends in a number" test: the last label (one trailing dot ignored) is all decimal digits, or
/// `0x`/`0X` followed by hex digits (none at all included). Such a host is parsed as an IPv4 address, in
/// decimal, octal or hex, with one to four parts.
fn ends_in_number(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// True when `name` is exactly what [`domain`] would store.
pub fn is_valid_domain(name: &str) -> bool {
    check_domain(name).is_ok()
}

/// Parses `a.b.c.d`, `a.b.c.d:port`, a bare IPv6 address, or `[v6]:port`.
pub fn ip_port(raw: &str) -> Result<(IpAddr, Option<u16>), Reject> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Reject::InvalidCharacter);
    }
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or(Reject::BadAddress)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(Reject::BadAddress)?),
        };
        (a, port)
    } else if s.matches(':').count() == 1 {
        let (a, p) = s.split_once(':').expect("one colon");
        (a, Some(p))
    } else {
        (s, None)
    };
    let ip: IpAddr = addr.parse().map_err(|_| Reject::BadAddress)?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) && !p.starts_with('+') => Some(n as u16),
            _ => return Err(Reject::BadPort),
        },
    };
    // An IPv4-mapped IPv6 address is the IPv4 address: store it once, in its IPv4 form.
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if is_reserved(ip) {
        return Err(Reject::ReservedAddress);
    }
    Ok((ip, port))
}

/// Addresses that are never an indicator on the public Internet: blocking them breaks local networks.
pub fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                          // "this network", unspecified
        || a == 10                                  // RFC 1918
        || a == 127                                 // loopback
        || (a == 100 && (64..128).contains(&b))     // CGNAT, RFC 6598
        || (a == 169 && b == 254)                   // link-local
        || (a == 172 && (16..32).contains(&b))      // RFC 1918
        || (a == 192 && b == 168)                   // RFC 1918
        || (a == 192 && b == 0 && c == 0)           // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)           // TEST-NET-1
        || (a == 192 && b == 31 && c == 196)        // AS112-v4, RFC 7535
        || (a == 192 && b == 52 && c == 193)        // AMT, RFC 7450
        || (a == 192 && b == 175 && c == 48)        // AS112 direct delegation, RFC 7534
        || (a == 192 && b == 88 && c == 99)         // 6to4 relay anycast (deprecated)
        || (a == 198 && (b == 18 || b == 19))       // benchmarking
        || (a == 198 && b == 51 && c == 100)        // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)         // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

/// IPv6 special-purpose ranges (IANA registry). Every range that embeds an IPv4 address is refused whole,
/// whatever that address: IPv4-compatible `::/96`, SIIT `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96` and
/// `64:ff9b:1::/48`, 6to4 `2002::/16`. Such an address is a translator's or relay's view of an IPv4 host, not
/// a host of its own: the indicator is the IPv4 address (IPv4-mapped `::ffff:0:0/96` is stored as that, see
/// [`ip_port`]), and judging the embedded address instead would publish local gateway addresses.
fn reserved_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || s[..6] == [0, 0, 0, 0, 0, 0xffff] // IPv4-mapped: judged and stored as IPv4, never in this form
        || s[..6] == [0, 0, 0, 0, 0xffff, 0] // SIIT IPv4-translated ::ffff:0:0:0/96 (RFC 2765)
        || (s[0] & 0xfe00) == 0xfc00 // ULA
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation, RFC 9637
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (64:ff9b::/96 and the local-use /48)
        || s[0] == 0x2002 // 6to4: wraps an IPv4 address, private ones included
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x0100 && s[1..3] == [0, 0] && s[3] <= 1) // discard-only, dummy prefix (RFC 9780)
        || (s[0] == 0x2620 && s[1] == 0x004f && s[2] == 0x8000) // AS112 direct delegation, RFC 7534
        || s[0] == 0x5f00 // SRv6 SIDs, RFC 9602
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo, benchmarking, ORCHID
}

/// Normalises a URL: scheme and host lowercased, default port dropped, host validated as a domain or address.
pub fn url(raw: &str) -> Result<String, Reject> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    // The URL parser silently removes tabs and newlines; a value carrying them is hostile, not sloppy.
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Reject::InvalidCharacter);
    }
    let mut u = url::Url::parse(s).map_err(|_| Reject::BadUrl)?;
    if u.port() == Some(0) {
        return Err(Reject::BadPort);
    }
    // Special schemes get their host parsed (IDNA, lowercase, IPv4 in any notation); `tcp` and `udp` get an
    // opaque, percent-encoded host, which is ours to parse the same way.
    let special = match u.scheme() {
        "http" | "https" | "ftp" | "ws" | "wss" => true,
        "tcp" | "udp" => false,
        _ => return Err(Reject::BadUrl),
    };
    // One spelling per host: `evil.com.` is `evil.com`, `[::ffff:1.2.3.4]` is `1.2.3.4`, `tcp://EVIL.com` is
    // `tcp://evil.com`. Otherwise an allow entry or a family exclusion could be dodged by the other spelling.
    let host = match u.host() {
        None => return Err(Reject::BadUrl),
        Some(url::Host::Ipv4(v4)) => {
            // The parser reads `010.0.0.1` as 8.0.0.1 and `1.2.3` as 1.2.0.3. Rewriting a report's address
            // would publish one it never named: only the dotted-quad spelling is taken, as in the ip field.
            if written_host(s, u.scheme()) != Some(v4.to_string().as_str()) {
                return Err(Reject::BadAddress);
            }
            UrlHost::V4(v4)
        }
        Some(url::Host::Ipv6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => UrlHost::V4(v4),
            None => UrlHost::V6(v6),
        },
        Some(url::Host::Domain(d)) if special => {
            UrlHost::Name(d.strip_suffix('.').unwrap_or(d).to_string())
        }
        Some(url::Host::Domain(d)) => {
            let d = percent_decode(d)
                .ok_or(Reject::BadUrl)?
                .to_ascii_lowercase();
            if ends_in_number(&d) {
                // What a special scheme would read as IPv4: the dotted quad only, as above.
                UrlHost::V4(d.parse().map_err(|_| Reject::BadAddress)?)
            } else {
                UrlHost::Name(domain(&d)?)
            }
        }
    };
    let canonical = match &host {
        UrlHost::V4(v4) => v4.to_string(),
        UrlHost::V6(v6) => format!("[{v6}]"),
        UrlHost::Name(n) => n.clone(),
    };
    if u.host_str() != Some(canonical.as_str()) {
        u.set_host(Some(&canonical)).map_err(|_| Reject::BadUrl)?;
    }
    // Credentials in an indicator URL are the victim's or the attacker's secret: never republish them.
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    match host {
        UrlHost::Name(n) => check_domain(&n)?,
        UrlHost::V4(v4) if reserved_v4(v4) => return Err(Reject::ReservedAddress),
        UrlHost::V6(v6) if reserved_v6(v6) => return Err(Reject::ReservedAddress),
        UrlHost::V4(_) | UrlHost::V6(_) => {}
    }
    let out = u.to_string();
    if !is_valid_url(&out) {
        return Err(Reject::InvalidCharacter);
    }
    Ok(out)
}

/// A URL's host once parsed: an IPv4 address, an IPv6 address that embeds none, or a name.
enum UrlHost {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Name(String),
}

/// The host exactly as written in a special-scheme URL `s` (already known to parse with `scheme`): after
/// `scheme://`, up to the first `/`, `\`, `?` or `#`, after the last `@`, before a `:port`. `None` for any
/// other layout (`http:/x`, `http:\\x`), which then is not taken as the plain spelling of an address.
fn written_host<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    let (head, rest) = (s.get(..scheme.len())?, s.get(scheme.len()..)?);
    if !head.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = rest.strip_prefix("://")?;
    let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(host.split_once(':').map_or(host, |(h, _)| h))
}

/// Undoes `%XX` escapes (an opaque URL host keeps them); `None` for a broken escape or bytes that are not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A stored URL is printable ASCII without spaces or quotes (the parser percent-encodes the rest).
pub fn is_valid_url(u: &str) -> bool {
    !u.is_empty() && u.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'"')
}

fn hash(raw: &str, len: usize) -> Result<String, Reject> {
    let s = raw.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Reject::BadHash);
    }
    Ok(s)
}

/// Guesses the type of a bare value (a person's query, a line of a text list): address (with or without
/// port), URL, hash, else domain.
pub fn guess_type(raw: &str) -> &'static str {
    let s = raw.trim();
    // Judged by shape, not validity, so that a reserved address is reported as one.
    let host = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    };
    let dotted_quad = host.split('.').count() == 4
        && host
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if s.contains("://") {
        "url"
    } else if dotted_quad || s.starts_with('[') || s.parse::<IpAddr>().is_ok() {
        "ip:port"
    } else if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        match s.len() {
            32 => "md5",
            40 => "sha1",
            64 => "sha256",
            _ => "domain",
        }
    } else {
        "domain"
    }
}

/// True when `value` is exactly what [`normalise`] stores for `t`; renderers refuse anything else.
pub fn is_valid(t: IocType, value: &str) -> bool {
    match t {
        IocType::Domain => is_valid_domain(value),
        IocType::Ip => value
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_string() == value && !is_reserved(ip)),
        IocType::Url => is_valid_url(value),
        IocType::Md5 => hash(value, 32).is_ok_and(|h| h == value),
        IocType::Sha1 => hash(value, 40).is_ok_and(|h| h == value),
        IocType::Sha256 => hash(value, 64).is_ok_and(|h| h == value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_basics() {
        assert_eq!(domain(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(domain("a..b.com"), Err(Reject::EmptyLabel));
        assert_eq!(domain("1.2.3"), Err(Reject::IpLiteral));
        assert_eq!(domain("[2001:db8::1]"), Err(Reject::InvalidCharacter));
        assert_eq!(domain("x.com.."), Err(Reject::EmptyLabel));
    }

    #[test]
    fn numeric_last_label_is_an_ip_literal() {
        for v in [
            "0x7f.0.0.1",
            "0x7f.1",
            "0xa.0.0.1",
            "10.0.0.0x1",
            "192.168.0x1.1",
            "evil.1",
            "a.123",
            "A.0X1F",
            "evil.0x",
            "1.2.3",
            "x.2130706433.",
        ] {
            assert_eq!(domain(v), Err(Reject::IpLiteral), "{v}");
            assert!(!is_valid_domain(&v.to_ascii_lowercase()), "{v}");
        }
        // A label that merely starts with digits or `0x` is a name.
        for v in [
            "evil.1x.com",
            "0x7f.com",
            "x.0xg1.com",
            "1.2.3.4.example-c2.net",
            "123.com",
        ] {
            assert_eq!(domain(v).as_deref(), Ok(v), "{v}");
        }
    }

    #[test]
    fn special_use_and_private_names() {
        for v in [
            "x.test",
            "x.invalid",
            "x.localhost",
            "localhost.localdomain",
            "x.alt",
            "x.internal",
            "x.home.arpa",
            "x.onion",
        ] {
            assert_eq!(domain(v), Err(Reject::SpecialUse), "{v}");
            assert_eq!(
                url(&format!("https://{v}/p")),
                Err(Reject::SpecialUse),
                "{v}"
            );
        }
        for v in [
            "x.home",
            "x.lan",
            "x.corp",
            "x.intranet",
            "printer.mshome",
            "a.b.zzz-unknown",
        ] {
            assert_eq!(domain(v), Err(Reject::UnknownTld), "{v}");
            assert!(!is_valid_domain(v), "{v}");
        }
        // Look-alikes of the reserved names, real TLDs (IDN ones included) and private suffixes stay.
        for v in [
            "example.co",
            "myexample.com",
            "example.com.evil-c2.net",
            "test.com",
            "x.xn--p1ai",
            "x.co.uk",
            // TLDs whose list rules are only below them.
            "clickagolf.co.za",
            "legacyhotel.com.np",
            "evil.co.ck",
            "evil.com.mm",
            "evil.com.er",
            "evil.co.fk",
            "evil.com.jm",
            "evil.com.pg",
            "fuwabo.workers.dev",
            "x.zip",
        ] {
            assert_eq!(domain(v).as_deref(), Ok(v), "{v}");
        }
    }

    #[test]
    fn special_names_and_labels() {
        for v in [
            "com.rpz-nsdname",
            "1.0.0.0.0.rpz-ip",
            "32.8.8.8.8.rpz-nsip",
            "24.0.0.168.192.rpz-client-ip",
            "x.local",
            "a.onion",
            "x.localhost",
            "1.in-addr.arpa",
        ] {
            assert_eq!(domain(v), Err(Reject::SpecialUse), "{v}");
        }
        assert_eq!(domain("-lead.evil.com"), Err(Reject::BadLabel));
        assert_eq!(domain("trail-.evil.com"), Err(Reject::BadLabel));
        assert_eq!(domain("xn--zz.com"), Err(Reject::Idna));
        assert_eq!(domain("ex\u{200b}ample.com"), Err(Reject::InvalidCharacter));
        assert_eq!(domain("ev\u{ad}il.com"), Err(Reject::InvalidCharacter));
        assert_eq!(
            domain("xn--mnchen-bank-thb.de").unwrap(),
            "xn--mnchen-bank-thb.de"
        );
    }

    #[test]
    fn url_edges() {
        assert_eq!(
            url("http://[::ffff:10.0.0.1]/"),
            Err(Reject::ReservedAddress)
        );
        assert_eq!(url("http://evil-remus.com:0/"), Err(Reject::BadPort));
        assert_eq!(
            url("http://[::ffff:45.33.32.156]/m").unwrap(),
            "http://45.33.32.156/m"
        );
        assert_eq!(url("http://veeam.com./x").unwrap(), "http://veeam.com/x");
        assert_eq!(
            url("http://sub.splunkcloud.com.:8080/x").unwrap(),
            "http://sub.splunkcloud.com:8080/x"
        );
        assert_eq!(
            url("http://user:pass@evil-remus.com/x").unwrap(),
            "http://evil-remus.com/x"
        );
    }

    #[test]
    fn url_addresses_only_in_dotted_quad() {
        for v in [
            "http://010.0.0.1/",
            "http://1.2.3/",
            "http://0x7f.1/",
            "https://0xa.0.0.1/x",
            "http://10.0.0.0x1/",
            "http://192.168.0x1.1/",
            "http://2130706433/",
            "http://45.33.32.156./",
            "http://%34%35.33.32.156/",
            "http://\u{ff14}5.33.32.156/",
            "http:/45.33.32.156/",
            "HTTP://045.33.32.156:8080/",
            "tcp://0x7f.1/",
            "tcp://010.0.0.1:4444",
            "udp://1.2.3:53",
            "tcp://evil.1/",
        ] {
            assert_eq!(url(v), Err(Reject::BadAddress), "{v}");
        }
        assert_eq!(
            url("HTTP://user:pw@45.33.32.156:8080/x").unwrap(),
            "http://45.33.32.156:8080/x"
        );
        assert_eq!(
            url("http://a@b@45.33.32.156/").unwrap(),
            "http://45.33.32.156/"
        );
        assert_eq!(url("http://10.0.0.1/"), Err(Reject::ReservedAddress));
        assert_eq!(url("tcp://10.0.0.1:80/"), Err(Reject::ReservedAddress));
        assert_eq!(
            url("http://[::ffff:0:7f00:1]/"),
            Err(Reject::ReservedAddress)
        );
        assert_eq!(
            url("tcp://[::ffff:0:7f00:1]/"),
            Err(Reject::ReservedAddress)
        );
    }

    #[test]
    fn non_special_url_hosts_are_normalised_like_the_rest() {
        for (v, want) in [
            ("tcp://EVIL-c2.COM:4444/", "tcp://evil-c2.com:4444/"),
            ("tcp://evil-c2.com.:4444", "tcp://evil-c2.com:4444"),
            ("udp://45.33.32.156:53", "udp://45.33.32.156:53"),
            (
                "tcp://M%C3%BCnchen-Bank.de/x",
                "tcp://xn--mnchen-bank-thb.de/x",
            ),
            ("tcp://münchen-bank.de/x", "tcp://xn--mnchen-bank-thb.de/x"),
            ("tcp://[2a01:4f8::1]:443", "tcp://[2a01:4f8::1]:443"),
            ("tcp://[::ffff:45.33.32.156]:443", "tcp://45.33.32.156:443"),
        ] {
            assert_eq!(url(v).as_deref(), Ok(want), "{v}");
        }
        assert_eq!(url("tcp://x.lan/"), Err(Reject::UnknownTld));
        assert_eq!(url("tcp://co.uk/"), Err(Reject::PublicSuffix));
        assert_eq!(url("tcp://x.local:1/"), Err(Reject::SpecialUse));
        assert_eq!(url("tcp://ev%0ail.com/"), Err(Reject::InvalidCharacter));
        assert_eq!(url("tcp://evil.com%zz/"), Err(Reject::BadUrl));
        assert_eq!(url("tcp://x%2a.com/"), Err(Reject::InvalidCharacter));
    }

    #[test]
    fn ip_forms() {
        for v in [
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "fec0::1",
            "100::1",
            "192.88.99.1",
        ] {
            assert_eq!(ip_port(v), Err(Reject::ReservedAddress), "{v}");
        }
        assert_eq!(
            ip_port("::ffff:45.192.105.203").unwrap().0.to_string(),
            "45.192.105.203"
        );
        assert_eq!(ip_port("1.2.3.4:0"), Err(Reject::BadPort));
        assert_eq!(ip_port("1.2.3.4:+80"), Err(Reject::BadPort));
        assert_eq!(ip_port("[2a01:4f8::1]x"), Err(Reject::BadAddress));
        assert_eq!(ip_port("255.255.255.255"), Err(Reject::ReservedAddress));
        assert_eq!(ip_port("fe80::1"), Err(Reject::ReservedAddress));
        assert_eq!(
            ip_port("8.8.8.8").unwrap(),
            ("8.8.8.8".parse().unwrap(), None)
        );
    }

    #[test]
    fn special_purpose_addresses() {
        for v in [
            // Embedding a private or reserved IPv4 address.
            "::ffff:0:a00:1",
            "::ffff:0:7f00:1",
            "::ffff:127.0.0.1",
            "::ffff:0:0",
            "::a00:1",
            "::808:808",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "2002:c0a8:101::1",
            // Embedding a public one: the IPv4 address is the indicator.
            "::ffff:0:808:808",
            "64:ff9b::808:808",
            "64:ff9b:1:ffff::808:808",
            "2002:808:808::1",
            // AS112, AMT, SRv6, dummy prefix.
            "192.31.196.1",
            "192.52.193.7",
            "192.175.48.6",
            "[2620:4f:8000::6]:53",
            "5f00::1",
            "5f00:ffff::1",
            "100:0:0:1::1",
        ] {
            assert_eq!(ip_port(v), Err(Reject::ReservedAddress), "{v}");
            // Nor does a renderer take any of them from a database edited by hand.
            let bare = v.trim_start_matches('[').split(']').next().unwrap();
            let ip: IpAddr = bare.parse().unwrap();
            assert!(!is_valid(IocType::Ip, &ip.to_string()), "{v}");
        }
        for v in [
            "192.31.197.1",
            "192.52.192.1",
            "192.175.49.1",
            "2620:4f:8001::1",
            "5f01::1",
            "100:0:0:2::1",
        ] {
            assert!(ip_port(v).is_ok(), "{v}");
        }
        assert_eq!(
            url("http://[::ffff:0:7f00:1]/"),
            Err(Reject::ReservedAddress)
        );
        assert_eq!(url("https://[5f00::1]/"), Err(Reject::ReservedAddress));
        assert_eq!(url("https://192.52.193.1/"), Err(Reject::ReservedAddress));
    }

    #[test]
    fn validity_matches_normalisation() {
        for (t, v) in [
            ("domain", "x.example.org"),
            ("ip:port", "[2a01:4f8:c17:1::1]:443"),
            ("url", "https://Evil.example.com:443/a\"b"),
            ("md5_hash", "D41D8CD98F00B204E9800998ECF8427E"),
        ] {
            let i = normalise(t, v).unwrap();
            assert!(is_valid(i.ioc_type, &i.value), "{t} {v} -> {}", i.value);
        }
        assert!(!is_valid(IocType::Domain, "Example.com"));
        assert!(!is_valid(IocType::Ip, "010.1.1.1"));
    }
}
