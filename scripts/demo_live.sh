#!/usr/bin/env bash
# make demo-live: place the edge-retail fleet against live metrics.
#
# Starts a throw-away Prometheus on 127.0.0.1 (free port, temporary storage)
# loaded with the example fleet's metrics (examples/live/generate.py, ending
# now, backfilled with promtool), shows the live fleet, places against it,
# and stops Prometheus. Nothing outside a temporary folder and the plan file
# is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-plan-live.json}
BUNDLE=(examples/edge-retail examples/live/metrics-source.yaml)

for tool in prometheus promtool; do
  command -v "$tool" >/dev/null || { echo "demo-live needs $tool (apt-get install prometheus)" >&2; exit 1; }
done

WORK=$(mktemp -d)
PROM_PID=""
cleanup() {
  if [[ -n "$PROM_PID" ]]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== generating metrics for examples/edge-retail (last 10 minutes, ending now)"
"$BIN/python" examples/live/generate.py examples/edge-retail --end now > "$WORK/fleet.om"
promtool tsdb create-blocks-from openmetrics "$WORK/fleet.om" "$WORK/tsdb" >/dev/null

PORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 1h\nscrape_configs: []\n' > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$PORT" >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/-/ready', timeout=1)" "$URL" 2>/dev/null; then break; fi
  kill -0 "$PROM_PID" 2>/dev/null || { cat "$WORK/prometheus.log" >&2; exit 1; }
  sleep 0.2
done
echo "== Prometheus ready at $URL (pid $PROM_PID)"

echo "== berth fleet"
"$BIN/berth" fleet "${BUNDLE[@]}" --prometheus "$URL"

echo "== berth place --prometheus"
"$BIN/berth" place "${BUNDLE[@]}" --prometheus "$URL" --output "$OUT" --quiet
echo "== plan written to $OUT; warnings:"
"$BIN/python" -c "import json,sys; [print('  -', w) for w in json.load(open(sys.argv[1]))['status'].get('warnings', [])]" "$OUT"
