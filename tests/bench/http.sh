#!/usr/bin/env bash
# tests/bench/http.sh [--json FILE]   (run through: scripts/bench.sh http [--json FILE])
# Catch-all RPS: hypergate's `http.catchall` (Vrypt) against nginx with one worker returning the same
# body (`return 200 "Vrypt"`), in the same run. Each server is pinned to core 0 and runs alone (the
# other is stopped: hypergate busy-polls its core); wrk is pinned to core 1 with one thread and 50
# connections for 5 s, 3 repetitions per (server, mode), plain and pipelined (16 requests per write,
# tests/bench/pipeline.lua). Prints impl, mode, median/min/max req/s; --json FILE writes the same.
# `/fire` rows: hypergate's `http.fire` alone on core 0 (busy worker, passthrough pipeline, null sink),
# wrk on core 1 POSTing /fire with a Lua script that collects every X-Latency-Ns header (the in-engine
# time: parse done -> accepted by the valve engine) and reports its median and p99 per run; 1 and 50
# connections, 3 repetitions each; req/s too. Goal: median <= 200 ns.
# Builds only the `hypergate` target (release preset); HG_HTTP_BINARY=path uses that binary instead
# (no build). HG_HTTP_ONLY=fire runs only the /fire rows; HG_FIRE_BURST=N sets source.fire.burst
# (default 32). HG_HTTP_IDLE sets the catch-all's [gateway] idle (default busy; "backoff" makes its CPU
# time mean work). For each catch-all run it also prints the CPU seconds wrk and the server used (wrk's
# from bash's `time`, the server's user/sys from /proc/PID/stat): wrk's CPU close to the wall time means
# the client, not the server, set the rate. Kills everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=$2; shift 2 ;;
    *) echo "http.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

reps=${HG_HTTP_REPS:-3}
duration=${HG_HTTP_DURATION:-5s}
conns=${HG_HTTP_CONNS:-50}

for tool in wrk nginx taskset curl; do
  command -v "$tool" >/dev/null || { echo "http.sh: '$tool' not found (scripts/setup.sh installs it)" >&2; exit 1; }
done

only=${HG_HTTP_ONLY:-all}
if [ -n "${HG_HTTP_BINARY:-}" ]; then
  binary=$HG_HTTP_BINARY
else
  cmake --build --preset release --target hypergate >/dev/null
  binary=build/release/framework/gateway/hypergate
fi
lua=$(pwd)/tests/bench/pipeline.lua

tmp=$(mktemp -d /tmp/hg_http_bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (connection refused = free).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "http.sh: no free port found" >&2; return 1
}

wait_ready() {  # port name
  for _ in $(seq 1 100); do
    if [ "$(curl -s -m 1 "http://127.0.0.1:$1/" 2>/dev/null)" = "Vrypt" ]; then return 0; fi
    sleep 0.1
  done
  echo "http.sh: $2 did not answer on port $1" >&2; return 1
}

stop_server() {  # pid
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

declare -A results  # "impl mode" -> space-separated req/s of each repetition
declare -A cpu_wrk cpu_user cpu_sys  # "impl mode" -> CPU seconds of each repetition

clk_tck=$(getconf CLK_TCK)
proc_cpu() {  # pid -> "user_s sys_s" (fields 14 and 15 of /proc/PID/stat, in clock ticks)
  awk -v t="$clk_tck" '{ printf "%.2f %.2f\n", $14 / t, $15 / t }' "/proc/$1/stat"
}

run_wrk() {  # impl mode port server_pid
  local impl=$1 mode=$2 port=$3 spid=$4 out rps u0 s0 u1 s1 wu ws
  local args=(-t1 "-c$conns" "-d$duration" --latency)
  [ "$mode" = "pipeline16" ] && args+=(-s "$lua")
  for r in $(seq 1 "$reps"); do
    read -r u0 s0 <<<"$(proc_cpu "$spid")"
    { TIMEFORMAT='%U %S'; time taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port/" >"$tmp/wrk.out" 2>&1; } 2>"$tmp/wrk.time"
    read -r u1 s1 <<<"$(proc_cpu "$spid")"
    read -r wu ws <"$tmp/wrk.time"
    cpu_wrk["$impl $mode"]+="$(awk -v a="$wu" -v b="$ws" 'BEGIN { printf "%.2f", a + b }') "
    cpu_user["$impl $mode"]+="$(awk -v a="$u0" -v b="$u1" 'BEGIN { printf "%.2f", b - a }') "
    cpu_sys["$impl $mode"]+="$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }') "
    out=$(cat "$tmp/wrk.out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    [ -n "$rps" ] || { echo "http.sh: wrk gave no result for $impl $mode:" >&2; echo "$out" >&2; exit 1; }
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
      echo "warning: $impl $mode rep $r: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | xargs)" >&2
    fi
    results["$impl $mode"]+="$rps "
  done
}

if [ "$only" = all ]; then
# --- hypergate: http.catchall on one busy-polling worker pinned to core 0 ---
hg_port=$(free_port)
cat >"$tmp/hypergate.toml" <<TOML
[gateway]
workers = 1
cores = [0]
idle = "${HG_HTTP_IDLE:-busy}"

[source.catchall]
type = "http.catchall"
listen = "127.0.0.1:$hg_port"
statsd_interval = "0s"

[sink.discard]
type = "null"
TOML
taskset -c 0 "$binary" run --config "$tmp/hypergate.toml" >"$tmp/hypergate.log" 2>&1 &
hg_pid=$!; pids+=("$hg_pid")
wait_ready "$hg_port" hypergate || { cat "$tmp/hypergate.log" >&2; exit 1; }
run_wrk hypergate plain "$hg_port" "$hg_pid"
run_wrk hypergate pipeline16 "$hg_port" "$hg_pid"
stop_server "$hg_pid"

# --- nginx: one worker, same body, pinned to core 0 ---
ng_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$ng_port;
    location / { return 200 "Vrypt"; }
  }
}
CONF
taskset -c 0 nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx/stdout.log" 2>&1 &
ng_pid=$!; pids+=("$ng_pid")
wait_ready "$ng_port" nginx || { cat "$tmp/nginx/error.log" "$tmp/nginx/stdout.log" >&2; exit 1; }
ng_worker=$(pgrep -P "$ng_pid" | head -1)
[ -n "$ng_worker" ] || { echo "http.sh: nginx has no worker process" >&2; exit 1; }
run_wrk nginx plain "$ng_port" "$ng_worker"
run_wrk nginx pipeline16 "$ng_port" "$ng_worker"
stop_server "$ng_pid"
fi

# --- hypergate: http.fire alone, in-engine latency from X-Latency-Ns ---
declare -A fire_rps fire_med fire_p99 fire_col  # mode -> space-separated values of each repetition
run_fire() {
  local port fire_pid out line c r
  port=$(free_port)
  cat >"$tmp/fire.toml" <<TOML
[gateway]
workers = 1
cores = [0]
idle = "busy"

[admin]
enabled = false

[source.fire]
type = "http.fire"
listen = "127.0.0.1:$port"
pipeline = "passthrough"
pipeline_options = { key = "source" }
${HG_FIRE_BURST:+burst = $HG_FIRE_BURST}

[sink.discard]
type = "null"
TOML
  # Collects every X-Latency-Ns per wrk thread; done() merges them and prints median and p99.
  cat >"$tmp/fire.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "fire-bench-body!"
wrk.headers["Content-Type"] = "text/plain"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) lat = {}; n = 0; collisions = 0 end
function response(status, headers, body)
  local v = headers["X-Latency-Ns"]
  if v then n = n + 1; lat[n] = tonumber(v) end
  if headers["X-Hyper-Status"] == "COLLISION" then collisions = collisions + 1 end
end
function done(summary, latency, requests)
  local all, col = {}, 0
  for _, t in ipairs(threads) do
    local l = t:get("lat")
    for i = 1, #l do all[#all + 1] = l[i] end
    col = col + t:get("collisions")
  end
  table.sort(all)
  local c = #all
  if c == 0 then io.write("fire_latency_ns count=0 median=0 p99=0 collisions=0\n") return end
  io.write(string.format("fire_latency_ns count=%d median=%d p99=%d collisions=%d\n", c,
    all[math.max(1, math.ceil(c * 0.5))], all[math.max(1, math.ceil(c * 0.99))], col))
end
LUA
  taskset -c 0 "$binary" run --config "$tmp/fire.toml" >"$tmp/fire.log" 2>&1 &
  fire_pid=$!; pids+=("$fire_pid")
  for _ in $(seq 1 100); do
    if curl -s -m 1 -d x "http://127.0.0.1:$port/fire" 2>/dev/null | grep -q PROCESSED; then break; fi
    sleep 0.1
  done
  for c in 1 50; do
    for r in $(seq 1 "$reps"); do
      out=$(taskset -c 1 wrk -t1 "-c$c" "-d$duration" -s "$tmp/fire.lua" "http://127.0.0.1:$port/fire" 2>&1)
      line=$(grep '^fire_latency_ns' <<<"$out" || true)
      if [ -z "$line" ] || grep -q 'count=0 ' <<<"$line"; then
        echo "http.sh: wrk gave no /fire result (c$c):" >&2; echo "$out" >&2; cat "$tmp/fire.log" >&2; exit 1
      fi
      fire_rps["c$c"]+="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") "
      fire_med["c$c"]+="$(sed -E 's/.*median=([0-9]+).*/\1/' <<<"$line") "
      fire_p99["c$c"]+="$(sed -E 's/.*p99=([0-9]+).*/\1/' <<<"$line") "
      fire_col["c$c"]+="$(sed -E 's/.*collisions=([0-9]+).*/\1/' <<<"$line") "
    done
  done
  stop_server "$fire_pid"
}

run_fire

# --- report ---
stats() {  # values... -> "median min max"
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.0f %.0f %.0f\n", m, v[1], v[NR] }'
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -r)"
json_rows=()
if [ "$only" = all ]; then
echo "wrk -t1 -c$conns -d$duration on core 1, server on core 0, $reps repetitions"
printf '%-10s %-11s %12s %12s %12s\n' impl mode "median req/s" min max
for key in "hypergate plain" "nginx plain" "hypergate pipeline16" "nginx pipeline16"; do
  read -r impl mode <<<"$key"
  # shellcheck disable=SC2086
  read -r med lo hi <<<"$(stats ${results[$key]})"
  printf '%-10s %-11s %12s %12s %12s\n' "$impl" "$mode" "$med" "$lo" "$hi"
  json_rows+=("{\"impl\": \"$impl\", \"mode\": \"$mode\", \"median_rps\": $med, \"min_rps\": $lo, \"max_rps\": $hi, \"runs\": [$(echo ${results[$key]} | sed 's/ /, /g')]}")
done
for mode in plain pipeline16; do
  # shellcheck disable=SC2086
  h=$(stats ${results["hypergate $mode"]} | cut -d' ' -f1); n=$(stats ${results["nginx $mode"]} | cut -d' ' -f1)
  awk -v h="$h" -v n="$n" -v m="$mode" 'BEGIN { printf "ratio hypergate/nginx (%s): %.2fx\n", m, (n > 0 ? h / n : 0) }'
done
echo "CPU seconds per ${duration} run, median (min-max): wrk (user+sys) | server user | server sys"
for key in "hypergate plain" "nginx plain" "hypergate pipeline16" "nginx pipeline16"; do
  read -r impl mode <<<"$key"
  line=""
  for arr in cpu_wrk cpu_user cpu_sys; do
    declare -n a=$arr
    # shellcheck disable=SC2086
    read -r med lo hi <<<"$(printf '%s\n' ${a[$key]} | sort -g | awk '{v[NR]=$1} END { printf "%.2f %.2f %.2f\n", v[int((NR+1)/2)], v[1], v[NR] }')"
    line+="$(printf '%14s' "$med ($lo-$hi)") "
    unset -n a
  done
  printf '%-10s %-11s %s\n' "$impl" "$mode" "$line"
done
fi
echo "/fire: in-engine ns from X-Latency-Ns (parse done -> accepted by the valve engine); wrk -t1 -d$duration POST"
echo "on core 1, http.fire alone on core 0, $reps repetitions; goal: median <= 200 ns"
printf '%-10s %-8s %12s %22s %22s %10s\n' impl mode "median req/s" "median ns (min-max)" "p99 ns (min-max)" collisions
for c in 1 50; do
  # shellcheck disable=SC2086
  read -r rmed _ _ <<<"$(stats ${fire_rps["c$c"]})"
  # shellcheck disable=SC2086
  read -r lmed llo lhi <<<"$(stats ${fire_med["c$c"]})"
  # shellcheck disable=SC2086
  read -r pmed plo phi <<<"$(stats ${fire_p99["c$c"]})"
  # shellcheck disable=SC2086
  col=$(printf '%s\n' ${fire_col["c$c"]} | awk '{s += $1} END {print s + 0}')
  printf '%-10s %-8s %12s %22s %22s %10s\n' hypergate "fire-c$c" "$rmed" "$lmed ($llo-$lhi)" "$pmed ($plo-$phi)" "$col"
  json_rows+=("{\"impl\": \"hypergate\", \"mode\": \"fire-c$c\", \"median_rps\": $rmed, \"median_ns\": $lmed, \"min_median_ns\": $llo, \"max_median_ns\": $lhi, \"p99_ns\": $pmed, \"min_p99_ns\": $plo, \"max_p99_ns\": $phi, \"collisions\": $col, \"runs_ns\": [$(echo ${fire_med["c$c"]} | sed 's/ /, /g')]}")
done
if [ -n "$json" ]; then
  {
    echo "{\"suite\": \"http\", \"wrk\": \"-t1 -c$conns -d$duration\", \"repetitions\": $reps, \"results\": ["
    for i in "${!json_rows[@]}"; do
      sep=","; [ "$i" -eq $(( ${#json_rows[@]} - 1 )) ] && sep=""
      echo "  ${json_rows[$i]}$sep"
    done
    echo "]}"
  } >"$json"
  echo "wrote $json"
fi
