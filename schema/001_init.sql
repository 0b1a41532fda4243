-- iocfeed schema, version 1. Times are Unix seconds (UTC).

-- One row per indicator: (type, normalised value) is its identity. The merged view of every report.
CREATE TABLE ioc (
    id             INTEGER PRIMARY KEY,
    type           TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    first_seen     INTEGER,              -- earliest first_seen of any report
    last_seen      INTEGER,              -- latest last_seen of any report (NULL: never reported)
    confidence     INTEGER NOT NULL,     -- highest confidence ever reported
    is_compromised INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, value)
);

-- One row per upstream report (provenance): a ThreatFox IOC id within a source.
CREATE TABLE report (
    source         TEXT    NOT NULL,
    report_id      TEXT    NOT NULL,
    ioc_id         INTEGER NOT NULL REFERENCES ioc (id),
    family         TEXT,                 -- malware_printable
    malware        TEXT,                 -- slug, e.g. win.remus
    alias          TEXT,
    threat_type    TEXT,
    port           INTEGER,
    first_seen     INTEGER,
    last_seen      INTEGER,
    confidence     INTEGER,
    is_compromised INTEGER NOT NULL DEFAULT 0,
    reference      TEXT,
    tags           TEXT,
    reporter       TEXT,
    pulled_first   INTEGER NOT NULL,     -- when iocfeed first / last saw this report
    pulled_last    INTEGER NOT NULL,
    PRIMARY KEY (source, report_id)
) WITHOUT ROWID;
CREATE INDEX report_ioc ON report (ioc_id);

-- Values a source sent that could not be made valid, kept (escaped) for inspection.
CREATE TABLE reject (
    source   TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    raw      TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    PRIMARY KEY (source, reason, raw)
) WITHOUT ROWID;

-- Fetch state per source: validators for conditional GET and the outcome of the last pull.
CREATE TABLE source_state (
    source        TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    last_attempt  INTEGER,
    last_success  INTEGER,
    last_result   TEXT,                  -- ok | not-modified | error
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    rows          INTEGER NOT NULL DEFAULT 0,
    accepted      INTEGER NOT NULL DEFAULT 0,
    rejected      INTEGER NOT NULL DEFAULT 0,
    rejects_json  TEXT    NOT NULL DEFAULT '{}'
);

-- A version of a list: its entry set at one moment. `members` is the sorted values, one per line.
CREATE TABLE list_version (
    list         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    serial       INTEGER NOT NULL,       -- RPZ SOA serial, increases with every version
    published_at INTEGER NOT NULL,
    entries      INTEGER NOT NULL,
    members      TEXT    NOT NULL,
    PRIMARY KEY (list, version)
);

-- The rendered bytes of a version in one format, stored once and served byte-identical forever.
CREATE TABLE artifact (
    list    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    format  TEXT    NOT NULL,
    body    BLOB    NOT NULL,
    gzip    BLOB    NOT NULL,
    etag    TEXT    NOT NULL,            -- sha256 of body, hex
    PRIMARY KEY (list, version, format)
);

-- Numbers that must never go backwards, per list (the last SOA serial issued, even for pruned versions).
CREATE TABLE list_state (
    list        TEXT PRIMARY KEY,
    last_serial INTEGER NOT NULL
);
