-- PowerDNS Recursor (lua-config-file): load the RPZ file fetched from iocfeed (same cron as for BIND).
-- No `defpol`: the zone's own actions (nxdomain, nodata, drop, passthru) apply as published. Blocked answers
-- carry Extended DNS Error 15 (Blocked) naming the list, so a client (dig, a browser) can tell a block from a
-- name that does not exist.
rpzFile("/var/lib/pdns-recursor/remus.rpz", {
  policyName = "remus.rpz.iocfeed",
  extendedErrorCode = 15,
  extendedErrorExtra = "iocfeed remus-domains",
})
