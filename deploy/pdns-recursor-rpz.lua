-- PowerDNS Recursor (lua-config-file): load the RPZ file fetched from iocfeed (same cron as for BIND).
rpzFile("/var/lib/pdns-recursor/remus.rpz", { policyName = "remus.rpz.iocfeed", defpol = Policy.NXDOMAIN })
