//! Configuration (SPEC §4): TOML, unknown keys rejected, every default written down here.
//!
//! Precedence is command line > environment > file > embedded default. The embedded default is built from
//! `feeds/*.toml` by `build.rs`, so `iocfeed serve` with no file does the main job.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::normalise::IocType;

/// The embedded default configuration (the files of `feeds/` joined in name order).
pub const DEFAULT_CONFIG: &str = include_str!(concat!(env!("OUT_DIR"), "/default-config.toml"));

/// A configuration problem, always naming the file (and line where known) and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub threatfox: ThreatfoxConfig,
    #[serde(default)]
    pub scoring: ScoringConfig,
    #[serde(default)]
    pub allowlist: AllowlistConfig,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    #[serde(default, rename = "family")]
    pub families: Vec<FamilyConfig>,
    #[serde(default, rename = "list")]
    pub lists: Vec<ListConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Upper bound on simultaneous HTTP connections being served.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Upper bound on simultaneous connections from one client (an IPv4 address or an IPv6 /64).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Seconds a request may take before the server answers 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers; also how long an idle connection stays open.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Who may use the views that span every list; see [`Config::views_access`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Who may start a pull with `POST /admin/pull/{source}`; unset, the route is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Access>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
            request_timeout_secs: default_request_timeout(),
            header_timeout_secs: default_header_timeout(),
            access: None,
            admin: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    "./iocfeed-data".into()
}
fn default_max_connections() -> usize {
    512
}
fn default_max_connections_per_client() -> usize {
    64
}
fn default_request_timeout() -> u64 {
    30
}
fn default_header_timeout() -> u64 {
    10
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatfoxConfig {
    /// Base URL of the export files (`{base_url}/export/json/recent/`).
    #[serde(default = "default_threatfox_base")]
    pub base_url: String,
    /// The ThreatFox API endpoint (`threatfox-api` sources); the key comes from `THREATFOX_AUTH_KEY`.
    #[serde(default = "default_threatfox_api")]
    pub api_url: String,
}

impl Default for ThreatfoxConfig {
    fn default() -> Self {
        ThreatfoxConfig {
            base_url: default_threatfox_base(),
            api_url: default_threatfox_api(),
        }
    }
}

fn default_threatfox_base() -> String {
    "https://threatfox.abuse.ch".into()
}
fn default_threatfox_api() -> String {
    "https://threatfox-api.abuse.ch/api/v1/".into()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    #[serde(default = "default_max_age")]
    pub max_age_days: u32,
    #[serde(default = "default_half_life")]
    pub half_life_days: f64,
    #[serde(default = "default_compromised_factor")]
    pub compromised_factor: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            max_age_days: default_max_age(),
            half_life_days: default_half_life(),
            compromised_factor: default_compromised_factor(),
        }
    }
}

fn default_max_age() -> u32 {
    90
}
fn default_half_life() -> f64 {
    30.0
}
fn default_compromised_factor() -> f64 {
    0.5
}

/// Values never published, whatever the feeds say (SPEC §7): names (with their subdomains), addresses, CIDRs.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    #[serde(default)]
    pub entries: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// abuse.ch ThreatFox export files (JSON or CSV, plain or ZIP).
    ThreatfoxExport,
    /// The ThreatFox API: `malwareinfo` per tracked family, or `get_iocs`.
    ThreatfoxApi,
    /// One indicator per line (URLhaus hostfiles, Feodo Tracker IP lists, in-house lists).
    Text,
    /// A CSV with a header line; `columns` maps its columns.
    Csv,
    /// A list of names or addresses never to publish (plain list, or a `rank,domain` top-sites CSV).
    Allowlist,
}

/// How an `allowlist` source's lines read.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AllowFormat {
    /// One name, address or CIDR per line; `#`, `;`, `//` comments; hosts-file lines. Names cover subdomains.
    #[default]
    List,
    /// `rank,domain` (Tranco, Umbrella, …): each name exactly, and its `www.`.
    TopSites,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Incremental,
    Full,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    /// Full URL (`https://…`, `http://…` or `file:///…`). For ThreatFox sources, `path` may be given instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Path joined to `[threatfox] base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Crontab schedule: 5 fields (minute first) or 6/7 fields (seconds first).
    pub schedule: String,
    #[serde(default)]
    pub mode: Mode,
    /// Largest body accepted, in bytes, after decompression of the transfer.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Longest silence while reading the body.
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    /// Longest a whole fetch may take, however steadily the bytes trickle in.
    #[serde(default = "default_total_timeout")]
    pub total_timeout_secs: u64,
    /// `allowlist` sources: how the lines read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AllowFormat>,
    /// `allowlist` sources in `top-sites` format: take only the first N ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<usize>,
    /// `threatfox-api`: `malwareinfo` (default; one query per family) or `get_iocs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<ApiQuery>,
    /// `threatfox-api` malwareinfo: the families to ask for (default: every `[[family]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<String>,
    /// `threatfox-api` get_iocs: days back, 1 to 7 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u8>,
    /// `threatfox-api` malwareinfo: at most this many IOCs per family, 1 to 1000 (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u16>,
    /// `text` and `csv`: the type of every value (`domain`, `ip`, `url`, …); detected per value if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ioc_type: Option<String>,
    /// `text` and `csv`: the family these indicators belong to (`csv`: unless a column gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// `text` and `csv`: their threat type (e.g. `botnet_cc`, `payload_delivery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_type: Option<String>,
    /// `text` and `csv`: the confidence given to every value (default 75).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// `csv`: which column holds what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<CsvColumns>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiQuery {
    Malwareinfo,
    GetIocs,
}

/// Column names of a `csv` source. Only `value` is required.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvColumns {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub ioc_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_read_timeout() -> u64 {
    60
}
fn default_total_timeout() -> u64 {
    900
}

impl SourceConfig {
    /// The upstream behind this source: every ThreatFox source shares one, so a full dump withdraws what
    /// any ThreatFox source reported, and agreement between them is not corroboration.
    pub fn upstream(&self) -> String {
        match self.kind {
            SourceKind::ThreatfoxExport | SourceKind::ThreatfoxApi => "threatfox".into(),
            SourceKind::Allowlist | SourceKind::Text | SourceKind::Csv => self.name.clone(),
        }
    }

    /// A key set that this kind of source does not read, named in a sentence; None when all fit.
    fn kind_mismatch(&self) -> Option<String> {
        use SourceKind::*;
        let k = self.kind;
        let checks: [(&str, bool, bool); 9] = [
            ("query", self.query.is_some(), k == ThreatfoxApi),
            ("families", !self.families.is_empty(), k == ThreatfoxApi),
            ("days", self.days.is_some(), k == ThreatfoxApi),
            ("limit", self.limit.is_some(), k == ThreatfoxApi),
            ("ioc_type", self.ioc_type.is_some(), matches!(k, Text | Csv)),
            ("family", self.family.is_some(), matches!(k, Text | Csv)),
            (
                "threat_type",
                self.threat_type.is_some(),
                matches!(k, Text | Csv),
            ),
            (
                "confidence",
                self.confidence.is_some(),
                matches!(k, Text | Csv),
            ),
            ("columns", self.columns.is_some(), k == Csv),
        ];
        if self.path.is_some() && !matches!(k, ThreatfoxExport | ThreatfoxApi) {
            return Some(
                "`path` is joined to the ThreatFox base URL: give this feed a `url` (http(s) or file://)"
                    .into(),
            );
        }
        if k == Csv && self.columns.is_none() {
            return Some("a csv source needs `columns = { value = \"…\" }`".into());
        }
        if self.mode == Mode::Full && !matches!(k, ThreatfoxExport | Text | Csv) {
            return Some("mode = \"full\" is for threatfox-export, text and csv sources".into());
        }
        checks
            .iter()
            .find(|(_, set, fits)| *set && !fits)
            .map(|(key, _, _)| {
                format!(
                    "`{key}` does not apply to a {} source",
                    serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )
            })
    }

    /// The URL this source fetches, with the ThreatFox base applied.
    pub fn effective_url(&self, tf: &ThreatfoxConfig) -> String {
        match (&self.url, &self.path) {
            (Some(u), _) => u.clone(),
            (None, None) if self.kind == SourceKind::ThreatfoxApi => tf.api_url.clone(),
            (None, Some(p)) => format!(
                "{}/{}",
                tf.base_url.trim_end_matches('/'),
                p.trim_start_matches('/')
            ),
            (None, None) => String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyConfig {
    /// Matched, in any case, against ThreatFox `malware_printable`, the malware slug, and the alias field.
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Names (exact, or `*.name` for a name and all below it) never listed for this family.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl FamilyConfig {
    /// Every lowercase spelling that identifies this family in a report.
    pub fn spellings(&self) -> Vec<String> {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .map(|s| s.to_lowercase())
            .collect()
    }
}

/// The formats a list is published in (SPEC §9).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Txt,
    Hosts,
    Rpz,
    Csv,
    Json,
    Stix,
    Kql,
    Edl,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Txt,
        Format::Hosts,
        Format::Rpz,
        Format::Csv,
        Format::Json,
        Format::Stix,
        Format::Kql,
        Format::Edl,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Hosts => "hosts",
            Format::Rpz => "rpz",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Stix => "stix",
            Format::Kql => "kql",
            Format::Edl => "edl",
        }
    }
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Txt | Format::Hosts | Format::Kql | Format::Edl => "text/plain; charset=utf-8",
            Format::Rpz => "text/dns; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Stix => "application/stix+json;version=2.1",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RpzAction {
    #[default]
    Nxdomain,
    Nodata,
    Drop,
    Passthru,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RpzConfig {
    /// Zone name; default `{list}.rpz.iocfeed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default)]
    pub action: RpzAction,
    /// Also block every name below a listed domain (never for compromised sites).
    #[serde(default = "yes")]
    pub wildcard: bool,
    #[serde(default = "default_rpz_ttl")]
    pub ttl: u32,
}

fn yes() -> bool {
    true
}
fn default_rpz_ttl() -> u32 {
    300
}

impl Default for RpzConfig {
    fn default() -> Self {
        RpzConfig {
            zone: None,
            action: RpzAction::default(),
            wildcard: true,
            ttl: default_rpz_ttl(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    pub name: String,
    /// Names (or aliases) of `[[family]]` tables; empty = all families.
    #[serde(default)]
    pub families: Vec<String>,
    pub types: Vec<String>,
    /// Empty = every threat type.
    #[serde(default)]
    pub threat_types: Vec<String>,
    #[serde(default)]
    pub min_confidence: u8,
    #[serde(default)]
    pub min_score: u8,
    /// 0 = no cap; otherwise keep the highest-scoring entries.
    #[serde(default)]
    pub max_entries: usize,
    pub formats: Vec<Format>,
    #[serde(default)]
    pub rpz: RpzConfig,
    #[serde(default = "default_retain")]
    pub retain_versions: u32,
    /// The safety brake: a pull that would remove more than this share of a list of 100 or more entries is
    /// held until a sane pull or `iocfeed publish LIST --force`.
    #[serde(default = "default_max_removal_ratio")]
    pub max_removal_ratio: f64,
    /// Who may fetch this list (SPEC §10.4): `"public"` (default), or tokens, basic-auth users and client
    /// networks.
    #[serde(default)]
    pub access: Access,
}

/// Printed by `config show` in place of a secret; refused as a secret's value.
pub const REDACTED: &str = "<redacted>";

/// A list's access rule.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Access {
    #[default]
    #[serde(with = "public_word")]
    Public,
    Restricted(Restricted),
}

mod public_word {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("public")
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        match String::deserialize(d)?.as_str() {
            "public" => Ok(()),
            other => Err(serde::de::Error::custom(format!(
                "access: {other:?}: use \"public\" or a table"
            ))),
        }
    }
}

/// Credentials and networks for a restricted list. A value `env:NAME` is read from that environment
/// variable, so secrets need not sit in the file; `config show` never prints them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Restricted {
    /// Bearer tokens (`Authorization: Bearer T`, or `?token=T` for clients that cannot send headers).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// HTTP basic users, `user:password`.
    #[serde(default)]
    pub basic: Vec<String>,
    /// Client networks (CIDR or address) allowed to connect; empty = any.
    #[serde(default)]
    pub allow_from: Vec<String>,
}

impl Serialize for Restricted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let hide = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .map(|x| {
                    if x.starts_with("env:") {
                        x.clone()
                    } else {
                        REDACTED.into()
                    }
                })
                .collect()
        };
        let mut st = s.serialize_struct("Restricted", 3)?;
        st.serialize_field("tokens", &hide(&self.tokens))?;
        st.serialize_field("basic", &hide(&self.basic))?;
        st.serialize_field("allow_from", &self.allow_from)?;
        st.end()
    }
}

impl Access {
    /// Checks a restricted rule's shape; `key` is where the rule sits (`access`, `admin`). Gives the key at
    /// fault and why, if any.
    fn check(&self, key: &str) -> Result<(), (String, String)> {
        let Access::Restricted(r) = self else {
            return Ok(());
        };
        let fail = |k: &str, m: String| Err((format!("{key}{k}"), m));
        if r.tokens.is_empty() && r.basic.is_empty() && r.allow_from.is_empty() {
            return fail(
                "",
                "give tokens, basic or allow_from (or \"public\")".into(),
            );
        }
        for (what, values) in [(".tokens", &r.tokens), (".basic", &r.basic)] {
            if values.iter().any(|x| x == REDACTED) {
                return fail(
                    what,
                    format!("{REDACTED:?} is what `config show` prints in place of a secret: give the secret, or env:NAME"),
                );
            }
        }
        if r.basic
            .iter()
            .any(|b| !b.starts_with("env:") && !b.contains(':'))
        {
            return fail(".basic", "entries are \"user:password\"".into());
        }
        if let Some(b) = r.basic.iter().find(|b| {
            b.split_once(':')
                .is_some_and(|(_, p)| p.starts_with("env:"))
        }) {
            let user = b.split(':').next().unwrap_or_default();
            return fail(
                 ".basic",
                format!("{user:?}: a password is not read from env: on its own; give \"env:NAME\" with NAME holding \"user:password\""),
            );
        }
        if let Some(n) = r
            .allow_from
            .iter()
            .find(|n| crate::serve::access::parse_net(n).is_none())
        {
            return fail(".allow_from", format!("not an address or CIDR: {n:?}"));
        }
        Ok(())
    }

    /// The `env:` variables of this rule's secrets that are unset or empty, with the key holding each.
    fn unset_env(&self) -> Vec<(&'static str, String)> {
        let Access::Restricted(r) = self else {
            return Vec::new();
        };
        [("tokens", &r.tokens), ("basic", &r.basic)]
            .into_iter()
            .flat_map(|(what, values)| {
                values.iter().filter_map(move |v| {
                    let var = v.strip_prefix("env:")?;
                    Restricted::resolve(v)
                        .is_empty()
                        .then(|| (what, var.to_string()))
                })
            })
            .collect()
    }
}

impl Restricted {
    /// A secret's value: `env:NAME` reads the environment (empty when unset, which matches nothing).
    pub fn resolve(v: &str) -> String {
        match v.strip_prefix("env:") {
            Some(name) => std::env::var(name).unwrap_or_default(),
            None => v.to_string(),
        }
    }
}

fn default_max_removal_ratio() -> f64 {
    0.5
}

fn default_retain() -> u32 {
    200
}

impl ListConfig {
    pub fn ioc_types(&self) -> Vec<IocType> {
        self.types
            .iter()
            .filter_map(|t| IocType::parse(t))
            .collect()
    }
    pub fn rpz_zone(&self) -> String {
        self.rpz
            .zone
            .clone()
            .unwrap_or_else(|| format!("{}.rpz.iocfeed", self.name))
    }
}

/// Where a configuration came from: a file, or the embedded default.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub origin: String,
    /// `env:` secrets whose variable is unset (see [`Config::unset_secrets`]).
    pub unset_secrets: Vec<String>,
}

impl Config {
    /// Reads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let (origin, text) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    file: p.display().to_string(),
                    source: e,
                })?;
                (p.display().to_string(), text)
            }
            None => ("<embedded default>".to_string(), DEFAULT_CONFIG.to_string()),
        };
        let config = Config::parse(&origin, &text)?;
        let unset_secrets = config
            .unset_secrets(&origin, &text)
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(Loaded {
            config,
            origin,
            unset_secrets,
        })
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Config, ConfigError> {
        // serde_path_to_error names the key (`list[0].max_entries`) when a value has the wrong type.
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().trim().replace('\n', " ");
            ConfigError::Parse {
                file: origin.to_string(),
                line: inner
                    .span()
                    .map(|s| line_of(text, s.start))
                    .unwrap_or_default(),
                message: if path.is_empty() || path == "." || message.contains(&path) {
                    message
                } else {
                    format!("{path}: {message}")
                },
            }
        })?;
        config.validate(origin, text)?;
        Ok(config)
    }

    fn validate(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let err = |line: usize, key: String, message: String| ConfigError::Invalid {
            file: origin.to_string(),
            line,
            key,
            message,
        };
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(err(
                line_of_key(text, "listen"),
                "server.listen".into(),
                format!("not an address:port: {:?}", self.server.listen),
            ));
        }
        if self.server.max_connections_per_client == 0 {
            return Err(err(
                line_of_key(text, "max_connections_per_client"),
                "server.max_connections_per_client".into(),
                "must be at least 1".into(),
            ));
        }
        if let Some(Err((k, m))) = self.server.access.as_ref().map(|a| a.check("access")) {
            return Err(err(
                server_key_line(text, "access"),
                format!("server.{k}"),
                m,
            ));
        }
        match &self.server.admin {
            Some(Access::Public) => {
                return Err(err(
                    server_key_line(text, "admin"),
                    "server.admin".into(),
                    "the admin routes cannot be public: give tokens, basic or allow_from".into(),
                ))
            }
            Some(a) => {
                if let Err((k, m)) = a.check("admin") {
                    return Err(err(
                        server_key_line(text, "admin"),
                        format!("server.{k}"),
                        m,
                    ));
                }
            }
            None => {}
        }
        if url::Url::parse(&self.threatfox.base_url).is_err() {
            return Err(err(
                line_of_key(text, "base_url"),
                "threatfox.base_url".into(),
                format!("not a URL: {:?}", self.threatfox.base_url),
            ));
        }
        for e in &self.allowlist.entries {
            if let Err(m) = crate::allow::parse(e) {
                return Err(err(
                    line_of_key(text, "entries"),
                    "allowlist.entries".into(),
                    m,
                ));
            }
        }
        let sc = &self.scoring;
        if sc.max_age_days == 0 {
            return Err(err(
                line_of_key(text, "max_age_days"),
                "scoring.max_age_days".into(),
                "must be at least 1".into(),
            ));
        }
        if !(sc.half_life_days.is_finite() && sc.half_life_days > 0.0) {
            return Err(err(
                line_of_key(text, "half_life_days"),
                "scoring.half_life_days".into(),
                "must be a positive number of days".into(),
            ));
        }
        if !(0.0..=1.0).contains(&sc.compromised_factor) {
            return Err(err(
                line_of_key(text, "compromised_factor"),
                "scoring.compromised_factor".into(),
                "must be 0.0 to 1.0".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let nth = self.sources[..i]
                .iter()
                .filter(|x| x.name == s.name)
                .count();
            let line = line_of_table_name(text, "source", &s.name, nth);
            let key = |k: &str| format!("source[{i}].{k}");
            if !valid_name(&s.name) {
                return Err(err(
                    line_in_table(text, line, "name"),
                    key("name"),
                    format!("{:?}: use letters, digits, '-' and '_'", s.name),
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(err(
                    line_in_table(text, line, "name"),
                    key("name"),
                    format!("duplicate source {:?}", s.name),
                ));
            }
            if let Err(e) = crate::scheduler::parse_schedule(&s.schedule) {
                return Err(err(
                    line_in_table(text, line, "schedule"),
                    key("schedule"),
                    e,
                ));
            }
            match (&s.url, &s.path) {
                (None, None) if s.kind == SourceKind::ThreatfoxApi => {}
                (None, None) => {
                    return Err(err(
                        line_in_table(text, line, "url"),
                        key("url"),
                        "either url or path is required".into(),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(err(
                        line_in_table(text, line, "url"),
                        key("url"),
                        "give url or path, not both".into(),
                    ))
                }
                _ => {}
            }
            if let Some(m) = s.kind_mismatch() {
                return Err(err(line_in_table(text, line, "kind"), key("kind"), m));
            }
            if let Some(t) = &s.ioc_type {
                if !IocType::ALL.iter().any(|x| x.as_str() == t) {
                    return Err(err(
                        line_in_table(text, line, "ioc_type"),
                        key("ioc_type"),
                        format!("unknown type {t:?} (domain, ip, url, md5, sha1, sha256)"),
                    ));
                }
            }
            if s.days.is_some_and(|d| !(1..=7).contains(&d)) {
                return Err(err(
                    line_in_table(text, line, "days"),
                    key("days"),
                    "must be 1 to 7".into(),
                ));
            }
            if s.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
                return Err(err(
                    line_in_table(text, line, "limit"),
                    key("limit"),
                    "must be 1 to 1000".into(),
                ));
            }
            if s.confidence.is_some_and(|c| c > 100) {
                return Err(err(
                    line_in_table(text, line, "confidence"),
                    key("confidence"),
                    "must be 0 to 100".into(),
                ));
            }
            if (s.format.is_some() || s.top.is_some()) && s.kind != SourceKind::Allowlist {
                return Err(err(
                    line_in_table(text, line, "format"),
                    key("format"),
                    "format and top are for allowlist sources".into(),
                ));
            }
            let u = s.effective_url(&self.threatfox);
            match url::Url::parse(&u) {
                Ok(p) if matches!(p.scheme(), "http" | "https" | "file") => {}
                _ => {
                    return Err(err(
                        line_in_table(text, line, "url"),
                        key("url"),
                        format!("not an http(s) or file URL: {u:?}"),
                    ))
                }
            }
        }
        let mut families = HashSet::new();
        for (i, f) in self.families.iter().enumerate() {
            let nth = self.families[..i]
                .iter()
                .filter(|x| x.name.eq_ignore_ascii_case(&f.name))
                .count();
            let line = line_of_table_name(text, "family", &f.name, nth);
            if f.name.trim().is_empty() {
                return Err(err(
                    line_in_table(text, line, "name"),
                    format!("family[{i}].name"),
                    "a family needs a name".into(),
                ));
            }
            // An exclusion as wide as a public suffix would switch the family's lists off.
            if let Some(Err(m)) = f
                .exclude
                .iter()
                .map(|x| crate::allow::parse(x))
                .find(Result::is_err)
            {
                return Err(err(
                    line_in_table(text, line, "exclude"),
                    format!("family[{i}].exclude"),
                    m,
                ));
            }
            if !families.insert(f.name.to_lowercase()) {
                let nth = self.families[..i]
                    .iter()
                    .filter(|x| x.name.eq_ignore_ascii_case(&f.name))
                    .count();
                return Err(err(
                    line_of_table_name(text, "family", &f.name, nth),
                    format!("family[{i}].name"),
                    format!("duplicate family {:?}", f.name),
                ));
            }
        }
        let mut lists = HashSet::new();
        let declared = || {
            self.families
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, l) in self.lists.iter().enumerate() {
            let nth = self.lists[..i].iter().filter(|x| x.name == l.name).count();
            let line = line_of_table_name(text, "list", &l.name, nth);
            let key = |k: &str| format!("list[{i}].{k}");
            if !valid_name(&l.name) {
                return Err(err(
                    line_in_table(text, line, "name"),
                    key("name"),
                    format!("{:?}: use letters, digits, '-' and '_'", l.name),
                ));
            }
            if !lists.insert(l.name.as_str()) {
                return Err(err(
                    line_in_table(text, line, "name"),
                    key("name"),
                    format!("duplicate list {:?}", l.name),
                ));
            }
            // A misspelt family would select nothing, quietly: every name must be a [[family]].
            if let Some(f) = l.families.iter().find(|f| self.family(f).is_none()) {
                return Err(err(
                    line_in_table(text, line, "families"),
                    key("families"),
                    format!(
                        "{f:?} is not a [[family]] (declared: {}); add a [[family]] with that name",
                        if self.families.is_empty() {
                            "none".to_string()
                        } else {
                            declared()
                        }
                    ),
                ));
            }
            if l.types.is_empty() {
                return Err(err(
                    line_in_table(text, line, "types"),
                    key("types"),
                    "at least one type is required".into(),
                ));
            }
            for t in &l.types {
                // Only the canonical names: a list says exactly what it holds.
                if !IocType::ALL.iter().any(|x| x.as_str() == t) {
                    return Err(err(
                        line_in_table(text, line, "types"),
                        key("types"),
                        format!("unknown type {t:?} (domain, ip, url, md5, sha1, sha256)"),
                    ));
                }
            }
            if l.formats.is_empty() {
                return Err(err(
                    line_in_table(text, line, "formats"),
                    key("formats"),
                    "at least one format is required".into(),
                ));
            }
            if l.min_confidence > 100 {
                return Err(err(
                    line_in_table(text, line, "min_confidence"),
                    key("min_confidence"),
                    "must be 0 to 100".into(),
                ));
            }
            if l.min_score > 100 {
                return Err(err(
                    line_in_table(text, line, "min_score"),
                    key("min_score"),
                    "must be 0 to 100".into(),
                ));
            }
            if !(0.0..=1.0).contains(&l.max_removal_ratio) {
                return Err(err(
                    line_in_table(text, line, "max_removal_ratio"),
                    key("max_removal_ratio"),
                    "must be 0.0 to 1.0".into(),
                ));
            }
            if let Err((k, m)) = l.access.check("access") {
                return Err(err(line_in_table(text, line, "access"), key(&k), m));
            }
            if l.retain_versions == 0 {
                return Err(err(
                    line_in_table(text, line, "retain_versions"),
                    key("retain_versions"),
                    "must be at least 1".into(),
                ));
            }
            if l.formats.contains(&Format::Hosts)
                && l.ioc_types().iter().any(|t| *t != IocType::Domain)
            {
                return Err(err(
                    line_in_table(text, line, "formats"),
                    key("formats"),
                    "hosts needs a list of domains".into(),
                ));
            }
            // PAN-OS takes one type per list (IP, domain or URL); hashes are not an EDL type.
            if l.formats.contains(&Format::Edl) {
                let types = l.ioc_types();
                if types.len() != 1
                    || !matches!(types[0], IocType::Domain | IocType::Ip | IocType::Url)
                {
                    return Err(err(
                        line_in_table(text, line, "formats"),
                        key("formats"),
                        "edl needs a list of one type: domain, ip or url (PAN-OS lists hold one type)".into(),
                    ));
                }
            }
            if l.formats.contains(&Format::Rpz) {
                let types = l.ioc_types();
                if types
                    .iter()
                    .any(|t| !matches!(t, IocType::Domain | IocType::Ip))
                {
                    return Err(err(
                        line_in_table(text, line, "formats"),
                        key("formats"),
                        "rpz needs a list of domains and/or ips".into(),
                    ));
                }
                let zone = l.rpz_zone();
                let label_ok = |x: &str| {
                    !x.is_empty()
                        && x.len() < 64
                        && x.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                        })
                };
                if !zone.split('.').all(label_ok) {
                    return Err(err(
                        line_in_table(text, line, "rpz.zone"),
                        key("rpz.zone"),
                        format!("not a valid lowercase zone name: {zone:?}"),
                    ));
                }
                if zone.len() > 200 {
                    return Err(err(
                        line_in_table(text, line, "rpz.zone"),
                        key("rpz.zone"),
                        "zone name too long (at most 200 octets)".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies the environment and command-line overrides (the caller resolves their precedence).
    pub fn apply_overrides(
        &mut self,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
        threatfox_url: Option<String>,
    ) {
        if let Some(l) = listen {
            self.server.listen = l;
        }
        if let Some(d) = data_dir {
            self.server.data_dir = d;
        }
        if let Some(u) = threatfox_url {
            self.threatfox.base_url = u;
        }
    }

    /// The upstream behind a source name (a source no longer configured is its own upstream).
    pub fn upstream_of(&self, source: &str) -> String {
        self.source(source)
            .map(|s| s.upstream())
            .unwrap_or_else(|| source.to_string())
    }

    /// How many independent reports agree on an IOC: distinct (upstream, report id) pairs, so the same
    /// ThreatFox report seen in the recent export and in the full dump counts once.
    pub fn independent_reports<'a>(
        &self,
        reports: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> usize {
        let mut seen: Vec<(String, &str)> = reports
            .map(|(src, id)| (self.upstream_of(src), id))
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn list(&self, name: &str) -> Option<&ListConfig> {
        self.lists.iter().find(|l| l.name == name)
    }

    /// The `[[family]]` that `name` spells: its name or one of its aliases, in any case.
    pub fn family(&self, name: &str) -> Option<&FamilyConfig> {
        let name = name.to_lowercase();
        self.families
            .iter()
            .find(|f| f.name.to_lowercase() == name)
            .or_else(|| self.families.iter().find(|f| f.spellings().contains(&name)))
    }

    /// Secrets given as `env:NAME` whose variable is unset or empty, as errors naming the key and line.
    /// Only the server needs them (`serve`, `config check`): a `pull` from cron runs without them.
    pub fn unset_secrets(&self, origin: &str, text: &str) -> Vec<ConfigError> {
        let problem = |line: usize, key: String, var: String, whom: String| ConfigError::Invalid {
            file: origin.to_string(),
            line,
            key,
            message: format!("environment variable {var} is not set: no client could fetch {whom}"),
        };
        let mut out = Vec::new();
        let server = [
            ("admin", &self.server.admin, "POST /admin/pull"),
            (
                "access",
                &self.server.access,
                "/iocs, /families or /sources",
            ),
        ];
        for (key, access, whom) in server {
            for (what, var) in access.iter().flat_map(Access::unset_env) {
                out.push(problem(
                    server_key_line(text, key),
                    format!("server.{key}.{what}"),
                    var,
                    whom.into(),
                ));
            }
        }
        for (i, l) in self.lists.iter().enumerate() {
            let nth = self.lists[..i].iter().filter(|x| x.name == l.name).count();
            let line = line_in_table(
                text,
                line_of_table_name(text, "list", &l.name, nth),
                "access",
            );
            for (what, var) in l.access.unset_env() {
                out.push(problem(
                    line,
                    format!("list[{i}].access.{what}"),
                    var,
                    format!("{:?}", l.name),
                ));
            }
        }
        out
    }

    /// Who may use the views that span every list (`/iocs`, `/families`, a family's report, `/sources`):
    /// `server.access` when set; else everyone while every list is public, and no one (`None`) once a
    /// list is restricted, since those views would show what the restricted list holds.
    pub fn views_access(&self) -> Option<Access> {
        match &self.server.access {
            Some(a) => Some(a.clone()),
            None if self.lists.iter().all(|l| l.access == Access::Public) => Some(Access::Public),
            None => None,
        }
    }

    /// The effective configuration as TOML, defaults filled in (`iocfeed config show`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `key` in the table whose `name = "value"` is on line `name_line` (else that line).
/// The line of `key` in `[server]`.
fn server_key_line(text: &str, key: &str) -> usize {
    let header = text
        .lines()
        .position(|l| l.trim() == "[server]")
        .map(|i| i + 1)
        .unwrap_or(0);
    line_in_table(text, header, key)
}

fn line_in_table(text: &str, name_line: usize, key: &str) -> usize {
    if name_line == 0 {
        return 0;
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = (0..name_line)
        .rev()
        .find(|&i| lines[i].trim_start().starts_with('['))
        .unwrap_or(0);
    let end = (name_line..lines.len())
        .find(|&i| lines[i].trim_start().starts_with('['))
        .unwrap_or(lines.len());
    (start..end)
        .find(|&i| {
            let l = lines[i].trim_start();
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
        .unwrap_or(name_line)
}

/// The line of the `nth` (from 0) `name = "value"` inside a `[[table]]`, to point an error at the table.
fn line_of_table_name(text: &str, table: &str, value: &str, nth: usize) -> usize {
    let header = format!("[[{table}]]");
    let mut current = "";
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            if t.starts_with('[') {
                current = t;
                return false;
            }
            current == header
                && t.strip_prefix("name")
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .is_some_and(|r| r.trim().trim_matches('"') == value)
        })
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| i + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_has_the_main_job() {
        let c = Config::parse("default", DEFAULT_CONFIG).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        let names: Vec<_> = c.lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "remus-domains",
                "remus-ips",
                "remus-urls",
                "threatfox-botnet-cc-domains"
            ]
        );
        let full = c.source("threatfox-full").unwrap();
        assert_eq!(full.mode, Mode::Full);
        assert_eq!(
            c.source("threatfox-recent")
                .unwrap()
                .effective_url(&c.threatfox),
            "https://threatfox.abuse.ch/export/json/recent/"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = Config::parse(
            "x.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:3:"), "{e}");
        assert!(e.contains("listen_port"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let text = "[[list]]\nname = \"a\"\ntypes = [\"dom\"]\nformats = [\"txt\"]\n";
        let e = Config::parse("c.toml", text).unwrap_err().to_string();
        assert_eq!(
            e,
            "c.toml:3: list[0].types: unknown type \"dom\" (domain, ip, url, md5, sha1, sha256)"
        );
        let text = "[[source]]\nname = \"s\"\nkind = \"threatfox-export\"\nurl = \"http://x/\"\nschedule = \"nope\"\n";
        let e = Config::parse("c.toml", text).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:5: source[0].schedule:"), "{e}");
    }
}
