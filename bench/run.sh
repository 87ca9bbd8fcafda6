#!/usr/bin/env bash
# Portcullis benchmark harness: Portcullis against nginx, Caddy and
# nginx + ModSecurity v3 with the same OWASP CRS 4.25, all on loopback.
# See bench/README.md for how to run it and what each row means.
#
# Everything it starts is killed on exit (trap), its temp dir is removed,
# and every network call it makes goes to 127.0.0.1 with a time bound.

set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=$BENCH_DIR/.bin
WORKLOAD_DIR=$BENCH_DIR/workloads
LUA=$BENCH_DIR/wrk/workload.lua
RESULTS_DIR=$BENCH_DIR/results

# ---- knobs (see README) ----------------------------------------------------
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
REPS=${REPS:-3}
# One or more wrk connection counts (comma-separated): every row and
# workload is measured at each, and the report has a table per count.
CONNECTIONS=${CONNECTIONS:-64,256}
THREADS=${THREADS:-2}
TARGETS=${TARGETS:-upstream,nginx,caddy,nginx-modsec,portcullis-off,portcullis-default,portcullis-waf,portcullis-stock,portcullis-filters}
WORKLOADS=${WORKLOADS:-get,post,attack}
BASE_PORT=${BASE_PORT:-18080}
SKIP_INSTALL=${SKIP_INSTALL:-0}
KEEP_TMP=${KEEP_TMP:-0}
# coraza.conf-recommended turns response body inspection on; keep ModSecurity
# the same unless told otherwise (On/Off). The Portcullis rows follow it
# (waf.response_inspection.enabled), so both inspect the same bytes.
MODSEC_RESPONSE_BODY=${MODSEC_RESPONSE_BODY:-On}
# server.memory_limit of the Portcullis rows (e.g. 128MiB); empty: none, the
# Go runtime's default (GOGC=100, no limit).
PORTCULLIS_MEMORY_LIMIT=${PORTCULLIS_MEMORY_LIMIT:-}
# nginx error_log level of the measured nginx-modsec: "error" logs one line per
# blocked request, as a default Debian nginx would.
MODSEC_LOG_LEVEL=${MODSEC_LOG_LEVEL:-error}

CADDY_VERSION=v2.11.9
CRS_MODULE=github.com/corazawaf/coraza-coreruleset/v4@v4.25.0
MODSEC_MODULE=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
CLK_TCK=$(getconf CLK_TCK)

# ---- targets and workloads -------------------------------------------------
ALL_TARGETS=(upstream nginx caddy nginx-modsec portcullis-off portcullis-default portcullis-waf portcullis-stock portcullis-filters)
declare -A PORT=(
  [upstream]=$((BASE_PORT)) [nginx]=$((BASE_PORT + 1)) [caddy]=$((BASE_PORT + 2))
  [nginx-modsec]=$((BASE_PORT + 3)) [portcullis-off]=$((BASE_PORT + 4))
  [portcullis-waf]=$((BASE_PORT + 5)) [portcullis-filters]=$((BASE_PORT + 6))
  [portcullis-stock]=$((BASE_PORT + 7)) [portcullis-default]=$((BASE_PORT + 8))
)
declare -A LABEL=(
  [upstream]="upstream (direct)"
  [nginx]="nginx proxy_pass"
  [caddy]="Caddy reverse_proxy"
  [nginx-modsec]="nginx + ModSecurity + CRS PL1"
  [portcullis-off]="Portcullis, WAF off"
  [portcullis-default]="Portcullis, default profile (portcullis) block"
  [portcullis-waf]="Portcullis, profile stock-crs, CRS PL1 block"
  [portcullis-stock]="Portcullis, profile stock-crs, CRS PL1 block, stock Coraza operators"
  [portcullis-filters]="Portcullis, profile stock-crs, CRS PL1 + all cheap filters"
)
# Rows whose WAF must answer the attack workload with 403.
declare -A IS_WAF=([nginx-modsec]=1 [portcullis-default]=1 [portcullis-waf]=1 [portcullis-stock]=1 [portcullis-filters]=1)
# waf.profile of each Portcullis row: the default detection profile, or the
# unmodified CRS (waf.profile: stock-crs).
declare -A PROFILE=([portcullis-off]=portcullis [portcullis-default]=portcullis
  [portcullis-waf]=stock-crs [portcullis-stock]=stock-crs [portcullis-filters]=stock-crs)

ALL_WORKLOADS=(get post attack)
declare -A WL_METHOD=([get]=GET [post]=POST [attack]=GET)
declare -A WL_PATH=(
  [get]='/products?category=shoes&page=2&sort=price'
  [post]='/contact'
  [attack]='/?id=1%27%20OR%20%271%27%3D%271'   # 1' OR '1'='1
)
declare -A WL_HEADERS=([get]=browser.headers [post]=form-post.headers [attack]=browser.headers)
declare -A WL_BODY=([get]="" [post]=post-body.txt [attack]="")
declare -A WL_LABEL=([get]="benign GET" [post]="benign 4K form POST" [attack]="SQLi GET")

declare -A STATE=()      # target -> "ok" or "n/a: reason"
declare -A MAIN_PID=()   # target -> pid of its (master) process
declare -A PRECHECK=()   # "target,workload" -> "ok" or a warning
STARTED_PIDS=()          # every background process we started, for cleanup
NOTES=()                 # lines for the "Notes" section of the report
TMP=""
UPSTREAM_BYTES=""
PORTCULLIS_ERR=""
CONNS=""                 # the connection count being measured or reported
MAX_CONNECTIONS=""       # the largest of CONNECTIONS: the proxies' upstream pool size
MODSEC_RULES=""

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Converts a wrk duration (10, 10s, 2m) to whole seconds, for timeouts.
to_seconds() {
  local v=$1
  case $v in
    *m) v=$((${v%m} * 60)) ;;
    *s) v=${v%s} ;;
  esac
  [[ $v =~ ^[0-9]+$ ]] || die "bad duration '$1' (use e.g. 10s or 1m)"
  echo "$v"
}

# Is "$1" in the comma-separated list "$2"?
in_list() { [[ ",$2," == *",$1,"* ]]; }

# ---- process handling ------------------------------------------------------

# Direct children of a pid. /proc/PID/task/*/children is not available on
# every kernel (it needs CONFIG_PROC_CHILDREN), so scan /proc/*/stat instead.
child_pids() {
  local parent=$1 stat stat_line rest ppid
  for stat in /proc/[0-9]*/stat; do
    { read -r stat_line < "$stat"; } 2> /dev/null || continue
    rest=${stat_line##*) }           # fields after "(comm) "
    ppid=${rest#* }; ppid=${ppid%% *}
    [[ $ppid == "$parent" ]] && { stat=${stat#/proc/}; echo "${stat%/stat}"; }
  done
}

# A pid and all its descendants (nginx: master + workers).
process_tree() {
  local p=$1 c
  echo "$p"
  for c in $(child_pids "$p"); do process_tree "$c"; done
}

# Is pid $1 still a child of this script? Guards against killing a stranger
# that reused the pid of a process we started and already reaped.
is_our_child() {
  local stat_line rest ppid
  { read -r stat_line < "/proc/$1/stat"; } 2> /dev/null || return 1
  rest=${stat_line##*) }
  ppid=${rest#* }; ppid=${ppid%% *}
  [[ $ppid == "$$" ]]
}

# Is pid $1 still running (exists and is not a zombie waiting to be reaped)?
is_running() {
  local stat_line
  { read -r stat_line < "/proc/$1/stat"; } 2> /dev/null || return 1
  [[ ${stat_line##*) } != Z* ]]
}

# Stops one process we started, its descendants too (nginx workers would
# otherwise outlive a SIGKILLed master). TERM first, KILL after 5 s.
stop_pid() {
  local pid=$1 tree i
  is_our_child "$pid" || return 0
  tree=$(process_tree "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    is_running "$pid" || break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $tree 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${STARTED_PIDS[i]}"
  done
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ $KEEP_TMP == 1 ]]; then log "kept temp dir $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until something listens on the port, the process dies, or time runs out.
wait_for_port() {
  local port=$1 pid=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    port_open "$port" && return 0
    is_running "$pid" || return 1
    sleep 0.1
  done
  return 1
}

# Copies template $1 to $2, replacing @KEY@ with VALUE for each KEY=VALUE arg.
render() {
  local src=$1 dst=$2 kv key val args=()
  shift 2
  for kv in "$@"; do
    key=${kv%%=*}; val=${kv#*=}
    val=${val//\\/\\\\}; val=${val//&/\\&}; val=${val//|/\\|}
    args+=(-e "s|@${key}@|${val}|g")
  done
  sed "${args[@]}" "$src" > "$dst"
}

# ---- installation and builds -------------------------------------------------

install_packages() {
  local missing=()
  command -v wrk > /dev/null || missing+=(wrk)
  command -v nginx > /dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
  [[ -f $MODSEC_MODULE ]] || missing+=(libnginx-mod-http-modsecurity)
  command -v curl > /dev/null || missing+=(curl)
  # modsecurity-crs is not needed: it ships CRS 3.3 and a three-line loader;
  # we load CRS 4.25 from the Go module cache with our own loader instead.
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
  log "installing ${missing[*]}"
  apt-get update -qq
  # Debian's nginx package would start the system nginx on :80. Containers
  # usually already forbid service starts via policy-rc.d; add one if not.
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; added=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || { ((added)) && rm -f "$policy"; die "apt-get install failed"; }
  ((added)) && rm -f "$policy"
  return 0
}

build_binaries() {
  mkdir -p "$BIN"
  log "building bench/upstream"
  (cd "$ROOT" && go build -o "$BIN/upstream" ./bench/upstream) || die "cannot build bench/upstream"

  # "caddy version" says "unknown" for a go-installed build; the module
  # version recorded in the binary is reliable.
  if [[ $(caddy_version) == "$CADDY_VERSION" ]]; then
    :
  elif needs_target caddy; then
    log "building Caddy $CADDY_VERSION (first run only; takes a few minutes)"
    (cd "$ROOT" && GOBIN=$BIN timeout 1800 go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION") \
      || die "cannot build Caddy"
  fi

  if needs_target portcullis-off || needs_target portcullis-default || needs_target portcullis-waf || needs_target portcullis-stock || needs_target portcullis-filters; then
    rm -f "$BIN/portcullis" "$BIN/portcullis-stock"
    if [[ ! -d $ROOT/cmd/portcullis ]]; then
      PORTCULLIS_ERR="cmd/portcullis does not exist yet"
    else
      log "building portcullis"
      if ! (cd "$ROOT" && timeout 900 go build -o "$BIN/portcullis" ./cmd/portcullis) > "$TMP/portcullis-build.log" 2>&1; then
        PORTCULLIS_ERR="go build failed: $(grep -m1 -v '^#' "$TMP/portcullis-build.log" | cut -c1-120)"
      fi
      # The same program with Coraza's own operators instead of waf/fastop
      # (issue 8), for the portcullis-stock row.
      if [[ -z $PORTCULLIS_ERR ]] && needs_target portcullis-stock; then
        (cd "$ROOT" && timeout 900 go build -tags portcullis_stock_operators -o "$BIN/portcullis-stock" ./cmd/portcullis) \
          >> "$TMP/portcullis-build.log" 2>&1 || log "portcullis-stock build failed; that row will be n/a"
      fi
    fi
    [[ -n $PORTCULLIS_ERR ]] && log "portcullis rows will be n/a: $PORTCULLIS_ERR"
  fi
  return 0
}

needs_target() { in_list "$1" "$TARGETS"; }

caddy_version() {
  [[ -x $BIN/caddy ]] || return 0
  go version -m "$BIN/caddy" 2> /dev/null \
    | awk '$1 == "mod" && $2 == "github.com/caddyserver/caddy/v2" { print $3 }'
}

# ---- ModSecurity + CRS 4.25 --------------------------------------------------

# Copies CRS 4.25 (the very files Coraza-based WAFs embed) out of the Go module
# cache, patches it for libmodsecurity 3.0.9, and writes the ModSecurity
# config: coraza.conf-recommended with the engine on and the audit log off.
prepare_modsecurity() {
  local dir out="$TMP/modsec"
  # Run outside the module so go.mod/go.sum are never touched.
  dir=$(cd "$TMP" && GO111MODULE=on GOFLAGS='' go mod download -json "$CRS_MODULE" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir/rules/@owasp_crs ]] || { STATE[nginx-modsec]="n/a: cannot download $CRS_MODULE"; return 1; }
  mkdir -p "$out/crs"
  cp -r "$dir/rules/@owasp_crs" "$out/crs/rules"
  cp "$dir/rules/@crs-setup.conf.example" "$out/crs/crs-setup.conf"
  chmod -R u+w "$out"   # the module cache is read-only

  patch_chained_rules "$out/crs/rules"

  # coraza.conf-recommended, adapted: engine On (it ships DetectionOnly), audit
  # log Off, data dir in our temp dir, and SecRequestBodyInMemoryLimit dropped
  # (ModSecurity v3 refuses it; nginx's client_body_buffer_size does that job).
  sed -e 's/^SecRuleEngine .*/SecRuleEngine On/' \
      -e 's/^SecAuditEngine .*/SecAuditEngine Off/' \
      -e "s|^SecDataDir .*|SecDataDir $out/|" \
      -e "s/^SecResponseBodyAccess .*/SecResponseBodyAccess $MODSEC_RESPONSE_BODY/" \
      -e 's/^SecRequestBodyInMemoryLimit/# &/' \
      "$dir/rules/@coraza.conf-recommended" > "$out/coraza.conf"
  # Same load order as Coraza: base config, crs-setup (PL1 defaults,
  # anomaly-scoring blocking mode), then the rules.
  cat > "$out/main.conf" << EOF
Include $out/coraza.conf
Include $out/crs/crs-setup.conf
Include $out/crs/rules/*.conf
EOF
}

# libmodsecurity 3.0.9's parser rejects a SecRule without an action list, even
# a chained one. CRS 4.25 has such chained rules (SecRule TX:EARLY_BLOCKING
# "@eq 1" under 949111 and 959101). "t:none" is a no-op action list, so
# appending it changes nothing but lets every rule load. The match is generic
# (a one-line SecRule with exactly a variable and an operator), so a future CRS
# with more such rules gets patched too; each patch is reported.
patch_chained_rules() {
  local rules=$1 f report
  local re='^[[:space:]]*SecRule[[:space:]]+[^[:space:]]+[[:space:]]+"([^"\\]|\\.)*"[[:space:]]*$'
  for f in "$rules"/*.conf; do
    grep -qE "$re" "$f" || continue
    report=$(RE=$re awk '
      match($0, /[",]id:[0-9]+/) { last = substr($0, RSTART + 4, RLENGTH - 4) }
      $0 ~ ENVIRON["RE"] {
        sub(/[[:space:]]*$/, "")
        $0 = $0 " \"t:none\""
        printf "%s line %d (chained under rule %s)\n", FILENAME, FNR, last > "/dev/stderr"
      }
      { print }' "$f" 2>&1 > "$f.patched")
    mv "$f.patched" "$f"
    while IFS= read -r line; do
      NOTES+=("CRS patch for libmodsecurity: added \"t:none\" to the action-less chained rule at ${line#"$rules"/}")
      log "patched ${line#"$rules"/}"
    done <<< "$report"
  done
}

# ---- starting targets --------------------------------------------------------

start_upstream() {
  local port=${PORT[upstream]}
  "$BIN/upstream" -listen "127.0.0.1:$port" > "$TMP/upstream.log" 2>&1 &
  MAIN_PID[upstream]=$!; STARTED_PIDS+=($!)
  wait_for_port "$port" "$!" 10 || die "upstream did not start: $(tail -1 "$TMP/upstream.log")"
  STATE[upstream]=ok
  # The proxied body must be byte-identical to this; learn its size once.
  UPSTREAM_BYTES=$(curl -s -o /dev/null -w '%{size_download}' --max-time 5 "http://127.0.0.1:$port/")
  [[ $UPSTREAM_BYTES -gt 0 ]] || die "upstream answered with an empty body"
}

# start_nginx TARGET LOGLEVEL: plain proxy, or with ModSecurity for nginx-modsec.
start_nginx() {
  local t=$1 level=$2
  local prefix="$TMP/$t" load="" modsec="" loaded
  mkdir -p "$prefix/tmp"
  if [[ $t == nginx-modsec ]]; then
    [[ -f $TMP/modsec/main.conf ]] || return 1
    load="load_module $MODSEC_MODULE;"
    modsec="modsecurity on; modsecurity_rules_file $TMP/modsec/main.conf;"
  fi
  render "$BENCH_DIR/conf/nginx.conf.tmpl" "$prefix/nginx.conf" \
    PREFIX="$prefix" PORT="${PORT[$t]}" UPSTREAM_PORT="${PORT[upstream]}" \
    LOAD_MODULE="$load" MODSECURITY="$modsec" ERROR_LOG_LEVEL="$level" \
    KEEPALIVE="$MAX_CONNECTIONS"
  : > "$prefix/error.log"
  if ! nginx -t -q -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" > "$prefix/nginx-t.log" 2>&1; then
    STATE[$t]="n/a: nginx -t failed: $(grep -m1 emerg "$prefix/nginx-t.log" | cut -c1-160)"
    return 1
  fi
  # daemon off keeps the master in the foreground, so $! is its pid.
  nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -g 'daemon off;' \
    >> "$prefix/stderr.log" 2>&1 &
  MAIN_PID[$t]=$!; STARTED_PIDS+=($!)
  if ! wait_for_port "${PORT[$t]}" "$!" 30; then
    STATE[$t]="n/a: nginx did not start: $(tail -1 "$prefix/error.log")"
    return 1
  fi
  if [[ $t == nginx-modsec ]]; then
    # Proof that libmodsecurity parsed the whole rule set: the connector
    # logs "rules loaded inline/local/remote: 0/N/0" once the file is loaded.
    loaded=$(grep -o 'rules loaded inline/local/remote: [0-9]*/[0-9]*/[0-9]*' "$prefix/error.log" | tail -1)
    MODSEC_RULES=$(echo "$loaded" | awk -F'[ /]' '{print $(NF-1)}')
    if [[ -z $MODSEC_RULES || $MODSEC_RULES -eq 0 ]]; then
      STATE[$t]="n/a: ModSecurity loaded no rules"
      return 1
    fi
  fi
  STATE[$t]=ok
}

start_caddy() {
  local prefix="$TMP/caddy"
  [[ -x $BIN/caddy ]] || { STATE[caddy]="n/a: bench/.bin/caddy missing"; return 1; }
  mkdir -p "$prefix"
  render "$BENCH_DIR/conf/Caddyfile.tmpl" "$prefix/Caddyfile" \
    PORT="${PORT[caddy]}" UPSTREAM_PORT="${PORT[upstream]}" KEEPALIVE="$MAX_CONNECTIONS"
  # XDG dirs in the temp dir: Caddy must not write into ~/.config or ~/.local.
  XDG_CONFIG_HOME=$prefix/config XDG_DATA_HOME=$prefix/data \
    "$BIN/caddy" run --config "$prefix/Caddyfile" --adapter caddyfile > "$prefix/caddy.log" 2>&1 &
  MAIN_PID[caddy]=$!; STARTED_PIDS+=($!)
  if ! wait_for_port "${PORT[caddy]}" "$!" 20; then
    STATE[caddy]="n/a: caddy did not start: $(tail -1 "$prefix/caddy.log" | cut -c1-160)"
    return 1
  fi
  STATE[caddy]=ok
}

start_portcullis() {
  local t=$1 mode
  local prefix="$TMP/$t"
  [[ -z $PORTCULLIS_ERR ]] || { STATE[$t]="n/a: $PORTCULLIS_ERR"; return 1; }
  local bin="$BIN/portcullis"
  if [[ $t == portcullis-stock ]]; then
    bin="$BIN/portcullis-stock"
    [[ -x $bin ]] || { STATE[$t]="n/a: portcullis-stock was not built"; return 1; }
  fi
  [[ $t == portcullis-off ]] && mode=off || mode=block
  mkdir -p "$prefix"
  local tmpl="$BENCH_DIR/conf/portcullis.yaml.tmpl"
  if [[ $t == portcullis-filters ]]; then
    # Every cheap stage on, none of them refusing the workloads' client:
    # a 100,000-entry deny list (documentation and reserved ranges the
    # client is not in), a rate limit it never reaches, bans, and the
    # trusted-proxy walk of a forwarding header.
    tmpl="$BENCH_DIR/conf/portcullis-filters.yaml.tmpl"
    python3 - "$prefix/deny.netset" <<'PY'
import sys, ipaddress
with open(sys.argv[1], "w") as f:
    f.write("# generated for bench/run.sh\n")
    base = int(ipaddress.IPv4Address("100.64.0.0"))
    for i in range(50000):
        f.write(f"{ipaddress.IPv4Address(base + i * 256)}/24\n")
    for i in range(50000):
        f.write(f"2001:db8:{i // 65536:x}:{i % 65536:x}::/64\n")
PY
  fi
  local inspect_responses=false
  [[ ${MODSEC_RESPONSE_BODY,,} == on ]] && inspect_responses=true
  # wrk is one client address with CONNECTIONS connections: the per-client
  # limits (issue 18) would refuse most of them, and the other rows have
  # no such limits.
  local server_settings="client_connections: 0, client_connection_rate: 0, client_requests: 0"
  [[ -n $PORTCULLIS_MEMORY_LIMIT ]] && server_settings+=", memory_limit: $PORTCULLIS_MEMORY_LIMIT"
  render "$tmpl" "$prefix/portcullis.yaml" \
    PORT="${PORT[$t]}" UPSTREAM_PORT="${PORT[upstream]}" WAF_MODE="$mode" WAF_PROFILE="${PROFILE[$t]}" \
    RESPONSE_INSPECT="$inspect_responses" \
    SERVER_SETTINGS="$server_settings" \
    AUDIT_FILE="$prefix/audit.jsonl" DENY_FILE="$prefix/deny.netset" STATE_DIR="$prefix/state"
  "$bin" run -c "$prefix/portcullis.yaml" > "$prefix/portcullis.log" 2>&1 &
  MAIN_PID[$t]=$!; STARTED_PIDS+=($!)
  if ! wait_for_port "${PORT[$t]}" "$!" 30; then
    if is_running "${MAIN_PID[$t]}"; then
      STATE[$t]="n/a: portcullis did not listen on :${PORT[$t]} within 30 s"
    else
      STATE[$t]="n/a: portcullis exited: $(tail -1 "$prefix/portcullis.log" | cut -c1-160)"
    fi
    stop_pid "${MAIN_PID[$t]}"
    return 1
  fi
  STATE[$t]=ok
}

start_target() {
  local t=$1
  if port_open "${PORT[$t]}"; then
    STATE[$t]="n/a: port ${PORT[$t]} already in use (set BASE_PORT)"
    return 1
  fi
  case $t in
    nginx) start_nginx nginx error ;;
    # Pre-flight runs at "info" so sub-threshold rule matches are visible.
    nginx-modsec) start_nginx nginx-modsec info ;;
    caddy) start_caddy ;;
    portcullis-*) start_portcullis "$t" ;;
  esac
}

# ---- pre-flight: does every row see what we think it sees? -------------------

expect_status() { [[ $2 == attack && -n ${IS_WAF[$1]:-} ]] && echo 403 || echo 200; }
expect_bytes() { [[ $2 == attack && -n ${IS_WAF[$1]:-} ]] && echo -1 || echo "$UPSTREAM_BYTES"; }

# One curl request with exactly the method, path, headers and body wrk sends.
# Prints "STATUS BYTES".
curl_workload() {
  local t=$1 w=$2 args
  args=(-s -g -o /dev/null -w '%{http_code} %{size_download}' --max-time 5
    -X "${WL_METHOD[$w]}" -H "@$WORKLOAD_DIR/${WL_HEADERS[$w]}")
  [[ -n ${WL_BODY[$w]} ]] && args+=(--data-binary "@$WORKLOAD_DIR/${WL_BODY[$w]}")
  curl "${args[@]}" "http://127.0.0.1:${PORT[$t]}${WL_PATH[$w]}" || true
}

precheck() {
  local t w got status bytes want_s want_b msg before after ids log
  for t in "${ALL_TARGETS[@]}"; do
    if ! needs_target "$t" || [[ ${STATE[$t]:-} != ok ]]; then continue; fi
    for w in "${ALL_WORKLOADS[@]}"; do
      in_list "$w" "$WORKLOADS" || continue
      want_s=$(expect_status "$t" "$w"); want_b=$(expect_bytes "$t" "$w")
      log=""
      case $t in
        nginx-modsec) log="$TMP/nginx-modsec/error.log" ;;
        portcullis-default | portcullis-waf | portcullis-stock | portcullis-filters) log="$TMP/$t/audit.jsonl" ;;
      esac
      before=0; [[ -n $log && -f $log ]] && before=$(wc -l < "$log")
      got=$(curl_workload "$t" "$w"); status=${got% *}; bytes=${got#* }
      sleep 0.2   # let the server flush its log line
      msg=ok
      if [[ $status != "$want_s" ]]; then
        msg="WARN: got $status, expected $want_s"
      elif [[ $want_b != -1 && $bytes != "$want_b" ]]; then
        msg="WARN: body $bytes B, expected $want_b B"
      fi
      # A benign request should match no rule at all, not merely stay under
      # the anomaly threshold: report any rule that fired.
      if [[ $w != attack && -n $log && -f $log ]]; then
        after=$(wc -l < "$log")
        if ((after > before)); then
          if [[ $t == nginx-modsec ]]; then
            ids=$(tail -n +"$((before + 1))" "$log" | grep -o 'ModSecurity: .*\[id "[0-9]*"\]' \
              | grep -o '\[id "[0-9]*"\]' | tr -dc '0-9\n' | sort -u | paste -sd' ' || true)
            [[ -n $ids ]] && msg="WARN: rules matched: $ids${msg#ok}"
          else
            msg="${msg}; audit log +$((after - before)) line(s)"
          fi
        fi
      fi
      PRECHECK[$t,$w]=$msg
      printf '  %-18s %-7s %s %s B -> %s\n' "$t" "$w" "$status" "$bytes" "$msg" >&2
    done
  done
}

# ---- measurement ---------------------------------------------------------------

# Peak memory of a process tree during a run: every 100 ms sum VmRSS (and PSS,
# which splits shared pages fairly between nginx's master and workers) over
# the tree's processes, keep the largest sums. The tree is listed once before
# the run. Writes "RSS_KiB PSS_KiB" to $1 each time a peak grows, so killing
# the sampler at any moment leaves a valid answer.
rss_sampler() {
  local out=$1; shift
  local pids=("$@") p key val rss pss peak_rss=0 peak_pss=0 nap=""
  # Sleep in the background and wait for it, so that TERM (run_one stopping
  # us) is handled at once and takes the sleep along instead of orphaning it.
  trap '[[ -n $nap ]] && kill "$nap" 2> /dev/null; exit 0' TERM
  echo "0 0" > "$out"
  while :; do
    rss=0; pss=0
    for p in "${pids[@]}"; do
      {
        while read -r key val _; do
          [[ $key == VmRSS: ]] && { rss=$((rss + val)); break; }
        done < "/proc/$p/status"
        while read -r key val _; do
          [[ $key == Pss: ]] && { pss=$((pss + val)); break; }
        done < "/proc/$p/smaps_rollup"
      } 2> /dev/null || true
    done
    if ((rss > peak_rss || pss > peak_pss)); then
      ((rss > peak_rss)) && peak_rss=$rss
      ((pss > peak_pss)) && peak_pss=$pss
      echo "$peak_rss $peak_pss" > "$out"
    fi
    sleep 0.1 & nap=$!
    wait "$nap" || true
  done
}

# CPU time (user + system, in clock ticks) used so far by the given pids.
# Divided by the request count it gives CPU per request, which a noisy
# 2-core machine disturbs much less than req/s.
cpu_ticks() {
  local p stat_line rest fields sum=0
  for p in "$@"; do
    { read -r stat_line < "/proc/$p/stat"; } 2> /dev/null || continue
    rest=${stat_line##*) }
    read -r -a fields <<< "$rest"
    sum=$((sum + fields[11] + fields[12]))   # utime, stime (fields 14, 15)
  done
  echo "$sum"
}

# wrk with the workload's environment, output to a file.
# Args: target workload duration outfile [extra wrk args].
# wrk runs in the background and we wait for it: bash runs a signal trap only
# after a foreground command ends, but interrupts "wait" at once, so Ctrl-C or
# TERM cleans up without waiting for the run to finish.
run_wrk() {
  local t=$1 w=$2 dur=$3 out=$4; shift 4
  local secs pid rc=0
  secs=$(to_seconds "$dur")
  WL_METHOD=${WL_METHOD[$w]} WL_PATH=${WL_PATH[$w]} \
  WL_HEADERS_FILE=$WORKLOAD_DIR/${WL_HEADERS[$w]} \
  WL_BODY_FILE=${WL_BODY[$w]:+$WORKLOAD_DIR/${WL_BODY[$w]}} \
  EXPECT_STATUS=$(expect_status "$t" "$w") EXPECT_BYTES=$(expect_bytes "$t" "$w") \
    timeout -k 5 $((secs + 30)) \
    wrk -t"$THREADS" -c"$CONNS" -d"$dur" --timeout 5s "$@" -s "$LUA" \
    "http://127.0.0.1:${PORT[$t]}" > "$out" 2>&1 &
  pid=$!; STARTED_PIDS+=("$pid")
  wait "$pid" || rc=$?
  return "$rc"
}

# One measured run; appends a tab-separated line to $RAW.
run_one() {
  local rep=$1 t=$2 w=$3
  local out="$TMP/wrk-$t-$w-$rep.txt" sampler line rss pss tree cpu0 cpu1 cpu_us
  if [[ $(to_seconds "$WARMUP") -gt 0 ]]; then
    run_wrk "$t" "$w" "$WARMUP" /dev/null || true
  fi
  mapfile -t tree < <(process_tree "${MAIN_PID[$t]}")
  rss_sampler "$TMP/rss" "${tree[@]}" &
  sampler=$!; STARTED_PIDS+=("$sampler")
  cpu0=$(cpu_ticks "${tree[@]}")
  run_wrk "$t" "$w" "$DURATION" "$out" --latency || true
  cpu1=$(cpu_ticks "${tree[@]}")
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  read -r rss pss < "$TMP/rss"
  line=$(grep -m1 '^RESULT ' "$out" || true)
  # A run in which not one response came back (server hung, or slower than
  # the run is long) is a failure, not a 0 req/s data point.
  if [[ -z $line || $line == *" responses=0 "* ]]; then
    log "  no result for $t/$w rep $rep: $(grep -v '^RESULT' "$out" | tail -1)"
    printf '%s\t%s\t%s\tfail\t\t\t%s\t%s\t0\t0\t0\t0\t0\t-\t\t%s\n' "$rep" "$t" "$w" "$rss" "$pss" "$CONNS" >> "$RAW"
    return
  fi
  # RESULT key=value ... -> shell variables r_key
  local r_rps r_p50_us r_p99_us r_responses r_ok r_bad_status r_bad_size
  local r_err_connect r_err_read r_err_write r_err_timeout r_unexpected_codes kv
  for kv in ${line#RESULT }; do
    case ${kv%%=*} in
      rps | p50_us | p99_us | responses | ok | bad_status | bad_size | err_connect | err_read | err_write | err_timeout | unexpected_codes)
        printf -v "r_${kv%%=*}" '%s' "${kv#*=}" ;;
    esac
  done
  cpu_us=$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$r_responses" \
    'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$rep" "$t" "$w" "$r_rps" "$r_p50_us" "$r_p99_us" "$rss" "$pss" \
    "$r_responses" "$r_ok" "$r_bad_status" "$r_bad_size" \
    "$((r_err_connect + r_err_read + r_err_write + r_err_timeout))" "$r_unexpected_codes" \
    "$cpu_us" "$CONNS" >> "$RAW"
  log "$(printf '  rep %s c%-4s %-18s %-7s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  RSS %6.1f MiB  CPU %6s µs/req  ok %s/%s' \
    "$rep" "$CONNS" "$t" "$w" "$r_rps" "$(awk "BEGIN{print $r_p50_us/1000}")" \
    "$(awk "BEGIN{print $r_p99_us/1000}")" "$(awk "BEGIN{print $rss/1024}")" "$cpu_us" "$r_ok" "$r_responses")"
}

# ---- report --------------------------------------------------------------------

# Median of the numbers on stdin ("" if none).
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Column $1 of the successful raw rows for target $2, workload $3, at
# $CONNS connections.
raw_col() {
  awk -F'\t' -v c="$1" -v t="$2" -v w="$3" -v n="$CONNS" '$2 == t && $3 == w && $16 == n && $4 != "fail" { print $c }' "$RAW"
}

ratio() { # $1/$2 as "0.87x", or "—"
  [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "—" }' || echo "—"
}

build_report() {
  local t w rps p50 p99 rss pss cpu check n bad_s bad_z errs codes fails
  declare -A MED=()
  for t in "${ALL_TARGETS[@]}"; do
    for w in "${ALL_WORKLOADS[@]}"; do
      MED[$t,$w]=$(raw_col 4 "$t" "$w" | median)
    done
  done

  echo "| target | workload | req/s | p50 | p99 | max RSS | max PSS | CPU/req | check | vs nginx+ModSec | vs Caddy | vs nginx |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
  for t in "${ALL_TARGETS[@]}"; do
    needs_target "$t" || continue
    for w in "${ALL_WORKLOADS[@]}"; do
      in_list "$w" "$WORKLOADS" || continue
      if [[ ${STATE[$t]:-n/a: not started} != ok ]]; then
        echo "| ${LABEL[$t]} | ${WL_LABEL[$w]} | n/a | n/a | n/a | n/a | n/a | n/a | ${STATE[$t]:-n/a: not started} | | | |"
        continue
      fi
      rps=${MED[$t,$w]}
      p50=$(raw_col 5 "$t" "$w" | median); p99=$(raw_col 6 "$t" "$w" | median)
      rss=$(raw_col 7 "$t" "$w" | median); pss=$(raw_col 8 "$t" "$w" | median)
      cpu=$(raw_col 15 "$t" "$w" | grep . | median || true)
      n=$(raw_col 9 "$t" "$w" | awk '{ s += $1 } END { print s + 0 }')
      bad_s=$(raw_col 11 "$t" "$w" | awk '{ s += $1 } END { print s + 0 }')
      bad_z=$(raw_col 12 "$t" "$w" | awk '{ s += $1 } END { print s + 0 }')
      errs=$(raw_col 13 "$t" "$w" | awk '{ s += $1 } END { print s + 0 }')
      codes=$(raw_col 14 "$t" "$w" | tr ',' '\n' | grep -v '^-$' | sort -u | paste -sd, || true)
      fails=$(awk -F'\t' -v t="$t" -v w="$w" -v n="$CONNS" '$2 == t && $3 == w && $16 == n && $4 == "fail"' "$RAW" | wc -l)
      fails=${fails// /}

      # Check column: every response must have had the expected status (and,
      # when proxied, the upstream's exact body size).
      if ((n > 0 && bad_s == 0 && bad_z == 0)); then
        check="ok: all $(expect_status "$t" "$w")"
        [[ $(expect_bytes "$t" "$w") != -1 ]] && check+=", ${UPSTREAM_BYTES} B"
      elif ((n == 0)); then
        check="⚠ no responses"
      else
        check="⚠ $bad_s wrong status${codes:+ ($codes)}, $bad_z wrong size of $n"
      fi
      ((errs > 0)) && check+="; $errs socket errors"
      ((fails > 0)) && check+="; ⚠ $fails run(s) with no response"
      [[ ${PRECHECK[$t,$w]:-ok} != ok ]] && check+="; pre-flight ${PRECHECK[$t,$w]}"

      local vs_ms="—" vs_caddy="—" vs_nginx="—"
      if [[ -n ${IS_WAF[$t]:-} ]]; then
        vs_ms=$(ratio "$rps" "${MED[nginx-modsec,$w]}")
      elif [[ $t != upstream ]]; then
        vs_caddy=$(ratio "$rps" "${MED[caddy,$w]}")
        vs_nginx=$(ratio "$rps" "${MED[nginx,$w]}")
      fi
      if [[ -z $rps ]]; then
        echo "| ${LABEL[$t]} | ${WL_LABEL[$w]} | fail | | | | | | $check | | | |"
        continue
      fi
      awk -v l="${LABEL[$t]}" -v wl="${WL_LABEL[$w]}" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
        -v rss="$rss" -v pss="$pss" -v cpu="$cpu" -v c="$check" -v a="$vs_ms" -v b="$vs_caddy" -v d="$vs_nginx" \
        'BEGIN { printf "| %s | %s | %.0f | %.2f ms | %.2f ms | %.1f MiB | %.1f MiB | %s | %s | %s | %s | %s |\n",
                 l, wl, rps, p50 / 1000, p99 / 1000, rss / 1024, pss / 1024,
                 cpu == "" ? "?" : sprintf("%.0f µs", cpu), c, a, b, d }'
    done
  done
}

# The default profile against nginx + ModSecurity + CRS PL1 at $CONNS
# connections (issue 15's speed goal: at least 3x the requests/s, p99 no
# worse, max RSS no more), one line per workload.
goal_report() {
  local w d m dp mp dr mr verdict
  needs_target portcullis-default && needs_target nginx-modsec || return 0
  [[ ${STATE[portcullis-default]:-} == ok && ${STATE[nginx-modsec]:-} == ok ]] || return 0
  echo "| workload | default req/s | nginx+ModSec req/s | ratio | default p99 | nginx+ModSec p99 | default max RSS | nginx+ModSec max RSS | goal (≥3x, p99 ≤, RSS ≤) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for w in "${ALL_WORKLOADS[@]}"; do
    in_list "$w" "$WORKLOADS" || continue
    d=$(raw_col 4 portcullis-default "$w" | median); m=$(raw_col 4 nginx-modsec "$w" | median)
    dp=$(raw_col 6 portcullis-default "$w" | median); mp=$(raw_col 6 nginx-modsec "$w" | median)
    dr=$(raw_col 7 portcullis-default "$w" | median); mr=$(raw_col 7 nginx-modsec "$w" | median)
    if [[ -z $d || -z $m ]]; then
      awk -v wl="${WL_LABEL[$w]}" -v d="$d" -v m="$m" \
        'BEGIN { printf "| %s | %s | %s | — | | | | | no result |\n", wl, d == "" ? "fail" : sprintf("%.0f", d), m == "" ? "fail" : sprintf("%.0f", m) }'
      continue
    fi
    verdict=$(awk -v d="$d" -v m="$m" -v dp="$dp" -v mp="$mp" -v dr="$dr" -v mr="$mr" 'BEGIN {
      v = ""
      if (m > 0 && d / m < 3) v = v "req/s under 3x; "
      if (dp > mp) v = v "p99 worse; "
      if (dr > mr) v = v "RSS higher; "
      print v == "" ? "met" : "NOT met: " substr(v, 1, length(v) - 2) }')
    awk -v wl="${WL_LABEL[$w]}" -v d="$d" -v m="$m" -v r="$(ratio "$d" "$m")" -v dp="$dp" -v mp="$mp" \
      -v dr="$dr" -v mr="$mr" -v v="$verdict" \
      'BEGIN { printf "| %s | %.0f | %.0f | %s | %.2f ms | %.2f ms | %.1f MiB | %.1f MiB | %s |\n",
               wl, d, m, r, dp / 1000, mp / 1000, dr / 1024, mr / 1024, v }'
  done
}

# Every connection count's tables.
full_report() {
  local goal
  for CONNS in ${CONNECTIONS//,/ }; do
    echo "### $CONNS connections"
    echo
    build_report
    echo
    goal=$(goal_report)
    if [[ -n $goal ]]; then
      echo "Default profile (portcullis) against nginx + ModSecurity + CRS PL1, $CONNS connections:"
      echo
      echo "$goal"
      echo
    fi
  done
}

write_results() {
  local table=$1 file="$RESULTS_DIR/latest.md" t w note
  mkdir -p "$RESULTS_DIR"
  {
    echo "# Portcullis benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo none)"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
    echo "- wrk: $THREADS threads, $CONNECTIONS connections (one table each), duration $DURATION after $WARMUP warm-up, $REPS repetitions interleaved (rep 1 of every row, then rep 2, ...); medians shown"
    echo "- versions: $(nginx -v 2>&1 | sed 's/^nginx version: //'), libmodsecurity3 $(dpkg-query -W -f='${Version}' libmodsecurity3 2> /dev/null || echo '?'), CRS 4.25.0 (${MODSEC_RULES:-?} rules loaded by ModSecurity), Caddy $(caddy_version), $(go version | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "- upstream body: $UPSTREAM_BYTES B; ModSecurity SecResponseBodyAccess $MODSEC_RESPONSE_BODY; nginx-modsec error_log level $MODSEC_LOG_LEVEL; Portcullis server.memory_limit ${PORTCULLIS_MEMORY_LIMIT:-none}, connections $CONNECTIONS"
    echo "- max RSS: peak of the summed VmRSS of the server's process tree (nginx: master + workers), polled every 100 ms during the measured run (warm-up excluded); max PSS likewise, which counts pages shared between nginx processes once"
    echo "- CPU/req: user + system CPU time of the server's process tree during the measured run, divided by the responses wrk received (from /proc/PID/stat; less sensitive to a noisy machine than req/s)"
    echo "- ratios: req/s median over the reference row's median for the same workload"
    echo
    echo "$table"
    echo
    echo "## Pre-flight (one curl request per row and workload)"
    echo
    for t in "${ALL_TARGETS[@]}"; do
      needs_target "$t" || continue
      for w in "${ALL_WORKLOADS[@]}"; do
        in_list "$w" "$WORKLOADS" || continue
        echo "- $t / $w: ${PRECHECK[$t,$w]:-${STATE[$t]:-not run}}"
      done
    done
    if ((${#NOTES[@]})); then
      echo
      echo "## Notes"
      echo
      for note in "${NOTES[@]}"; do echo "- $note"; done
    fi
    echo
    echo "## Raw runs"
    echo
    echo "| rep | target | workload | req/s | p50 µs | p99 µs | RSS KiB | PSS KiB | responses | ok | wrong status | wrong size | socket errors | unexpected codes | CPU µs/req | connections |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$RAW"
  } > "$file"
  log "results written to ${file#"$ROOT"/}"
}

# ---- main ------------------------------------------------------------------------

main() {
  local t w rep secs
  secs=$(to_seconds "$DURATION"); to_seconds "$WARMUP" > /dev/null
  [[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer"
  [[ $CONNECTIONS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "CONNECTIONS must be one or more positive integers, comma-separated"
  MAX_CONNECTIONS=$(tr ',' '\n' <<< "$CONNECTIONS" | sort -n | tail -1)
  for t in ${TARGETS//,/ }; do [[ -n ${PORT[$t]:-} ]] || die "unknown target '$t' (known: ${ALL_TARGETS[*]})"; done
  for w in ${WORKLOADS//,/ }; do [[ -n ${WL_METHOD[$w]:-} ]] || die "unknown workload '$w' (known: ${ALL_WORKLOADS[*]})"; done

  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  TMP=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
  RAW=$TMP/raw.tsv; : > "$RAW"

  [[ $SKIP_INSTALL == 1 ]] || install_packages
  for t in wrk nginx curl go; do command -v "$t" > /dev/null || die "$t not found"; done
  build_binaries

  port_open "${PORT[upstream]}" && die "port ${PORT[upstream]} already in use (set BASE_PORT)"
  start_upstream
  log "upstream on :${PORT[upstream]}, body $UPSTREAM_BYTES B"
  if needs_target nginx-modsec; then
    prepare_modsecurity || true
  fi
  for t in "${ALL_TARGETS[@]}"; do
    [[ $t == upstream ]] && continue
    needs_target "$t" || continue
    start_target "$t" || true
    log "$t on :${PORT[$t]}: ${STATE[$t]}"
  done
  [[ -n $MODSEC_RULES ]] && log "ModSecurity loaded $MODSEC_RULES rules"

  log "pre-flight checks"
  precheck
  # The pre-flight nginx-modsec logged at "info" to reveal sub-threshold rule
  # matches; measure with the production-like level instead.
  if [[ ${STATE[nginx-modsec]:-} == ok && $MODSEC_LOG_LEVEL != info ]]; then
    stop_pid "${MAIN_PID[nginx-modsec]}"
    start_nginx nginx-modsec "$MODSEC_LOG_LEVEL" || log "nginx-modsec restart failed: ${STATE[nginx-modsec]}"
  fi

  log "measuring: $REPS x (${CONNECTIONS} connections) x (${TARGETS}) x (${WORKLOADS}), ${DURATION} each after ${WARMUP} warm-up"
  for ((rep = 1; rep <= REPS; rep++)); do
    for CONNS in ${CONNECTIONS//,/ }; do
      for t in "${ALL_TARGETS[@]}"; do
        if ! needs_target "$t" || [[ ${STATE[$t]:-} != ok ]]; then continue; fi
        for w in "${ALL_WORKLOADS[@]}"; do
          in_list "$w" "$WORKLOADS" || continue
          run_one "$rep" "$t" "$w"
        done
      done
    done
  done

  local table
  table=$(full_report)
  echo
  echo "$table"
  echo
  write_results "$table"
}

main "$@"
