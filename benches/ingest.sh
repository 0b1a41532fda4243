#!/usr/bin/env bash
# Ingest benchmark (issue: streaming import of a full dump).
#
#   bash benches/ingest.sh [ROWS]        # default 1000000
#
# Makes a synthetic ThreatFox full CSV dump (ZIP) with ../shared/tools/gen-threatfox-full.py, imports it
# with `iocfeed pull threatfox-full --file`, and, as the baseline on the same machine, imports the same
# rows with sqlite3's own `.import` into one plain table (no normalisation, no indexes, no publishing).
# Prints wall time and peak RSS of both, and their ratios.
set -euo pipefail
rows=${1:-1000000}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${IOCFEED_SHARED:-$here/../shared}
work=$(mktemp -d -t iocfeed-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed for the baseline (apt-get install sqlite3)"; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)"; exit 2; }

echo "generating $rows rows ..."
python3 "$shared/tools/gen-threatfox-full.py" "$rows" "$work/full.zip" --seed 1
ls -l "$work/full.zip" | awk '{print "zip bytes:", $5}'
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin=$here/target/release/iocfeed

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.$label" "$@" >"$work/out.$label" 2>&1 || { cat "$work/out.$label"; exit 1; }
  read -r secs kb <"$work/time.$label"
  printf '%-22s wall %8.2f s   peak RSS %8.1f MB\n' "$label" "$secs" "$(echo "$kb/1024" | bc -l)"
  eval "${label//-/_}_secs=$secs; ${label//-/_}_kb=$kb"
}

export IOCFEED_NOW=2026-07-14T08:00:00Z IOCFEED_LOG=warn
measure iocfeed env IOCFEED_DATA_DIR="$work/data" "$bin" pull threatfox-full --file "$work/full.zip"

# Baseline: the same rows as a standard CSV (header block stripped, '", "' separators made plain commas).
(cd "$work" && python3 - <<'PY'
import zipfile
with zipfile.ZipFile("full.zip") as z, z.open(z.namelist()[0]) as src, open("plain.csv", "wb") as out:
    for line in src:
        if line.startswith(b"#"):
            if line.startswith(b'# "'):
                out.write(line[2:].replace(b'", "', b'","'))
            continue
        out.write(line.replace(b'", "', b'","'))
PY
)
measure sqlite3-import sqlite3 "$work/baseline.sqlite" ".import --csv $work/plain.csv iocs"

echo "rows stored by iocfeed: $(sqlite3 "$work/data/iocfeed.sqlite" 'select count(*) from ioc')  (reports: $(sqlite3 "$work/data/iocfeed.sqlite" 'select count(*) from report'))"
echo "rows imported by sqlite3: $(sqlite3 "$work/baseline.sqlite" 'select count(*) from iocs')"
printf 'ratio iocfeed / sqlite3 .import: time %.2fx, peak RSS %.2fx\n' \
  "$(echo "$iocfeed_secs/$sqlite3_import_secs" | bc -l)" "$(echo "$iocfeed_kb/$sqlite3_import_kb" | bc -l)"
