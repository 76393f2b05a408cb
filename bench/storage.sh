#!/usr/bin/env bash
# Storage benchmark: `hexrepo serve` on a local folder against the same repository on S3
# (moto, tools/s3-server), side by side (see bench/README.md).
#
#   bench/storage.sh [CORPUS_PACKAGES] [DURATION_SECONDS] [PUBLISHES]     defaults 200 10 50
#
# Corpus: `tools/gen-corpus DIR CORPUS_PACKAGES 5`. When the shared 1,000-package corpus of the
# other benchmarks (target/bench-corpus/tarballs, 5,000 tarballs) is there, its first
# CORPUS_PACKAGES packages are hard-linked instead (same generator and seed, so the same
# packages, sizes and requirements; requirements only point to lower-numbered packages, so the
# subset is complete). Otherwise it is generated once into target/bench-storage/corpus-N/.
# The folder target/bench-storage/public is built with `hexrepo build` (the shared 2048-bit
# key target/bench-corpus/private_key.pem), then moto is started
# (`tools/s3-server --port 0 --bucket hexrepo --verbose`, its request log kept) and the folder
# is uploaded with `hexrepo push PUBLIC s3://hexrepo/bench`.
#
# Two replicas, same key, same flags, each with its own publishing key from `hexrepo key create`:
#   local   hexrepo serve --public-dir target/bench-storage/public
#   s3      hexrepo serve --storage s3://hexrepo/bench (AWS_* variables pointing at moto)
# Measured on both, one after the other:
#   reads     GET /packages/NAME and one tarball: 1 s wrk warm-up, then
#             `wrk -t2 -c32 -dDURATION --latency` (Authorization: the key): req/s, p99, server
#             CPU per request, and the requests that reached moto meanwhile (revalidations)
#   cold      20 sequential first GETs of tarballs the replica has not read yet (one curl)
#   publish   5 untimed + PUBLISHES timed sequential publishes of new releases over HTTP
#             (one curl, keep-alive, as bench/publish.sh): median and p99, moto requests each
# Then `hexrepo verify` on the folder and on the bucket must pass and count every release.
# It is a report without targets; it exits non-zero only if it cannot run. It stops by itself:
# a watchdog ends it after a time limit that scales with the corpus (~9 min for 200 packages),
# and it waits at most 2 min for the load average to drop below 1.5 before measuring.
# HEXREPO_BENCH_TIME_LIMIT=SECONDS sets another time limit.
set -euo pipefail

PACKAGES=${1:-200} DURATION=${2:-10} PUBLISHES=${3:-50}
usage() { echo "usage: bench/storage.sh [CORPUS_PACKAGES] [DURATION_SECONDS] [PUBLISHES]" >&2; exit 2; }
[[ $PACKAGES =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ && $PUBLISHES =~ ^[1-9][0-9]*$ ]] || usage
VERSIONS=5 WARMUP=5 COLD=20
((PACKAGES >= 40 && PACKAGES <= 99999)) || { echo "CORPUS_PACKAGES must be 40 or more" >&2; usage; }
((WARMUP + PUBLISHES <= PACKAGES - COLD)) || { echo "PUBLISHES must be at most CORPUS_PACKAGES - $((COLD + WARMUP))" >&2; usage; }
EXPECTED=$((PACKAGES * VERSIONS))

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_NAME=bench
CONNECTIONS=32 THREADS=2
BUCKET=hexrepo PREFIX=bench
S3_URL=s3://$BUCKET/$PREFIX

SHARED=$BENCH_CORPUS
WORK=$ROOT/target/bench-storage
PUBLIC=$WORK/public
NEW=$WORK/new
T_START=$(date +%s)

# ---------------------------------------------------------------------------------------------
say "tools"
need_tool wrk wrk
need_tool curl curl
command -v python3 >/dev/null || die "python3 not found"
MOTO=5.2.5 # as tools/test
if ! python3 -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO')" 2>/dev/null; then
    echo "installing moto[server]==$MOTO (tools/s3-server), as tools/test does"
    python3 -m pip install -q --disable-pip-version-check "moto[server]==$MOTO" || die "cannot install moto"
fi
echo "$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), $(curl --version | head -n 1 | cut -d' ' -f1-2), moto $(python3 -c 'import moto; print(moto.__version__)')"

build_release "$WORK/hexrepo"

# ---------------------------------------------------------------------------------------------
say "corpus"
CORPUS=$WORK/corpus-$PACKAGES
if [[ $(count_tars "$CORPUS") -ne $EXPECTED ]]; then
    rm -rf "$CORPUS.tmp"
    mkdir -p "$CORPUS.tmp"
    if (($(count_tars "$SHARED/tarballs") == 5000 && PACKAGES <= 1000)); then
        echo "hard-linking pkg_00001..pkg_$(printf '%05d' "$PACKAGES") from $SHARED/tarballs (gen-corpus 1000 5)"
        for ((i = 1; i <= PACKAGES; i++)); do
            ln "$SHARED/tarballs/$(printf 'pkg_%05d' "$i")"-*.tar "$CORPUS.tmp/"
        done
    else
        need_apt rebar3 erlang-base rebar3 || true
        echo "generating: tools/gen-corpus $CORPUS $PACKAGES $VERSIONS (takes a while)"
        tools/gen-corpus "$CORPUS.tmp" "$PACKAGES" "$VERSIONS"
    fi
    [[ $(count_tars "$CORPUS.tmp") -eq $EXPECTED ]] || die "corpus does not have $EXPECTED tarballs"
    rm -rf "$CORPUS"
    mv "$CORPUS.tmp" "$CORPUS"
fi
CORPUS_MB=$(du -sLm "$CORPUS" | cut -f1)
echo "$(count_tars "$CORPUS") tarballs (${CORPUS_MB} MB) in $CORPUS"
ensure_key

say "new releases"
# Publish i (0-based) is version 2.0.0 of pkg_(i + 1); the corpus has 0.1.0 to 1.1.0. The same
# tarballs go to both replicas (two separate repositories). bench/publish.sh makes the same
# files (target/bench-publish/new/): reused when there.
NAMES=() FILES=() MISSING=()
for ((i = 0; i < WARMUP + PUBLISHES; i++)); do
    name=$(printf 'pkg_%05d' $((i + 1)))
    f=$NEW/$name-2.0.0.tar
    NAMES+=("$name") FILES+=("$f")
    if [[ ! -s $f ]]; then
        mkdir -p "$NEW"
        if [[ -s $ROOT/target/bench-publish/new/$name-2.0.0.tar ]]; then
            ln -f "$ROOT/target/bench-publish/new/$name-2.0.0.tar" "$f"
        else
            MISSING+=("$name" 2.0.0)
        fi
    fi
done
if ((${#MISSING[@]})); then
    need_apt erl erlang-base || true
    need_apt rebar3 rebar3 || true
    need_apt unzip unzip || true
    echo "creating $((${#MISSING[@]} / 2)) tarballs with tools/hex-core create-many (cached in $NEW)"
    tools/hex-core create-many "$NEW" "${MISSING[@]}" >/dev/null
fi
for f in "${FILES[@]}"; do [[ -s $f ]] || die "missing $f"; done
echo "$((WARMUP + PUBLISHES)) new releases: 2.0.0 of ${NAMES[0]}..${NAMES[-1]}"

# ---------------------------------------------------------------------------------------------
say "registry"
rm -rf "$PUBLIC"
mkdir -p "$PUBLIC"
cp -al "$CORPUS" "$PUBLIC/tarballs"
"$BIN" build "$PUBLIC" --name "$REPO_NAME" --private-key "$KEY" 2>&1 | tail -n 1
PACKAGE=$(printf 'pkg_%05d' $((PACKAGES / 2)))
TARBALL=$(cd "$PUBLIC/tarballs" && ls "$PACKAGE"-*.tar | sort -V | head -n 1)
[[ -f $PUBLIC/packages/$PACKAGE && -f $PUBLIC/tarballs/$TARBALL ]] || die "the built registry lacks packages/$PACKAGE or tarballs/$TARBALL"
ENDPOINTS=("/packages/$PACKAGE" "/tarballs/$TARBALL")
EP_KEYS=(packages tarball)
for ep in "${ENDPOINTS[@]}"; do printf '  %-28s %6d bytes\n' "${ep#/}" "$(stat -c %s "$PUBLIC$ep")"; done

# ---------------------------------------------------------------------------------------------
bench_run_dir storage

# Watchdog: stop the whole run (through the trap) if it takes too long from here on.
LIMIT=${HEXREPO_BENCH_TIME_LIMIT:-$((300 + 12 * DURATION + PACKAGES * VERSIONS / 20 + PUBLISHES))}
(
    end=$(($(date +%s) + LIMIT))
    while (($(date +%s) < end)); do
        sleep 1
        kill -0 $$ 2>/dev/null || exit 0
    done
    echo "bench: time limit of ${LIMIT} s exceeded; stopping" >&2
    kill -TERM $$
) &
track_pid $!

say "S3 (moto)"
MOTO_LOG=$WORK/moto-requests.log
tools/s3-server --port 0 --bucket "$BUCKET" --verbose >"$RUN/moto.out" 2>"$MOTO_LOG" &
MOTO_PID=$!
track_pid "$MOTO_PID"
MOTO_ADDR=$(await_output "$MOTO_PID" "$RUN/moto.out" 's/^listening on //p')
[[ -n $MOTO_ADDR ]] || die "tools/s3-server did not start: $(cat "$RUN/moto.out" "$MOTO_LOG")"
echo "moto (pid $MOTO_PID) at http://$MOTO_ADDR, bucket $BUCKET; request log in $MOTO_LOG"
S3_ENV=(AWS_ENDPOINT="http://$MOTO_ADDR" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    AWS_ALLOW_HTTP=true AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false)
# Every hexrepo command and server gets the AWS_* variables; a command is stopped after
# CMD_TIMEOUT seconds.
HEX_ENV=("${S3_ENV[@]}")
CMD_TIMEOUT=120
moto_requests() { wc -l <"$MOTO_LOG"; }

t0=$(date +%s%N)
PUSH_OUT=$(CMD_TIMEOUT=$((60 + PACKAGES)) hexrepo_cmd push "$PUBLIC" "$S3_URL" 2>&1) ||
    die "hexrepo push failed: $(tail -n 5 <<<"$PUSH_OUT")"
t1=$(date +%s%N)
PUSH_S=$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 1e9}')
PUSH_LINE=$(tail -n 1 <<<"$PUSH_OUT")
echo "hexrepo push $PUBLIC $S3_URL: $PUSH_LINE in $PUSH_S s ($(moto_requests) requests to moto)"

SECRET_LOCAL=$(hexrepo_cmd key create bench --public-dir "$PUBLIC" --private-key "$KEY" --name "$REPO_NAME" 2>/dev/null) ||
    die "hexrepo key create (folder) failed"
SECRET_S3=$(hexrepo_cmd key create bench --storage "$S3_URL" --private-key "$KEY" --name "$REPO_NAME" 2>/dev/null) ||
    die "hexrepo key create --storage $S3_URL failed"
[[ -n $SECRET_LOCAL && -n $SECRET_S3 ]] || die "hexrepo key create printed no secret"
echo "publishing keys \"bench\" created in the folder and in the bucket"

# ---------------------------------------------------------------------------------------------
say "replicas"
LOCAL_LOG=$WORK/local-access.log S3_LOG=$WORK/s3-access.log
SERVE_ARGS=(--private-key "$KEY" --name "$REPO_NAME" --log-format text --cache-mib 16)
start_hexrepo LOCAL_PID LOCAL_PORT "$LOCAL_LOG" "${SERVE_ARGS[@]}" --public-dir "$PUBLIC"
start_hexrepo S3_PID S3_PORT "$S3_LOG" "${SERVE_ARGS[@]}" --storage "$S3_URL"
for log in "$LOCAL_LOG" "$S3_LOG"; do
    grep -q '^api: off' "$log.out" && die "hexrepo serve started with the API off: $(cat "$log.out")"
done
echo "local: hexrepo serve --public-dir $PUBLIC (pid $LOCAL_PID) at http://127.0.0.1:$LOCAL_PORT, access log $LOCAL_LOG"
echo "s3:    hexrepo serve --storage $S3_URL (pid $S3_PID) at http://127.0.0.1:$S3_PORT, access log $S3_LOG"
echo "       $(head -n 1 "$S3_LOG.out")"

# Sanity: both replicas return the folder's bytes with the key, and 401 without it.
for r in local s3; do
    port=LOCAL_PORT secret=SECRET_LOCAL
    [[ $r == s3 ]] && port=S3_PORT secret=SECRET_S3
    for ep in "${ENDPOINTS[@]}" /names; do
        curl -fsS -H "Authorization: ${!secret}" "http://127.0.0.1:${!port}$ep" -o "$RUN/body" || die "$r: GET $ep failed"
        cmp -s "$RUN/body" "$PUBLIC$ep" || die "$r: GET $ep: body differs from $PUBLIC$ep"
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!port}/names")
    [[ $code == 401 ]] || die "$r: GET /names without credentials: $code, expected 401"
done
echo "checked: both replicas serve the folder's bytes with the key, 401 without it"

# ---------------------------------------------------------------------------------------------
machine_info
# Wait a little for a quiet machine: 1-min load average below 1.5, checked every 10 s, at most
# 2 min (then measure anyway, with a warning).
wait_for_quiet 1.5 120 10
LOAD_BEFORE=$(loadavg)
warn_if_busy 1.0 "wrk, both replicas and moto share $CPUS CPUs with whatever else runs"

# moto_summary FROM_LINE TO_LINE: "N requests (GET 200: a, GET 304: b, ...)" of its request log.
moto_summary() {
    sed -n "$(($1 + 1)),$2p" "$MOTO_LOG" | awk -v n=$(($2 - $1)) '
        match($0, /"[A-Z]+ /) { m = substr($0, RSTART + 1, RLENGTH - 2); rest = substr($0, RSTART + RLENGTH)
            if (match(rest, /" [0-9][0-9][0-9] /)) c[m " " substr(rest, RSTART + 2, 3)]++ }
        END { s = ""; for (k in c) s = s (s == "" ? "" : ", ") k ": " c[k]; printf "%d requests%s\n", n, (s == "" ? "" : " (" s ")") }'
}

# moto_paths FROM_LINE TO_LINE: "PATH: N, ..." (bucket and prefix left out), most requested first.
moto_paths() {
    sed -n "$(($1 + 1)),$2p" "$MOTO_LOG" | sed -n 's|.*"[A-Z]* /'"$BUCKET"'/'"$PREFIX"'/\([^ ?]*\).*|\1|p' |
        sort | uniq -c | sort -rn | head -n 5 | awk '{s = s (NR > 1 ? ", " : "") $2 ": " $1} END {print s}'
}

# ---------------------------------------------------------------------------------------------
# bench KEY URL PID SECRET: sets RPS_KEY, P99_KEY (ms), CPU_KEY (server µs/request), MOTO_KEY.
WARNINGS=()
bench() {
    local key=$1 url=$2 pid=$3 secret=$4 out c0 c1 m0 m1 mc0 mc1 rps p50 p99 max errors
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s -H "Authorization: $secret" "$url" >/dev/null
    c0=$(cpu_ticks "$pid") m0=$(moto_requests) mc0=$(cpu_ticks "$MOTO_PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: $secret" "$url")
    c1=$(cpu_ticks "$pid") m1=$(moto_requests) mc1=$(cpu_ticks "$MOTO_PID")
    printf '%s\n' "$out" >"$WORK/wrk-$key.txt"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(wrk_ms "$out" 50% 2) p99=$(wrk_ms "$out" 99% 2) max=$(wrk_ms "$out" Latency 4)
    [[ -n $rps && -n $p50 && -n $p99 && -n $max ]] || die "cannot parse wrk output for $key: $out"
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' || true)
    if [[ -n $errors ]]; then
        echo "  WARNING $key: $errors"
        WARNINGS+=("$key: $errors")
    fi
    printf -v "RPS_$key" %s "$rps"
    printf -v "P50_$key" %s "$p50"
    printf -v "P99_$key" %s "$p99"
    printf -v "MAX_$key" %s "$max"
    printf -v "CPU_$key" %s "$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v r="$rps" -v d="$DURATION" \
        'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}')"
    local paths
    paths=$(moto_paths "$m0" "$m1")
    printf -v "MOTO_$key" %s "$(moto_summary "$m0" "$m1")${paths:+ [$paths]}, moto CPU $(awk -v t=$((mc1 - mc0)) -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}') s"
    local n=CPU_$key m=MOTO_$key
    printf '  %-16s %9.0f req/s   p50 %7.3f ms   p99 %7.3f ms   max %7.2f ms   server CPU %5.1f us/req   moto: %s\n' \
        "$key" "$rps" "$p50" "$p99" "$max" "${!n}" "${!m}"
}

say "reads: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency after a 1 s warm-up"
for i in "${!ENDPOINTS[@]}"; do
    ep=${ENDPOINTS[$i]} k=${EP_KEYS[$i]}
    echo "-- GET $ep"
    bench "local_$k" "http://127.0.0.1:$LOCAL_PORT$ep" "$LOCAL_PID" "$SECRET_LOCAL"
    bench "s3_$k" "http://127.0.0.1:$S3_PORT$ep" "$S3_PID" "$SECRET_S3"
done

say "cold reads: $COLD sequential first GETs of tarballs not read before (one curl, keep-alive)"
COLD_TARS=()
for ((i = PACKAGES - COLD + 1; i <= PACKAGES; i++)); do
    COLD_TARS+=("$(cd "$PUBLIC/tarballs" && ls "$(printf 'pkg_%05d' "$i")"-*.tar | sort -V | head -n 1)")
done
for r in local s3; do
    port=LOCAL_PORT secret=SECRET_LOCAL
    [[ $r == s3 ]] && port=S3_PORT secret=SECRET_S3
    : >"$RUN/cold-$r.cfg"
    for t in "${COLD_TARS[@]}"; do
        [[ -s $RUN/cold-$r.cfg ]] && echo next >>"$RUN/cold-$r.cfg"
        printf 'url = "http://127.0.0.1:%s/tarballs/%s"\nheader = "Authorization: %s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' \
            "${!port}" "$t" "${!secret}" >>"$RUN/cold-$r.cfg"
    done
    m0=$(moto_requests)
    curl -s --max-time 30 -K "$RUN/cold-$r.cfg" >"$RUN/cold-$r.txt" || true
    m1=$(moto_requests)
    bad=$(awk '$1 != 200' "$RUN/cold-$r.txt" | wc -l)
    [[ $(wc -l <"$RUN/cold-$r.txt") -eq $COLD && $bad -eq 0 ]] || die "$r: cold GETs: not $COLD answers of 200: $(head -n 5 "$RUN/cold-$r.txt")"
    awk '{print $2}' "$RUN/cold-$r.txt" >"$RUN/cold-$r.times"
    read -r med p99 min max < <(stats "$RUN/cold-$r.times" 1000)
    printf -v "COLD_MED_$r" %s "$med"
    printf -v "COLD_MAX_$r" %s "$max"
    printf '  %-6s median %7.2f ms, min %7.2f ms, max %7.2f ms; moto: %s\n' "$r" "$med" "$min" "$max" "$(moto_summary "$m0" "$m1")"
done

# ---------------------------------------------------------------------------------------------
say "publish: $WARMUP untimed + $PUBLISHES sequential publishes over HTTP per replica (one curl, keep-alive)"
mkdir -p "$RUN/resp"
# curl_config BASE SECRET FIRST COUNT OUT: one transfer per publish, writing "CODE SECONDS URL".
curl_config() {
    local base=$1 secret=$2 first=$3 count=$4 out=$5 i
    : >"$out"
    for ((i = first; i < first + count; i++)); do
        cat >>"$out" <<EOF
url = "$base/api/packages/${NAMES[$i]}/releases?replace=false"
header = "Authorization: $secret"
header = "Content-Type: application/octet-stream"
header = "Expect:"
data-binary = "@${FILES[$i]}"
output = "$RUN/resp/$i"
max-time = 60
write-out = "%{http_code} %{time_total} %{url}\\n"
EOF
        ((i + 1 < first + count)) && echo next >>"$out"
    done
    return 0
}
check_codes() { # check_codes RESULTS N WHAT
    local lines bad
    lines=$(wc -l <"$1")
    bad=$(awk '$1 != 201' "$1" | wc -l)
    if ((lines != $2 || bad > 0)); then
        echo "bench: $3: $lines responses for $2 publishes, $bad not 201" >&2
        awk '$1 != 201' "$1" | head -n 5 >&2
        local url idx
        url=$(awk '$1 != 201 {print $3; exit}' "$1")
        for idx in "${!NAMES[@]}"; do
            if [[ -n $url && $url == */packages/${NAMES[$idx]}/releases* && -f $RUN/resp/$idx ]]; then
                echo "response body: $(head -c 600 "$RUN/resp/$idx")" >&2
                break
            fi
        done
        exit 1
    fi
}
for r in local s3; do
    port=LOCAL_PORT secret=SECRET_LOCAL pid=LOCAL_PID
    [[ $r == s3 ]] && port=S3_PORT secret=SECRET_S3 pid=S3_PID
    base=http://127.0.0.1:${!port}
    curl_config "$base" "${!secret}" 0 "$WARMUP" "$RUN/warmup-$r.cfg"
    curl_config "$base" "${!secret}" "$WARMUP" "$PUBLISHES" "$RUN/seq-$r.cfg"
    curl -s --no-progress-meter -K "$RUN/warmup-$r.cfg" >"$RUN/warmup-$r.txt" || true
    check_codes "$RUN/warmup-$r.txt" "$WARMUP" "$r warm-up"
    m0=$(moto_requests) c0=$(cpu_ticks "${!pid}")
    curl -s --no-progress-meter -K "$RUN/seq-$r.cfg" >"$RUN/seq-$r.txt" || true
    m1=$(moto_requests) c1=$(cpu_ticks "${!pid}")
    check_codes "$RUN/seq-$r.txt" "$PUBLISHES" "$r publishes"
    cp "$RUN/seq-$r.txt" "$WORK/curl-publish-$r.txt"
    awk '{print $2}' "$RUN/seq-$r.txt" >"$RUN/seq-$r.times"
    read -r med p99 min max < <(stats "$RUN/seq-$r.times" 1000)
    printf -v "PUB_MED_$r" %s "$med"
    printf -v "PUB_P99_$r" %s "$p99"
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v n="$PUBLISHES" 'BEGIN {printf "%.2f", t / hz * 1000 / n}')
    printf -v "PUB_CPU_$r" %s "$cpu"
    per=$(awk -v m=$((m1 - m0)) -v n="$PUBLISHES" 'BEGIN {printf "%.1f", m / n}')
    printf -v "PUB_MOTO_$r" %s "$per"
    # Which requests, per publish: names normalised (NAME, VERSION, ID), in order of first use.
    printf -v "PUB_OPS_$r" %s "$(sed -n "$((m0 + 1)),${m1}p" "$MOTO_LOG" |
        sed -n 's|.*"\([A-Z]*\) /'"$BUCKET"'/'"$PREFIX"'/\([^ ?]*\)[^"]*" \([0-9]*\).*|\1 \2 \3|p' |
        sed -E 's/pkg_[0-9]{5}/NAME/g; s/-[0-9]+\.[0-9]+\.[0-9]+/-VERSION/; s|audit\.log\.d/[^ ]*|audit.log.d/ID|' |
        awk -v n="$PUBLISHES" '!($0 in c) {o[++k] = $0} {c[$0]++}
            END {for (i = 1; i <= k; i++) s = s (i > 1 ? ", " : "") o[i] " x" sprintf("%.2f", c[o[i]] / n); print s}')"
    printf '  %-6s all 201; median %7.2f ms, p99 %7.2f ms, min %7.2f ms, max %7.2f ms; server CPU %s ms/publish; moto: %s\n' \
        "$r" "$med" "$p99" "$min" "$max" "$cpu" "$(moto_summary "$m0" "$m1")"
done
LOAD_AFTER=$(loadavg)

# A publish on the S3 replica is visible there at once (its own cache is updated or bypassed)?
code=$(curl -s -o "$RUN/body" -w '%{http_code}' -H "Authorization: $SECRET_S3" "http://127.0.0.1:$S3_PORT/tarballs/${NAMES[-1]}-2.0.0.tar")
cmp -s "$RUN/body" "${FILES[-1]}" || { echo "  WARNING: the S3 replica does not serve its last publish at once (HTTP $code)"; WARNINGS+=("s3: last publish not served at once (HTTP $code)"); }

# Stop the replicas (SIGTERM: graceful, flushes the access logs), then audit both repositories.
stop_pid "$LOCAL_PID"
stop_pid "$S3_PID"

say "verify"
RELEASES_EXPECTED=$((EXPECTED + WARMUP + PUBLISHES))
for r in local s3; do
    loc=$PUBLIC
    [[ $r == s3 ]] && loc=$S3_URL
    out=$(hexrepo_cmd verify "$loc" --name "$REPO_NAME" --public-key "$PUBLIC/public_key" 2>&1) ||
        die "hexrepo verify $loc failed: $(tail -n 5 <<<"$out")"
    line=$(tail -n 1 <<<"$out")
    n=$(sed -n 's/.* packages, \([0-9]*\) releases checked.*/\1/p' <<<"$line")
    [[ $n == "$RELEASES_EXPECTED" ]] || die "hexrepo verify $loc counted ${n:-?} releases, expected $RELEASES_EXPECTED"
    printf -v "VERIFY_$r" %s "$line"
    echo "  $r ($loc): $line"
done

# Revalidation stalls, from the access logs (server-side duration_ms of the hot reads): a batch
# is 8 or more requests slower than 2 ms that end within the same 10 ms, i.e. that waited
# together for one thing. On the S3 replica that is the conditional GET made when an entry is
# older than 1 s, which every concurrent request for the key waits for.
for r in local s3; do
    log=$LOCAL_LOG
    [[ $r == s3 ]] && log=$S3_LOG
    for i in "${!ENDPOINTS[@]}"; do
        printf -v "STALL_${r}_${EP_KEYS[$i]}" %s "$(grep -F "method=GET path=${ENDPOINTS[$i]} " "$log" | awk '
            {d = $NF; sub(/.*=/, "", d); d += 0; if (d > 2) {k = substr($1, 1, 22); c[k]++; t[k] += d}}
            END {for (k in c) if (c[k] >= 8) {b++; n += c[k]; s += t[k]}
                 printf "%d batches, %d requests, %.1f ms each on average\n", b, n, (n ? s / n : 0)}')"
    done
done

# Anything the replicas logged above info level, and any 5xx answers.
for r in local s3; do
    log=$LOCAL_LOG
    [[ $r == s3 ]] && log=$S3_LOG
    n5=$(grep -c 'status=5[0-9][0-9]' "$log" || true)
    nw=$(grep -cE '^\S+\s+(WARN|ERROR)' "$log" || true)
    if ((n5 + nw > 0)); then
        echo "  WARNING $r: $n5 answers 5xx, $nw WARN/ERROR log lines in $log, e.g.:"
        grep -E 'status=5[0-9][0-9]|^\S+\s+(WARN|ERROR)' "$log" | head -n 3 | cut -c1-300 | sed 's/^/    /'
        WARNINGS+=("$r: $n5 answers 5xx, $nw WARN/ERROR log lines")
    fi
done

# ---------------------------------------------------------------------------------------------
say "summary: hexrepo serve on a local folder vs S3 (moto), gen-corpus $PACKAGES x $VERSIONS, $CPUS CPUs, $("$BIN" --version)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}'; }
fmt='%-44s | %12s | %12s | %8s\n'
printf "$fmt" case local "S3 (moto)" S3/local
printf '%s\n' "---------------------------------------------+--------------+--------------+---------"
for i in "${!ENDPOINTS[@]}"; do
    k=${EP_KEYS[$i]}
    n=RPS_local_$k; lr=${!n}; n=RPS_s3_$k; sr=${!n}
    n=P99_local_$k; lp=${!n}; n=P99_s3_$k; sp=${!n}
    printf "$fmt" "GET ${ENDPOINTS[$i]} req/s" "$(printf '%.0f' "$lr")" "$(printf '%.0f' "$sr")" "$(ratio "$sr" "$lr")"
    n=P50_local_$k; l5=${!n}; n=P50_s3_$k; s5=${!n}
    n=MAX_local_$k; lm=${!n}; n=MAX_s3_$k; sm=${!n}
    printf "$fmt" "GET ${ENDPOINTS[$i]} p50" "$(printf '%.2f ms' "$l5")" "$(printf '%.2f ms' "$s5")" "$(ratio "$s5" "$l5")"
    printf "$fmt" "GET ${ENDPOINTS[$i]} p99" "$(printf '%.2f ms' "$lp")" "$(printf '%.2f ms' "$sp")" "$(ratio "$sp" "$lp")"
    printf "$fmt" "GET ${ENDPOINTS[$i]} max" "$(printf '%.2f ms' "$lm")" "$(printf '%.2f ms' "$sm")" "$(ratio "$sm" "$lm")"
done
printf "$fmt" "first GET of a tarball, median of $COLD" "$(printf '%.2f ms' "$COLD_MED_local")" "$(printf '%.2f ms' "$COLD_MED_s3")" "$(ratio "$COLD_MED_s3" "$COLD_MED_local")"
printf "$fmt" "publish, 1 client, median of $PUBLISHES" "$(printf '%.2f ms' "$PUB_MED_local")" "$(printf '%.2f ms' "$PUB_MED_s3")" "$(ratio "$PUB_MED_s3" "$PUB_MED_local")"
printf "$fmt" "publish, 1 client, p99" "$(printf '%.2f ms' "$PUB_P99_local")" "$(printf '%.2f ms' "$PUB_P99_s3")" "$(ratio "$PUB_P99_s3" "$PUB_P99_local")"
echo
echo "context:"
for k in "${EP_KEYS[@]}"; do
    n=CPU_local_$k; a=${!n}; n=CPU_s3_$k; b=${!n}; n=MOTO_s3_$k
    echo "  $k reads: server CPU $a us/req local, $b us/req S3; requests reaching moto during the S3 run: ${!n}"
    n=STALL_local_$k; a=${!n}; n=STALL_s3_$k; b=${!n}
    echo "    stalls (8+ requests > 2 ms ending within 10 ms, server-side): local $a; S3 $b"
done
echo "  publish: server CPU $PUB_CPU_local ms local, $PUB_CPU_s3 ms S3 per publish; $PUB_MOTO_s3 moto requests per S3 publish:"
echo "    $PUB_OPS_s3"
echo "  push of the folder to moto: $PUSH_LINE in $PUSH_S s"
echo "  verify: local: $VERIFY_local; s3: $VERIFY_s3"
echo "  load average before measuring: $LOAD_BEFORE; after: $LOAD_AFTER; run took $(($(date +%s) - T_START)) s"
echo "  moto is a Python emulator that serializes every request: the S3 column measures hexrepo's caching plus moto, not real S3"
echo "  raw: $WORK/wrk-*.txt, $WORK/curl-publish-*.txt, access logs $LOCAL_LOG $S3_LOG, moto log $MOTO_LOG"
if ((${#WARNINGS[@]})); then
    echo "warnings:"
    printf '  %s\n' "${WARNINGS[@]}"
fi
exit 0
