#!/usr/bin/env bash
# Serving benchmark for `hexrepo serve` against nginx (see bench/README.md).
#
#   bench/serve.sh [DURATION_SECONDS]      DURATION_SECONDS defaults to 10 (per wrk run)
#
# Corpus: `tools/gen-corpus DIR 1000 5` (5,000 tarballs), shared with bench/build.sh in
# target/bench-corpus/ and reused while it holds 5,000 tarballs (HEXREPO_BENCH_CORPUS=/dir seeds
# it from a copy, as for build.sh). The registry is built once into target/bench-serve/public
# (tarballs hard-linked from the corpus).
#
# Servers, all on 127.0.0.1, all serving that one folder:
#   nginx          Debian's nginx, `sendfile on; access_log off; etag on;`, worker_processes auto,
#                  no auth: the baseline the targets are measured against
#   nginx+auth     the same nginx with auth_basic (htpasswd, apr1): context only
#   nginx+log      the same nginx with its access log on (a file, the default format): context
#   hexrepo        `hexrepo serve` with basic auth, access log on (the default) written to a file
#   hexrepo-quiet  the same with RUST_LOG=warn (no access log): context only
# For each of /packages/NAME, /names and one tarball, each server gets a 1 s wrk warm-up, then
# `wrk -t2 -c32 -dDURATION --latency` (hexrepo and nginx+auth with an Authorization header).
# Servers are measured one after the other per endpoint; wrk shares the 2 cores with them.
#
# Targets (issue 14), against nginx without auth and without an access log:
#   every endpoint  hexrepo req/s >= 1.0x nginx, p99 <= nginx p99
#   peak RSS        hexrepo VmHWM over the whole run <= 40 MiB
# Also reported, on /packages/NAME: hexrepo with a repository key instead of basic auth, and a
# 304 (If-None-Match with the server's own ETag) from nginx and hexrepo.
# It is a report, not a test: it exits 0 even when a target is missed, and prints MISSED.
set -euo pipefail

DURATION=${1:-10}
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/serve.sh [DURATION_SECONDS]" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T_REGISTRY=1.0 T_TARBALL=1.0 T_RSS_MIB=40
PACKAGES=$CORPUS_PACKAGES VERSIONS=$CORPUS_VERSIONS
REPO_NAME=bench
USER_NAME=team PASSWORD=s3cret
CONNECTIONS=32 THREADS=2

CORPUS=$BENCH_CORPUS
WORK=$ROOT/target/bench-serve
PUBLIC=$WORK/public

# ---------------------------------------------------------------------------------------------
say "tools"
need_tool nginx nginx-light
need_tool wrk wrk
need_tool openssl openssl
need_tool curl curl
echo "$(PATH=$PATH:/usr/sbin:/sbin nginx -v 2>&1), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"

build_release "$WORK/hexrepo"

# ---------------------------------------------------------------------------------------------
ensure_corpus
ensure_key

say "registry"
# A fresh folder each time: hard links into the corpus, then a full build.
rm -rf "$PUBLIC"
mkdir -p "$PUBLIC"
cp -al "$CORPUS/tarballs" "$PUBLIC/tarballs"
"$BIN" build "$PUBLIC" --name "$REPO_NAME" --private-key "$KEY" 2>&1 | tail -n 1

PACKAGE=pkg_00500
TARBALL=$(cd "$PUBLIC/tarballs" && ls "$PACKAGE"-*.tar | sort -V | head -n 1)
[[ -f $PUBLIC/packages/$PACKAGE && -f $PUBLIC/names && -f $PUBLIC/tarballs/$TARBALL ]] ||
    die "the built registry lacks packages/$PACKAGE, names or tarballs/$TARBALL"
ENDPOINTS=("/packages/$PACKAGE" "/names" "/tarballs/$TARBALL")
ENDPOINT_FILES=("packages/$PACKAGE" "names" "tarballs/$TARBALL")
for f in "${ENDPOINT_FILES[@]}"; do printf '  %-28s %6d bytes\n' "$f" "$(stat -c %s "$PUBLIC/$f")"; done

# ---------------------------------------------------------------------------------------------
say "servers"
bench_run_dir serve

# nginx: the baseline without auth, and the same with auth_basic.
printf '%s:%s\n' "$USER_NAME" "$(openssl passwd -apr1 "$PASSWORD")" >"$RUN/htpasswd"
NGINX_PORT=$(free_port) NGINX_AUTH_PORT=$(free_port) NGINX_LOG_PORT=$(free_port)
start_nginx "
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root \"$PUBLIC\";
    location / { try_files \$uri =404; }
  }
  server {
    listen 127.0.0.1:$NGINX_AUTH_PORT;
    root \"$PUBLIC\";
    auth_basic \"hexrepo\";
    auth_basic_user_file $RUN/htpasswd;
    location / { try_files \$uri =404; }
  }
  server {
    listen 127.0.0.1:$NGINX_LOG_PORT;
    root \"$PUBLIC\";
    access_log $WORK/nginx-access.log;
    location / { try_files \$uri =404; }
  }"
echo "nginx (pid $NGINX_PID, $(pgrep -P "$NGINX_PID" | wc -l) workers): http://127.0.0.1:$NGINX_PORT, with auth_basic: http://127.0.0.1:$NGINX_AUTH_PORT"

# A read-only repository key, for the key-auth measurement (made before the servers start).
REPO_KEY=$("$BIN" key create bench-reader --read-only --public-dir "$PUBLIC" 2>/dev/null | tail -n 1)
[[ -n $REPO_KEY ]] || die "hexrepo key create printed no key"

# Both hexrepo servers: basic auth, the access log (stderr) in a file; the second without it.
HEX_ARGS=(--public-dir "$PUBLIC" --auth-username "$USER_NAME" --auth-password "$PASSWORD"
    --read-auth auto --log-format text --cache-mib 16)
HEX_LOG=$WORK/hexrepo-access.log QUIET_LOG=$WORK/hexrepo-quiet.log
start_hexrepo HEX_PID HEX_PORT "$HEX_LOG" "${HEX_ARGS[@]}"
start_hexrepo QUIET_PID QUIET_PORT "$QUIET_LOG" RUST_LOG=warn -- "${HEX_ARGS[@]}"
echo "hexrepo (pid $HEX_PID, access log in $HEX_LOG): http://127.0.0.1:$HEX_PORT"
echo "hexrepo RUST_LOG=warn (pid $QUIET_PID): http://127.0.0.1:$QUIET_PORT"

AUTH_HEADER="Authorization: Basic $(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64)"

# Sanity: every server returns the file byte for byte (with auth where needed), and refuses
# requests without credentials where auth is on. A wrong header would otherwise benchmark 403s.
check_get() { # check_get URL FILE [CURL ARGS...]
    local url=$1 file=$2
    shift 2
    curl -fsS "$@" "$url" -o "$RUN/body" || die "GET $url failed"
    cmp -s "$RUN/body" "$file" || die "GET $url: body differs from $file"
}
for i in "${!ENDPOINTS[@]}"; do
    ep=${ENDPOINTS[$i]} file=$PUBLIC/${ENDPOINT_FILES[$i]}
    check_get "http://127.0.0.1:$NGINX_PORT$ep" "$file"
    check_get "http://127.0.0.1:$NGINX_AUTH_PORT$ep" "$file" -H "$AUTH_HEADER"
    check_get "http://127.0.0.1:$HEX_PORT$ep" "$file" -H "$AUTH_HEADER"
    check_get "http://127.0.0.1:$QUIET_PORT$ep" "$file" -H "$AUTH_HEADER"
done
for port in "$HEX_PORT" "$NGINX_AUTH_PORT"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/names")
    [[ $code == 401 ]] || die "127.0.0.1:$port/names without credentials: $code, expected 401"
done
echo "checked: identical bodies from all four servers; 401 without credentials where auth is on"

# ---------------------------------------------------------------------------------------------
machine_info
warn_if_busy 1.0 "wrk and the servers share $CPUS CPUs with whatever else runs"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, after a 1 s warm-up, per server and endpoint"

# ---------------------------------------------------------------------------------------------
# bench KEY URL CPU_PID [WRK ARGS...]: sets RPS_KEY, P99_KEY (ms), CPU_KEY (server CPU µs/request).
bench() {
    local key=$1 url=$2 pid=$3 out c0 c1 rps p99 errors
    shift 3
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$@" "$url" >/dev/null
    c0=$(cpu_ticks "$pid")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
    c1=$(cpu_ticks "$pid")
    printf '%s\n' "$out" >"$WORK/wrk-$key.txt"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(wrk_ms "$out" 99% 2)
    [[ -n $rps && -n $p99 ]] || die "cannot parse wrk output for $key: $out"
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
    [[ $key == *_304 ]] && errors=$(grep -E 'Socket errors' <<<"$out" || true)
    [[ -z $errors ]] || echo "  WARNING $key: $errors"
    printf -v "RPS_$key" %s "$rps"
    printf -v "P99_$key" %s "$p99"
    printf -v "CPU_$key" %s "$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v r="$rps" -v d="$DURATION" \
        'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}')"
    local n=CPU_$key
    printf '  %-22s %10.0f req/s   p99 %8.3f ms   server CPU %6.1f us/req\n' "$key" "$rps" "$p99" "${!n}"
}

say "measurements"
EP_KEYS=(packages names tarball)
for i in "${!ENDPOINTS[@]}"; do
    ep=${ENDPOINTS[$i]} k=${EP_KEYS[$i]}
    echo "-- GET $ep"
    bench "nginx_$k" "http://127.0.0.1:$NGINX_PORT$ep" "$NGINX_PID"
    bench "hexrepo_$k" "http://127.0.0.1:$HEX_PORT$ep" "$HEX_PID" -H "$AUTH_HEADER"
    bench "quiet_$k" "http://127.0.0.1:$QUIET_PORT$ep" "$QUIET_PID" -H "$AUTH_HEADER"
    bench "nginxauth_$k" "http://127.0.0.1:$NGINX_AUTH_PORT$ep" "$NGINX_PID" -H "$AUTH_HEADER"
done

echo "-- GET /packages/$PACKAGE: a repository key, 304s, and nginx with its access log"
ETAG_HEX=$(curl -fsSI -H "$AUTH_HEADER" "http://127.0.0.1:$HEX_PORT/packages/$PACKAGE" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" {print $2}')
ETAG_NGINX=$(curl -fsSI "http://127.0.0.1:$NGINX_PORT/packages/$PACKAGE" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" {print $2}')
[[ -n $ETAG_HEX && -n $ETAG_NGINX ]] || die "no ETag from hexrepo ($ETAG_HEX) or nginx ($ETAG_NGINX)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $REPO_KEY" "http://127.0.0.1:$HEX_PORT/packages/$PACKAGE")
[[ $code == 200 ]] || die "the repository key gets $code, not 200"
bench "hexrepo_key" "http://127.0.0.1:$HEX_PORT/packages/$PACKAGE" "$HEX_PID" -H "Authorization: $REPO_KEY"
bench "nginx_304" "http://127.0.0.1:$NGINX_PORT/packages/$PACKAGE" "$NGINX_PID" -H "If-None-Match: $ETAG_NGINX"
bench "hexrepo_304" "http://127.0.0.1:$HEX_PORT/packages/$PACKAGE" "$HEX_PID" -H "$AUTH_HEADER" -H "If-None-Match: $ETAG_HEX"
bench "nginxlog_packages" "http://127.0.0.1:$NGINX_LOG_PORT/packages/$PACKAGE" "$NGINX_PID"

# Peak RSS over the whole run (both hexrepo servers were up from the start).
RSS_HWM=$(vm_mib "$HEX_PID" VmHWM) RSS_NOW=$(vm_mib "$HEX_PID" VmRSS)
QUIET_HWM=$(vm_mib "$QUIET_PID" VmHWM)
NGINX_RSS=0
for pid in $(pgrep -P "$NGINX_PID"); do
    NGINX_RSS=$(awk -v a="$NGINX_RSS" -v b="$(vm_mib "$pid" VmHWM)" 'BEGIN {printf "%.1f", a + b}')
done
LOG_LINES=$(wc -l <"$HEX_LOG")
LOG_MIB=$(awk -v b="$(stat -c %s "$HEX_LOG")" 'BEGIN {printf "%.1f", b / 1048576}')

# ---------------------------------------------------------------------------------------------
say "summary: hexrepo serve vs nginx, gen-corpus $PACKAGES x $VERSIONS, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $CPUS CPUs, $("$BIN" --version)"
MISSED=0
ge() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= b)}'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a <= b)}'; }
fmt='%-30s | %11s | %13s | %6s | %10s | %12s | %s\n'
printf "$fmt" endpoint "nginx req/s" "hexrepo req/s" ratio "nginx p99" "hexrepo p99" "verdict (target)"
printf '%s\n' "-------------------------------+-------------+---------------+--------+------------+--------------+---------------------------"
for i in "${!ENDPOINTS[@]}"; do
    k=${EP_KEYS[$i]}
    n=RPS_nginx_$k; nr=${!n}; n=RPS_hexrepo_$k; hr=${!n}
    n=P99_nginx_$k; np=${!n}; n=P99_hexrepo_$k; hp=${!n}
    target=$T_REGISTRY; [[ $k == tarball ]] && target=$T_TARBALL
    ratio=$(awk -v a="$hr" -v b="$nr" 'BEGIN {printf "%.2f", a / b}')
    why=()
    ge "$ratio" "$target" || why+=("req/s")
    le "$hp" "$np" || why+=("p99")
    if ((${#why[@]})); then v="MISSED (${why[*]})"; MISSED=$((MISSED + 1)); else v=ok; fi
    printf "$fmt" "${ENDPOINTS[$i]}" "$(printf '%.0f' "$nr")" "$(printf '%.0f' "$hr")" "${ratio}x" \
        "$(printf '%.2f ms' "$np")" "$(printf '%.2f ms' "$hp")" "$v (>= ${target}x, p99 <=)"
done
if le "$RSS_HWM" "$T_RSS_MIB"; then v=ok; else v=MISSED; MISSED=$((MISSED + 1)); fi
printf '\nhexrepo peak RSS (VmHWM over the run): %s MiB (target <= %s MiB): %s   [now %s MiB; RUST_LOG=warn server %s MiB; nginx workers %s MiB in all]\n' \
    "$RSS_HWM" "$T_RSS_MIB" "$v" "$RSS_NOW" "$QUIET_HWM" "$NGINX_RSS"

echo
echo "context (not targets): server CPU per request and the other two configurations"
fmt2='%-30s | %-14s | %11s | %10s | %11s\n'
printf "$fmt2" endpoint server "req/s" "p99" "CPU us/req"
printf '%s\n' "-------------------------------+----------------+-------------+------------+------------"
for i in "${!ENDPOINTS[@]}"; do
    k=${EP_KEYS[$i]}
    for s in nginx nginxauth hexrepo quiet; do
        case $s in nginx) label=nginx ;; nginxauth) label="nginx+auth" ;; hexrepo) label=hexrepo ;; quiet) label="hexrepo, warn" ;; esac
        n=RPS_${s}_$k; r=${!n}; n=P99_${s}_$k; p=${!n}; n=CPU_${s}_$k; c=${!n}
        printf "$fmt2" "${ENDPOINTS[$i]}" "$label" "$(printf '%.0f' "$r")" "$(printf '%.2f ms' "$p")" "$c"
    done
done
printf "$fmt2" "/packages/$PACKAGE" "nginx+log" "$(printf '%.0f' "$RPS_nginxlog_packages")" "$(printf '%.2f ms' "$P99_nginxlog_packages")" "$CPU_nginxlog_packages"
printf "$fmt2" "/packages/$PACKAGE" "hexrepo, key" "$(printf '%.0f' "$RPS_hexrepo_key")" "$(printf '%.2f ms' "$P99_hexrepo_key")" "$CPU_hexrepo_key"
printf "$fmt2" "/packages/$PACKAGE 304" "nginx" "$(printf '%.0f' "$RPS_nginx_304")" "$(printf '%.2f ms' "$P99_nginx_304")" "$CPU_nginx_304"
printf "$fmt2" "/packages/$PACKAGE 304" "hexrepo" "$(printf '%.0f' "$RPS_hexrepo_304")" "$(printf '%.2f ms' "$P99_hexrepo_304")" "$CPU_hexrepo_304"
echo
echo "hexrepo's access log: $LOG_LINES lines, $LOG_MIB MiB in $HEX_LOG"
echo "nginx: worker_processes auto, sendfile on, access_log off, etag on; nginx+auth adds auth_basic (apr1); nginx+log an access log file."
echo "hexrepo: basic auth, --cache-mib 16; 'hexrepo, warn' is the same with RUST_LOG=warn (no access log)."
echo "raw wrk output: $WORK/wrk-*.txt"
if ((MISSED)); then echo "RESULT: $MISSED target(s) MISSED"; else echo "RESULT: all targets met"; fi
exit 0
