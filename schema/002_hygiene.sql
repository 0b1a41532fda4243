-- iocfeed schema, version 2: withdrawal, allowlist, publish holds.

-- Set when a `mode = "full"` source's dump no longer holds this report (upstream deleted it).
ALTER TABLE report ADD COLUMN withdrawn_at INTEGER;

-- Allowlist entries added from the command line or by `allowlist` sources (config entries live in the config).
CREATE TABLE allow (
    entry      TEXT    NOT NULL,          -- normalised name, address, or CIDR
    subdomains INTEGER NOT NULL,          -- 1: a name and everything below it
    origin     TEXT    NOT NULL,          -- cli | source:NAME
    reason     TEXT,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (entry, origin)
) WITHOUT ROWID;

-- The safety brake: a list or source held until a sane pull or `iocfeed publish LIST --force`.
CREATE TABLE hold (
    scope  TEXT    PRIMARY KEY,           -- list:NAME | source:NAME
    reason TEXT    NOT NULL,
    since  INTEGER NOT NULL
);
