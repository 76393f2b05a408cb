#!/usr/bin/env bash
# Publish benchmark for the Hex API of `hexrepo serve` (see bench/README.md).
#
#   bench/publish.sh [SEQUENTIAL] [CONCURRENT]     defaults 200 200
#
# Repository: the `tools/gen-corpus DIR 1000 5` corpus (5,000 tarballs), shared with
# bench/build.sh and bench/serve.sh in target/bench-corpus/, hard-linked into a fresh
# target/bench-publish/public and built with `hexrepo build` (RSA-2048 key
# target/bench-corpus/private_key.pem). `hexrepo serve` runs on it with a publishing key from
# `hexrepo key create`.
#
# New releases: version 2.0.0 of pkg_00001, pkg_00002, ... (the corpus has 0.1.0-1.1.0), made
# once by `tools/hex-core create-many` (no requirements) and cached in target/bench-publish/new/.
# Each is published once: POST /api/packages/NAME/releases?replace=false, one curl process per
# phase reading a config file (no process start per request, one keep-alive connection per
# client), `Expect:` disabled as Hex's own client does not send it.
#   warm-up       10 sequential publishes, not counted
#   latency       SEQUENTIAL publishes, one client: curl %{time_total} of each, median and p99
#   throughput    CONCURRENT publishes, 8 clients (curl --parallel-max 8): publishes/s over wall time
# Every response must be 201 (else the script aborts), and afterwards `hexrepo verify` must pass
# and count 5,000 + all published releases.
#
# Target (issue): median publish latency <= 30 ms with a 2048-bit key. Throughput is reported.
# It is a report, not a test: it exits 0 even when the target is missed, and prints MISSED.
set -euo pipefail

SEQ=${1:-200} CONC=${2:-200}
[[ $SEQ =~ ^[1-9][0-9]*$ && $CONC =~ ^[1-9][0-9]*$ ]] ||
    { echo "usage: bench/publish.sh [SEQUENTIAL] [CONCURRENT]" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T_MEDIAN_MS=30
CLIENTS=8 WARMUP=10
PACKAGES=$CORPUS_PACKAGES VERSIONS=$CORPUS_VERSIONS EXPECTED=$CORPUS_TARBALLS
TOTAL=$((WARMUP + SEQ + CONC))
REPO_NAME=bench
MAX_LOAD=1.5 LOAD_WAIT_S=300

CORPUS=$BENCH_CORPUS
WORK=$ROOT/target/bench-publish
PUBLIC=$WORK/public
NEW=$WORK/new

# ---------------------------------------------------------------------------------------------
say "tools"
need_tool curl curl
echo "$(curl --version | head -n 1 | cut -d' ' -f1-2)"

build_release "$WORK/hexrepo"

# ---------------------------------------------------------------------------------------------
ensure_corpus
ensure_key
KEY_BITS=$(openssl rsa -in "$KEY" -noout -text 2>/dev/null | sed -n 's/^Private-Key: (\([0-9]*\) bit.*/\1/p' | head -n 1)
echo "signing key: $KEY (${KEY_BITS:-?}-bit RSA)"
[[ ${KEY_BITS:-} == 2048 ]] || echo "WARNING: the target is stated for a 2048-bit key; this key is ${KEY_BITS:-of unknown size}"

# ---------------------------------------------------------------------------------------------
say "new releases"
# Publish i (0-based) is version 2.(i / PACKAGES).0 of pkg_((i % PACKAGES) + 1): one new
# version of an existing package each, never a version the corpus or an earlier publish has.
NAMES=() FILES=()
MISSING=()
for ((i = 0; i < TOTAL; i++)); do
    name=$(printf 'pkg_%05d' $((i % PACKAGES + 1))) version="2.$((i / PACKAGES)).0"
    [[ ! -e $CORPUS/tarballs/$name-$version.tar ]] || die "$name-$version.tar is in the corpus"
    NAMES+=("$name") FILES+=("$NEW/$name-$version.tar")
    [[ -s $NEW/$name-$version.tar ]] || MISSING+=("$name" "$version")
done
if ((${#MISSING[@]})); then
    need_apt erl erlang-base || true
    need_apt rebar3 rebar3 || true
    need_apt unzip unzip || true
    mkdir -p "$NEW"
    echo "creating $((${#MISSING[@]} / 2)) tarballs with tools/hex-core create-many (cached in $NEW)"
    tools/hex-core create-many "$NEW" "${MISSING[@]}" >/dev/null
fi
for f in "${FILES[@]}"; do [[ -s $f ]] || die "missing $f"; done
SIZE_AVG=$(for f in "${FILES[@]}"; do stat -c %s "$f"; done | awk '{s += $1} END {printf "%.1f", s / NR / 1024}')
echo "$TOTAL new releases (version 2.x.0 of pkg_00001...), ${SIZE_AVG} KiB per tarball on average"

# ---------------------------------------------------------------------------------------------
say "repository"
# The previous run's folder is renamed away and deleted only after this run's measurements:
# this root filesystem is ext4 without a journal, where creating a file skips every inode
# deleted in the last 60 s (see the build benchmark), and each publish creates four files.
TRASH=$WORK/trash.$$
[[ -e $PUBLIC ]] && mv "$PUBLIC" "$TRASH"
mkdir -p "$PUBLIC"
cp -al "$CORPUS/tarballs" "$PUBLIC/tarballs"
"$BIN" build "$PUBLIC" --name "$REPO_NAME" --private-key "$KEY" 2>&1 | tail -n 1
[[ -f $PUBLIC/names && -f $PUBLIC/versions && -f $PUBLIC/public_key ]] || die "hexrepo build made no registry in $PUBLIC"

bench_run_dir publish

SECRET=$(hexrepo_cmd key create bench --public-dir "$PUBLIC" --private-key "$KEY" --name "$REPO_NAME" 2>/dev/null) ||
    die "hexrepo key create failed"
[[ -n $SECRET ]] || die "hexrepo key create printed no secret"
echo "publishing key \"bench\" created"

say "server"
ACCESS_LOG=$WORK/hexrepo-access.log
start_hexrepo HEX_PID PORT "$ACCESS_LOG" --public-dir "$PUBLIC" --private-key "$KEY" --name "$REPO_NAME" --log-format text
grep -q '^api: off' "$ACCESS_LOG.out" && die "hexrepo serve started with the API off: $(cat "$ACCESS_LOG.out")"
BASE=http://127.0.0.1:$PORT
echo "hexrepo serve (pid $HEX_PID) at $BASE, access log in $ACCESS_LOG"

# Sanity: without the key a publish is refused, so the measurements cannot be of 401s.
code=$(curl -s -o "$RUN/body" -w '%{http_code}' -H 'Expect:' -H 'Content-Type: application/octet-stream' \
    --data-binary "@${FILES[0]}" "$BASE/api/packages/${NAMES[0]}/releases?replace=false")
[[ $code == 401 ]] || die "a publish without Authorization got $code, expected 401: $(cat "$RUN/body")"
echo "checked: a publish without the key is refused (401)"

# curl_config FIRST COUNT CONFIG_FILE: one transfer per publish, each writing
# "HTTP_CODE TIME_TOTAL URL" and its response body to $RUN/resp/INDEX.
mkdir -p "$RUN/resp"
curl_config() {
    local first=$1 count=$2 out=$3 i
    : >"$out"
    for ((i = first; i < first + count; i++)); do
        cat >>"$out" <<EOF
url = "$BASE/api/packages/${NAMES[$i]}/releases?replace=false"
header = "Authorization: $SECRET"
header = "Content-Type: application/octet-stream"
header = "Expect:"
data-binary = "@${FILES[$i]}"
output = "$RUN/resp/$i"
write-out = "%{http_code} %{time_total} %{url}\\n"
EOF
        ((i + 1 < first + count)) && echo next >>"$out"
    done
    return 0
}
curl_config 0 "$WARMUP" "$RUN/warmup.cfg"
curl_config "$WARMUP" "$SEQ" "$RUN/seq.cfg"
curl_config $((WARMUP + SEQ)) "$CONC" "$RUN/conc.cfg"

# check_codes RESULTS EXPECTED_COUNT WHAT: all 201, or abort with the first failure's body.
check_codes() {
    local results=$1 n=$2 what=$3 lines bad
    lines=$(wc -l <"$results")
    bad=$(awk '$1 != 201' "$results" | wc -l)
    if ((lines != n || bad > 0)); then
        echo "bench: $what: $lines responses for $n publishes, $bad not 201" >&2
        awk '$1 != 201' "$results" | head -n 5 >&2
        local url idx
        url=$(awk '$1 != 201 {print $3; exit}' "$results")
        if [[ -n $url ]]; then
            for idx in "${!NAMES[@]}"; do
                if [[ $url == */packages/${NAMES[$idx]}/releases* && -f $RUN/resp/$idx ]]; then
                    echo "response body: $(head -c 600 "$RUN/resp/$idx")" >&2
                    break
                fi
            done
        fi
        exit 1
    fi
}

# ---------------------------------------------------------------------------------------------
machine_info
echo "filesystem of $PUBLIC: $(df -T "$PUBLIC" | awk 'NR == 2 {print $2}')"

# Wait for a quiet machine: 1-min load average below MAX_LOAD, checked every 15 s, at most 5 min.
wait_for_quiet "$MAX_LOAD" "$LOAD_WAIT_S" 15
# And 61 s since the previous run deleted its folder (ext4 without a journal, see above).
wait_since_deleted "$WORK/deleted-at"
LOAD_BEFORE=$(loadavg)
echo "load average before measuring: $LOAD_BEFORE"

# ---------------------------------------------------------------------------------------------
say "measurements"
curl -s --no-progress-meter -K "$RUN/warmup.cfg" >"$RUN/warmup.txt" || true
check_codes "$RUN/warmup.txt" "$WARMUP" "warm-up"
echo "warm-up: $WARMUP publishes, all 201"

c0=$(cpu_ticks "$HEX_PID")
curl -s --no-progress-meter -K "$RUN/seq.cfg" >"$RUN/seq.txt" || true
c1=$(cpu_ticks "$HEX_PID")
check_codes "$RUN/seq.txt" "$SEQ" "sequential"
awk '{print $2}' "$RUN/seq.txt" >"$RUN/seq.times"
read -r SEQ_MED SEQ_P99 SEQ_MIN SEQ_MAX < <(stats "$RUN/seq.times" 1000)
SEQ_CPU=$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v n="$SEQ" 'BEGIN {printf "%.2f", t / hz * 1000 / n}')
echo "1 client:  $SEQ publishes, all 201; median $SEQ_MED ms, p99 $SEQ_P99 ms, min $SEQ_MIN ms, max $SEQ_MAX ms; server CPU $SEQ_CPU ms/publish"

c0=$(cpu_ticks "$HEX_PID")
t0=$(date +%s%N)
curl -s --no-progress-meter -Z --parallel-max "$CLIENTS" --parallel-immediate -K "$RUN/conc.cfg" >"$RUN/conc.txt" || true
t1=$(date +%s%N)
c1=$(cpu_ticks "$HEX_PID")
check_codes "$RUN/conc.txt" "$CONC" "$CLIENTS clients"
awk '{print $2}' "$RUN/conc.txt" >"$RUN/conc.times"
read -r CONC_MED CONC_P99 CONC_MIN CONC_MAX < <(stats "$RUN/conc.times" 1000)
WALL_S=$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.3f", d / 1e9}')
RATE=$(awk -v n="$CONC" -v s="$WALL_S" 'BEGIN {printf "%.1f", n / s}')
CONC_CPU=$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v n="$CONC" 'BEGIN {printf "%.2f", t / hz * 1000 / n}')
echo "$CLIENTS clients: $CONC publishes, all 201, in $WALL_S s = $RATE publishes/s; per request median $CONC_MED ms, p99 $CONC_P99 ms, max $CONC_MAX ms; server CPU $CONC_CPU ms/publish"
LOAD_AFTER=$(loadavg)

# Stop the server (SIGTERM: graceful, flushes the access log), then audit the folder.
stop_pid "$HEX_PID"

say "verify"
VERIFY=$("$BIN" verify "$PUBLIC" --name "$REPO_NAME" --public-key "$PUBLIC/public_key" 2>&1) ||
    die "hexrepo verify failed after the run: $(tail -n 5 <<<"$VERIFY")"
VERIFY_LINE=$(tail -n 1 <<<"$VERIFY")
echo "$VERIFY_LINE"
RELEASES=$(sed -n 's/.* packages, \([0-9]*\) releases checked.*/\1/p' <<<"$VERIFY_LINE")
[[ $RELEASES == $((EXPECTED + TOTAL)) ]] ||
    die "hexrepo verify counted ${RELEASES:-?} releases, expected $EXPECTED + $TOTAL = $((EXPECTED + TOTAL))"

# Server-side time of each publish, from the access log (duration_ms), in request order.
grep 'method=POST' "$ACCESS_LOG" | grep 'status=201' |
    sed -n 's/.* duration_ms=\([0-9.]*\).*/\1/p' >"$RUN/server.all" || true
SERVER_SEQ="n/a" SERVER_CONC="n/a"
if [[ $(wc -l <"$RUN/server.all") -eq $TOTAL ]]; then
    sed -n "$((WARMUP + 1)),$((WARMUP + SEQ))p" "$RUN/server.all" >"$RUN/server.seq"
    sed -n "$((WARMUP + SEQ + 1)),\$p" "$RUN/server.all" >"$RUN/server.conc"
    read -r a b _ _ < <(stats "$RUN/server.seq" 1)
    SERVER_SEQ="median $a ms, p99 $b ms"
    read -r a b _ _ < <(stats "$RUN/server.conc" 1)
    SERVER_CONC="median $a ms, p99 $b ms"
fi

cp "$RUN/seq.txt" "$WORK/curl-sequential.txt"
cp "$RUN/conc.txt" "$WORK/curl-concurrent.txt"

# The previous run's folder goes now, after the measurements (see "repository" above).
if compgen -G "$WORK/trash.*" >/dev/null; then
    rm -rf "$WORK"/trash.*
    mark_deleted "$WORK/deleted-at"
fi

# ---------------------------------------------------------------------------------------------
say "summary: hexrepo publish over HTTP, gen-corpus $PACKAGES x $VERSIONS + $TOTAL new releases, ${KEY_BITS:-?}-bit RSA key, $CPUS CPUs, $("$BIN" --version)"
MISSED=0
fmt='%-34s | %9s | %9s | %-17s | %s\n'
printf "$fmt" case median p99 target verdict
printf '%s\n' "-----------------------------------+-----------+-----------+-------------------+--------"
if awk -v a="$SEQ_MED" -v b="$T_MEDIAN_MS" 'BEGIN {exit !(a <= b)}'; then v=ok; else v=MISSED; MISSED=1; fi
printf "$fmt" "publish latency, 1 client ($SEQ)" "$SEQ_MED ms" "$SEQ_P99 ms" "median <= $T_MEDIAN_MS ms" "$v"
printf "$fmt" "publish latency, $CLIENTS clients ($CONC)" "$CONC_MED ms" "$CONC_P99 ms" "(report)" "-"
echo
echo "throughput: $RATE publishes/s with $CLIENTS concurrent clients ($CONC publishes in $WALL_S s)"
echo
echo "context (not targets):"
echo "  1 client: min $SEQ_MIN ms, max $SEQ_MAX ms; server-side (access log duration_ms) $SERVER_SEQ; server CPU $SEQ_CPU ms/publish"
echo "  $CLIENTS clients: min $CONC_MIN ms, max $CONC_MAX ms; server-side $SERVER_CONC; server CPU $CONC_CPU ms/publish"
echo "  tarballs: ${SIZE_AVG} KiB on average (hex-core create-many, no requirements); each publish adds version 2.x.0 to an existing package"
echo "  load average before measuring: $LOAD_BEFORE; after: $LOAD_AFTER"
echo "  verify: $VERIFY_LINE"
echo "  raw results (HTTP code, seconds, URL): $WORK/curl-{sequential,concurrent}.txt; access log $ACCESS_LOG; repository $PUBLIC"
if ((MISSED)); then echo "RESULT: target MISSED"; else echo "RESULT: target met"; fi
exit 0
