-- PowerDNS Recursor (lua-config-file): load the RPZ file fetched from iocfeed. The Recursor does not watch
-- the file: fetch it as for BIND, then reload the Lua configuration instead of `rndc reload`:
--   */15 * * * *  curl -fsS -o /var/lib/pdns-recursor/remus.rpz.tmp http://127.0.0.1:8080/lists/remus-domains.rpz \
--                 && mv /var/lib/pdns-recursor/remus.rpz.tmp /var/lib/pdns-recursor/remus.rpz \
--                 && rec_control reload-lua-config
-- No `defpol`: the zone's own actions (nxdomain, nodata, drop, passthru) apply as published. Blocked answers
-- carry Extended DNS Error 15 (Blocked) naming the list, so a client (dig, a browser) can tell a block from a
-- name that does not exist.
rpzFile("/var/lib/pdns-recursor/remus.rpz", {
  policyName = "remus.rpz.iocfeed",
  extendedErrorCode = 15,
  extendedErrorExtra = "iocfeed remus-domains",
})
