#!/usr/bin/env bash
# Warm-path throughput of thawd: a no-op Python function invoked over HTTP by
# wrk with 64 connections, after every connection's instance is warm. Prints
# requests per second and wrk's latency distribution, then the same function's
# handler called in-process by Python (what thawd adds is the difference).
# The function gets 1769 MB, which Lambda pairs with one full vCPU: at 128 MB
# its CPU quota (7% of a CPU) would be measured instead of thawd. The memory
# budget is raised to match; a no-op touches almost none of it.
#   bench/warm_throughput.sh [SECONDS] [CONNECTIONS]
#   (environment: memory_mb, rate_connections for the fixed-rate run, default 8;
#    THAWD=path runs that thawd binary instead of building ./build's, to
#    compare two builds on one machine)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
[ "$(id -u)" = 0 ] || { echo "warm_throughput: needs root" >&2; exit 1; }
command -v wrk >/dev/null || { echo "warm_throughput: wrk missing (scripts/install-deps)" >&2; exit 1; }
thawd=${THAWD:-}
if [ -z "$thawd" ]; then
  ./scripts/build >/dev/null
  thawd=./build/invoker/thawd
fi

work=$(mktemp -d /tmp/thaw-warm-XXXXXX)
thawd_pid=
cleanup() {
  [ -n "$thawd_pid" ] && kill "$thawd_pid" 2>/dev/null && wait "$thawd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$thawd" --listen 127.0.0.1:0 --state-dir "$work/state" \
  --max-concurrency "$connections" --memory-budget-mb 131072 --cgroup-parent "thaw-bench-$$" 2>"$work/thawd.log" &
thawd_pid=$!
port=
for _ in $(seq 200); do
  port=$(grep -o '"port":[0-9]*' "$work/thawd.log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$work/thawd.log" >&2; exit 1; }
token=$(cat "$work/state/admin-token")
url="http://127.0.0.1:$port"

zip=$(python3 -c 'import base64,io,zipfile
b=io.BytesIO()
with zipfile.ZipFile(b,"w") as z: z.write("images/examples/python-noop/handler.py","handler.py")
print(base64.b64encode(b.getvalue()).decode())')
curl -sf -o /dev/null -H "Authorization: Bearer $token" -X POST "$url/2015-03-31/functions" \
  -d "{\"FunctionName\":\"noop\",\"Runtime\":\"python3.11\",\"Handler\":\"handler.handler\",\"SnapStart\":{\"ApplyOn\":\"None\"},\"MemorySize\":${memory_mb:-1769},\"Code\":{\"ZipFile\":\"$zip\"}}"

cat >"$work/invoke.lua" <<LUA
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Authorization"] = "Bearer $token"
local shown = 0
response = function(status, headers, body)
  if status ~= 200 and shown < 2 then
    shown = shown + 1
    io.stderr:write("non-200: ", status, " ", body, "\n")
  end
end
LUA
target="$url/2015-03-31/functions/noop/invocations"
# Warm-up: one instance per connection, then discarded.
wrk -t2 -c"$connections" -d3s -s "$work/invoke.lua" "$target" >/dev/null 2>&1
# Cold starts of the warm-up may outlive wrk's connections: wait until none runs.
for _ in $(seq 600); do
  inflight=$(curl -s -H "Authorization: Bearer $token" "$url/thaw/v1/instances" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["InFlight"])')
  [ "$inflight" = 0 ] && break
  sleep 0.1
done
echo "thawd warm path: no-op Python function, $connections connections, ${seconds}s (wrk)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/invoke.lua" "$target" >"$work/wrk.txt"
grep -E "Requests/sec|Latency|50%|75%|90%|99%|requests in|Non-2xx" "$work/wrk.txt"
curl -s -H "Authorization: Bearer $token" "$url/thaw/v1/instances" |
  python3 -c 'import json,sys; print("instances:", len(json.load(sys.stdin)["Instances"]))'
half=$(awk '/Requests\/sec/ {printf "%d", $2 / 2}' "$work/wrk.txt")
echo "at half that rate ($half/s) on ${rate_connections:-8} connections, fixed rate (http_rate_bench):"
./build/bench/http_rate_bench "$port" "$token" /2015-03-31/functions/noop/invocations \
  "$half" "$seconds" "${rate_connections:-8}"

echo "the handler called in-process by python3.11 (per call):"
python3.11 -c 'import timeit,sys; sys.path.insert(0,"images/examples/python-noop"); import handler
n=200000; t=timeit.timeit(lambda: handler.handler({}, None), number=n); print("  %.3f us" % (t/n*1e6))'
