#!/usr/bin/env bash
# Mirror benchmark: `hexrepo mirror sync` (eager) and `hexrepo serve --mirror` (lazy) of an
# upstream Hex repository served by nginx, side by side with plain downloads of the same files
# (see bench/README.md).
#
#   bench/mirror.sh [RUNS] [FILES] [DURATION_SECONDS]     defaults 3 200 10
#
# Upstream: the shared `tools/gen-corpus DIR 1000 5` corpus (target/bench-corpus, or
# HEXREPO_BENCH_CORPUS), hard-linked into target/bench-mirror/upstream and built with
# `hexrepo build --name hexpm` and a key of its own; nginx serves it on 127.0.0.1 twice: one
# port with an access log (what the mirrors talk to, so their upstream requests are counted),
# one without (the "direct" baseline, configured as in bench/serve.sh).
#
# Eager, each into a fresh empty folder, the two alternating, RUNS times each:
#   sync      hexrepo mirror sync --jobs 8 of everything (1,000 packages, 5,000 releases):
#             wall time, CPU, peak RSS (/usr/bin/time -v), upstream requests
#   curl      the same 6,002 files (names, versions, packages/*, tarballs/*) fetched by one
#             `curl -Z --parallel-max 8` with keep-alive: the floor of just downloading; and
#             that plus one `sync -f` (its files made durable, as hexrepo's are: it syncs as it
#             writes). Every timed step starts after an untimed `sync -f`.
# then RUNS re-runs of the sync on the first (complete) mirror: everything skipped, the registry
# files answered 304. The first mirror must equal the upstream folder byte for byte
# (diff -r, .hexrepo/ left out).
# Lazy: hexrepo serve --mirror (lazy) on an empty mirror folder, and one curl with keep-alive
# fetching FILES distinct files one after the other, for three kinds of file:
#   packages/NAME                       of FILES packages (set A)
#   tarball, packages/NAME stored       one release of each package of set A
#   tarball, packages/NAME not stored   one release of each of FILES other packages (set B):
#                                       the mirror needs the package file to verify it
# each cold (the first request: a miss, fetched upstream, verified, stored), warm (the same
# again, served from the mirror) and direct (the same paths from nginx): median and p99 of
# curl's time_total. Then `wrk -t2 -c32 -dDURATION --latency` on one hot package file and one
# hot tarball, through the mirror and from nginx, as bench/serve.sh does.
# Context: a probe of how long one durable write takes on this filesystem (python3), since
# hexrepo makes every file it stores durable before the next (syncfs and a folder fsync).
#
# It is a report without targets: it exits non-zero only if it cannot run (a failed build or
# sync, a server that does not start, a file that differs from the upstream's).
set -euo pipefail

RUNS=${1:-3} FILES=${2:-200} DURATION=${3:-10}
usage() { echo "usage: bench/mirror.sh [RUNS] [FILES] [DURATION_SECONDS]   (FILES at most 500)" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ && $FILES =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] || usage
((FILES <= 500)) || usage

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JOBS=8 CONNECTIONS=32 THREADS=2
UPSTREAM_NAME=hexpm PRIVATE_NAME=bench
MIRROR_PREFIX=/mirrors/hexpm
HOT_PACKAGE=pkg_00500

CORPUS=$BENCH_CORPUS
WORK=$ROOT/target/bench-mirror
UPSTREAM=$WORK/upstream
MIRRORS=$WORK/mirrors
T_START=$(date +%s)

# ---------------------------------------------------------------------------------------------
say "tools"
need_tool nginx nginx-light
need_tool wrk wrk
need_tool curl curl
need_tool /usr/bin/time time
need_tool openssl openssl
# (awk reads all the output: head would stop the writer with SIGPIPE, a failure under pipefail)
CURL_VERSION=$(curl --version | awk 'NR == 1 {print $1, $2}')
WRK_VERSION=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $1, $2}')
echo "$(PATH=$PATH:/usr/sbin:/sbin nginx -v 2>&1), $WRK_VERSION, $CURL_VERSION"

build_release "$WORK/hexrepo"

# ---------------------------------------------------------------------------------------------
ensure_corpus
ensure_key # the private repository's key (hexrepo serve wants one beside the mirror)

say "upstream"
# The previous run's folders are renamed away now and deleted after measuring: deleting
# thousands of files slows creating files for the next 60 s here (see wait_since_deleted in
# bench/lib.sh), and every sync creates 6,000.
TRASH=$WORK/trash.$$
for d in "$UPSTREAM" "$MIRRORS"; do
    if [[ -e $d ]]; then mkdir -p "$TRASH" && mv "$d" "$TRASH/"; fi
done
UPSTREAM_KEY=$WORK/upstream_key.pem
[[ -s $UPSTREAM_KEY ]] || "$BIN" keygen --out "$UPSTREAM_KEY" >/dev/null || die "hexrepo keygen failed"
mkdir -p "$UPSTREAM" "$MIRRORS"
cp -al "$CORPUS/tarballs" "$UPSTREAM/tarballs"
"$BIN" build "$UPSTREAM" --name "$UPSTREAM_NAME" --private-key "$UPSTREAM_KEY" 2>&1 | tail -n 1
[[ -f $UPSTREAM/names && -f $UPSTREAM/versions && -f $UPSTREAM/public_key ]] || die "hexrepo build made no registry in $UPSTREAM"
# Every file a mirror fetches: `public_key` is not one (a mirror writes the configured key).
(cd "$UPSTREAM" && { echo names; echo versions; find packages tarballs -type f | sort; }) >"$WORK/paths.txt"
NPATHS=$(wc -l <"$WORK/paths.txt")
NPACKAGES=$(find "$UPSTREAM/packages" -type f | wc -l)
NTARBALLS=$(count_tars "$UPSTREAM/tarballs")
((NPACKAGES == CORPUS_PACKAGES && NTARBALLS == CORPUS_TARBALLS)) ||
    die "the upstream has $NPACKAGES packages and $NTARBALLS tarballs, expected $CORPUS_PACKAGES and $CORPUS_TARBALLS"
UPSTREAM_MB=$(du -sLm --exclude=.hexrepo "$UPSTREAM" | cut -f1)
echo "upstream $UPSTREAM: $NPACKAGES packages, $NTARBALLS tarballs, $NPATHS files to mirror, $UPSTREAM_MB MB"

# ---------------------------------------------------------------------------------------------
say "nginx"
bench_run_dir mirror
UP_PORT=$(free_port) DIRECT_PORT=$(free_port)
UP_LOG=$WORK/upstream-access.log
: >"$UP_LOG"
start_nginx "
  log_format upstream '\$status \$request_method \$request_uri \$body_bytes_sent';
  server {
    listen 127.0.0.1:$UP_PORT;
    root \"$UPSTREAM\";
    access_log $UP_LOG upstream;
    location / { try_files \$uri =404; }
  }
  server {
    listen 127.0.0.1:$DIRECT_PORT;
    root \"$UPSTREAM\";
    location / { try_files \$uri =404; }
  }"
UP_URL=http://127.0.0.1:$UP_PORT DIRECT_URL=http://127.0.0.1:$DIRECT_PORT
for url in "$UP_URL" "$DIRECT_URL"; do
    curl -fsS "$url/names" -o "$RUN/body" || die "GET $url/names failed"
    cmp -s "$RUN/body" "$UPSTREAM/names" || die "GET $url/names: body differs from $UPSTREAM/names"
done
: >"$UP_LOG"
echo "nginx (pid $NGINX_PID, $(pgrep -P "$NGINX_PID" | wc -l) workers): upstream $UP_URL (access log $UP_LOG), direct $DIRECT_URL (no log)"

up_requests() { wc -l <"$UP_LOG"; }
# up_summary FROM TO: "N (200: a, 304: b)", the upstream requests logged between two counts.
up_summary() {
    sed -n "$(($1 + 1)),$2p" "$UP_LOG" | awk -v n=$(($2 - $1)) '{c[$1]++}
        END {s = ""; for (k in c) s = s (s == "" ? "" : ", ") k ": " c[k]; printf "%d%s\n", n, (s == "" ? "" : " (" s ")")}'
}

# ---------------------------------------------------------------------------------------------
machine_info
# Wait a little for a quiet machine (at most 2 min, then measure anyway, with a warning), and
# 61 s after the previous run deleted its folders.
wait_for_quiet 1.5 120 10
wait_since_deleted "$WORK/deleted-at"
LOAD_BEFORE=$(loadavg)
warn_if_busy 1.0 "hexrepo, nginx and curl share $CPUS CPUs with whatever else runs"

# How long one durable write takes on this filesystem: hexrepo's local store makes every file
# it writes durable with a syncfs and a sync of its folder (under the store lock), so this sets
# the pace of a sync and of every lazy miss. 100 times: write 28 KiB (an average tarball),
# syncfs, rename, fsync the folder. Context only; skipped without python3.
flush_probe() {
    python3 - "$1" <<'PY' 2>/dev/null || echo "n/a n/a"
import ctypes, os, statistics, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
data, syncfs, total = os.urandom(28 * 1024), [], []
import time
for i in range(100):
    t0 = time.perf_counter()
    tmp = os.path.join(d, "probe-%d.tmp" % i)
    with open(tmp, "wb") as f:
        f.write(data)
    fd = os.open(tmp, os.O_RDONLY)
    t1 = time.perf_counter()
    libc.syncfs(fd)
    t2 = time.perf_counter()
    os.close(fd)
    os.rename(tmp, os.path.join(d, "probe-%d" % i))
    dfd = os.open(d, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    t3 = time.perf_counter()
    syncfs.append((t2 - t1) * 1000)
    total.append((t3 - t0) * 1000)
print("%.2f %.2f" % (statistics.median(syncfs), statistics.median(total)))
PY
}
read -r FLUSH_SYNCFS FLUSH_TOTAL < <(flush_probe "$MIRRORS/flush-probe")
echo "durable write on this filesystem (100 probes): syncfs median $FLUSH_SYNCFS ms; write + syncfs + rename + folder fsync median $FLUSH_TOTAL ms"

# ---------------------------------------------------------------------------------------------
SYNC_ARGS=(mirror sync --upstream-url "$UP_URL" --upstream-name "$UPSTREAM_NAME"
    --upstream-public-key "$UPSTREAM/public_key" --jobs "$JOBS" --public-dir "$RUN/no-private-repository")
hexrepo_env # HEXREPO_ENV_ARGS: the environment hexrepo_cmd gives hexrepo (bench/lib.sh)
# timed KEY OUT CMD...: runs CMD under /usr/bin/time -v, output in OUT; appends wall seconds,
# CPU seconds and peak RSS (MiB) to $RUN/KEY.{wall,cpu,rss}; UPSTREAM_REQS[KEY]: the upstream
# requests it made.
declare -A UPSTREAM_REQS
timed() {
    local key=$1 out=$2 t0 t1 m0 m1 rc=0
    shift 2
    # Nothing dirty left by the previous step: the syncfs calls of a sync would write it.
    sync -f "$MIRRORS"
    m0=$(up_requests)
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$RUN/time-v.txt" "$@" >"$out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    m1=$(up_requests)
    ((rc == 0)) || die "$* failed (status $rc): $(tail -n 5 "$out")"
    awk -v d=$((t1 - t0)) 'BEGIN {printf "%.3f\n", d / 1e9}' >>"$RUN/$key.wall"
    awk -v u="$(time_v "$RUN/time-v.txt" "User time")" -v s="$(time_v "$RUN/time-v.txt" "System time")" \
        'BEGIN {printf "%.2f\n", u + s}' >>"$RUN/$key.cpu"
    awk -v k="$(time_v "$RUN/time-v.txt" "Maximum resident set size")" 'BEGIN {printf "%.1f\n", k / 1024}' >>"$RUN/$key.rss"
    UPSTREAM_REQS[$key]=$(up_summary "$m0" "$m1")
    printf '  %-7s %7.2f s wall, %6.2f s CPU, peak RSS %6.1f MiB, upstream requests %s\n' "$key" \
        "$(tail -n 1 "$RUN/$key.wall")" "$(tail -n 1 "$RUN/$key.cpu")" "$(tail -n 1 "$RUN/$key.rss")" "$(up_summary "$m0" "$m1")"
}
# same_key PEM PEM: both files hold the same public key, whatever their PEM encoding.
same_key() {
    local a b
    a=$(openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | sha256sum) &&
        b=$(openssl pkey -pubin -in "$2" -outform DER 2>/dev/null | sha256sum) && [[ $a == "$b" ]]
}
# A sync's own summary line, checked: everything fetched (or skipped on a re-run), nothing failed.
check_sync() { # check_sync OUT FETCHED SKIPPED
    local line
    line=$(grep -E '^[0-9]+ packages mirrored; ' "$1" | tail -n 1)
    [[ $line == "$CORPUS_PACKAGES packages mirrored; tarballs: $2 fetched, $3 skipped"*"; 0 failed"* ]] ||
        die "unexpected summary from hexrepo mirror sync: ${line:-none}: $(tail -n 5 "$1")"
    echo "          $line"
}
# The curl baseline: one process, JOBS parallel transfers, keep-alive, files written as the
# mirror would lay them out.
CURL_CFG=$RUN/curl.cfg
{
    while read -r p; do printf 'url = "%s/%s"\noutput = "%s"\n' "$UP_URL" "$p" "$p"; done <"$WORK/paths.txt"
} >"$CURL_CFG"
CURL_CMD=(curl -sS --fail -Z --parallel-max "$JOBS" --parallel-immediate --create-dirs -K "$CURL_CFG")

say "eager: $RUNS x (hexrepo mirror sync into an empty folder, then curl of the same $NPATHS files)"
for ((i = 1; i <= RUNS; i++)); do
    echo "-- run $i"
    timed sync "$MIRRORS/sync-$i.out" env -C "$RUN" "${HEXREPO_ENV_ARGS[@]}" "$BIN" "${SYNC_ARGS[@]}" \
        --mirror-storage "$MIRRORS/sync-$i"
    check_sync "$MIRRORS/sync-$i.out" "$CORPUS_TARBALLS" 0
    mkdir -p "$MIRRORS/curl-$i"
    timed curl "$RUN/curl.out" env -C "$MIRRORS/curl-$i" "${CURL_CMD[@]}"
    # The same files made durable: one sync -f after curl (hexrepo syncs as it goes).
    t0=$(date +%s%N)
    sync -f "$MIRRORS/curl-$i"
    t1=$(date +%s%N)
    awk -v c="$(tail -n 1 "$RUN/curl.wall")" -v d=$((t1 - t0)) 'BEGIN {printf "%.3f\n", c + d / 1e9}' >>"$RUN/durable.wall"
    echo "          then sync -f: $(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e9}') s"
    nfiles=$(find "$MIRRORS/curl-$i" -type f | wc -l)
    [[ $nfiles == "$NPATHS" && ${UPSTREAM_REQS[curl]} == "$NPATHS (200: $NPATHS)" ]] ||
        die "curl wrote $nfiles files of $NPATHS; upstream answered ${UPSTREAM_REQS[curl]}: $(tail -n 3 "$RUN/curl.out")"
    if ((i == 1)); then
        # public_key is the one file a mirror writes itself (from --upstream-public-key, as
        # SubjectPublicKeyInfo PEM; `hexrepo build` writes PKCS#1): the same key is enough.
        diff -r -x .hexrepo -x public_key "$UPSTREAM" "$MIRRORS/sync-1" >"$RUN/diff.txt" 2>&1 ||
            die "the mirror differs from the upstream: $(head -n 5 "$RUN/diff.txt")"
        same_key "$UPSTREAM/public_key" "$MIRRORS/sync-1/public_key" ||
            die "the mirror's public_key is not the upstream's key"
        echo "          diff -r upstream mirror: identical ($(find "$MIRRORS/sync-1" -path '*/.hexrepo' -prune -o -type f -print | wc -l) files; .hexrepo/ left out, public_key the same key$(
            cmp -s "$UPSTREAM/public_key" "$MIRRORS/sync-1/public_key" || echo ' in another PEM encoding'))"
    fi
done
echo "-- re-runs on the complete mirror $MIRRORS/sync-1"
for ((i = 1; i <= RUNS; i++)); do
    timed rerun "$MIRRORS/rerun-$i.out" env -C "$RUN" "${HEXREPO_ENV_ARGS[@]}" "$BIN" "${SYNC_ARGS[@]}" \
        --mirror-storage "$MIRRORS/sync-1"
    check_sync "$MIRRORS/rerun-$i.out" 0 "$CORPUS_TARBALLS"
done
LOAD_EAGER=$(loadavg)

# ---------------------------------------------------------------------------------------------
say "lazy: hexrepo serve --mirror on an empty mirror folder"
LAZY=$MIRRORS/lazy
LAZY_LOG=$WORK/lazy-access.log
start_hexrepo LAZY_PID LAZY_PORT "$LAZY_LOG" --public-dir "$MIRRORS/private/public" --private-key "$KEY" \
    --name "$PRIVATE_NAME" --log-format text --cache-mib 16 --mirror --mirror-mode lazy \
    --upstream-url "$UP_URL" --upstream-name "$UPSTREAM_NAME" --upstream-public-key "$UPSTREAM/public_key" \
    --mirror-storage "$LAZY"
LAZY_URL=http://127.0.0.1:$LAZY_PORT$MIRROR_PREFIX
grep -q "^mirror of \"$UPSTREAM_NAME\" .*, lazy " "$LAZY_LOG.out" || die "hexrepo serve did not start a lazy mirror: $(cat "$LAZY_LOG.out")"
echo "hexrepo serve (pid $LAZY_PID): $LAZY_URL, access log $LAZY_LOG"
echo "  $(grep '^mirror of' "$LAZY_LOG.out")"

# The files: set A is FILES packages spread over the corpus, set B the package after each.
# Release k % 5 of each, so tarballs of every size are asked for.
STEP=$((CORPUS_PACKAGES / FILES))
A_PKG=() A_TAR=() B_TAR=()
release_of() { # release_of NAME K: the path of release K % 5 of NAME
    local versions
    mapfile -t versions < <(cd "$UPSTREAM/tarballs" && printf '%s\n' "$1"-*.tar | sort -V)
    echo "tarballs/${versions[$(($2 % ${#versions[@]}))]}"
}
for ((k = 0; k < FILES; k++)); do
    a=$(printf 'pkg_%05d' $((1 + k * STEP))) b=$(printf 'pkg_%05d' $((2 + k * STEP)))
    A_PKG+=("packages/$a") A_TAR+=("$(release_of "$a" "$k")") B_TAR+=("$(release_of "$b" "$k")")
done
KINDS=(pkg tar tarcold)
declare -A KIND_LABEL=([pkg]="packages/NAME" [tar]="tarball, packages/NAME stored" [tarcold]="tarball, packages/NAME not stored")

# fetch_list KEY BASE PATH...: one curl, keep-alive, one request after the other; each answer
# must be 200 with the upstream file's size. Sets LAT_MED[KEY] and LAT_P99[KEY] (ms) and
# UPSTREAM_REQS[KEY] (the upstream requests meanwhile).
declare -A LAT_MED LAT_P99
fetch_list() {
    local key=$1 base=$2 cfg=$RUN/$1.cfg p m0 m1 med p99 bad
    shift 2
    : >"$cfg"
    for p in "$@"; do
        [[ -s $cfg ]] && echo next >>"$cfg"
        printf 'url = "%s/%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%{time_total} %%{size_download} %s\\n"\n' \
            "$base" "$p" "$p" >>"$cfg"
    done
    m0=$(up_requests)
    curl -s --max-time 30 -K "$cfg" >"$RUN/$key.txt" || true
    m1=$(up_requests)
    cp "$RUN/$key.txt" "$WORK/curl-$key.txt"
    bad=$(while read -r code _ size path; do
        [[ $code == 200 && $size == "$(stat -c %s "$UPSTREAM/$path")" ]] || echo "$code $size $path"
    done <"$RUN/$key.txt")
    [[ $(wc -l <"$RUN/$key.txt") -eq $# && -z $bad ]] ||
        die "$key: not $# answers of 200 with the upstream's sizes: $(head -n 3 <<<"$bad")"
    read -r med p99 _ _ < <(awk '{print $2}' "$RUN/$key.txt" | stats - 1000)
    LAT_MED[$key]=$med LAT_P99[$key]=$p99 UPSTREAM_REQS[$key]=$(up_summary "$m0" "$m1")
    printf '  %-50s median %7.2f ms, p99 %7.2f ms; upstream requests %s\n' "$key: ${KIND_LABEL[${key#*_}]}" "$med" "$p99" "$(up_summary "$m0" "$m1")"
}
# user and system clock ticks of a process
ticks_us() { awk '{print $14, $15}' "/proc/$1/stat"; }
read -r u0 s0 < <(ticks_us "$LAZY_PID")
for phase in cold warm direct; do
    echo "-- $phase: $FILES files of each kind, one curl, sequential"
    base=$LAZY_URL
    [[ $phase == direct ]] && base=$DIRECT_URL
    for kind in "${KINDS[@]}"; do
        case $kind in
            pkg) list=("${A_PKG[@]}") ;;
            tar) list=("${A_TAR[@]}") ;;
            tarcold) list=("${B_TAR[@]}") ;;
        esac
        fetch_list "${phase}_$kind" "$base" "${list[@]}"
    done
    if [[ $phase == cold ]]; then
        read -r u1 s1 < <(ticks_us "$LAZY_PID")
        COLD_CPU=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$TICKS" -v n=$((3 * FILES)) \
            'BEGIN {k = 1000 / hz / n; printf "%.2f ms (user %.2f, system %.2f)", (u + s) * k, u * k, s * k}')
    fi
done

# Every file the lazy mirror stored is the upstream's, byte for byte.
STORED=0
while read -r f; do
    cmp -s "$LAZY/$f" "$UPSTREAM/$f" || die "the lazy mirror's $f differs from the upstream's"
    STORED=$((STORED + 1))
done < <(cd "$LAZY" && find . -path ./.hexrepo -prune -o -type f ! -name public_key -print | sed 's|^\./||')
echo "checked: the $STORED files the lazy mirror stored equal the upstream's"

# ---------------------------------------------------------------------------------------------
HOT_TAR=$(cd "$UPSTREAM/tarballs" && printf '%s\n' "$HOT_PACKAGE"-*.tar | sort -V | head -n 1)
ENDPOINTS=("packages/$HOT_PACKAGE" "tarballs/$HOT_TAR")
EP_KEYS=(packages tarball)
say "throughput: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency after a 1 s warm-up, warm mirror against nginx"
for ep in "${ENDPOINTS[@]}"; do # into the mirror first
    curl -fsS "$LAZY_URL/$ep" -o "$RUN/body" || die "GET $LAZY_URL/$ep failed"
    cmp -s "$RUN/body" "$UPSTREAM/$ep" || die "GET $LAZY_URL/$ep: body differs from the upstream's"
done
# bench KEY URL CPU_PID: sets W_RPS[KEY], W_P99[KEY] (ms), W_CPU[KEY] (server CPU µs/request).
declare -A W_RPS W_P99 W_CPU
WARNINGS=()
bench() {
    local key=$1 url=$2 pid=$3 out c0 c1 m0 m1 rps p99 errors
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$url" >/dev/null
    c0=$(cpu_ticks "$pid") m0=$(up_requests)
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url")
    c1=$(cpu_ticks "$pid") m1=$(up_requests)
    printf '%s\n' "$out" >"$WORK/wrk-$key.txt"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(wrk_ms "$out" 99% 2)
    [[ -n $rps && -n $p99 ]] || die "cannot parse wrk output for $key: $out"
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' || true)
    if [[ -n $errors ]]; then
        echo "  WARNING $key: $errors"
        WARNINGS+=("$key: $errors")
    fi
    W_RPS[$key]=$rps W_P99[$key]=$p99
    W_CPU[$key]=$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v r="$rps" -v d="$DURATION" 'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}')
    printf '  %-18s %9.0f req/s   p99 %8.3f ms   server CPU %6.1f us/req   upstream requests %s\n' \
        "$key" "$rps" "$p99" "${W_CPU[$key]}" "$(up_summary "$m0" "$m1")"
}
for i in "${!ENDPOINTS[@]}"; do
    echo "-- GET ${ENDPOINTS[$i]}"
    bench "mirror_${EP_KEYS[$i]}" "$LAZY_URL/${ENDPOINTS[$i]}" "$LAZY_PID"
    bench "nginx_${EP_KEYS[$i]}" "$DIRECT_URL/${ENDPOINTS[$i]}" "$NGINX_PID"
done
LAZY_HWM=$(vm_mib "$LAZY_PID" VmHWM)
LOAD_AFTER=$(loadavg)
stop_pid "$LAZY_PID" # graceful: flushes the access log
N5=$(grep -c 'status=5[0-9][0-9]' "$LAZY_LOG" || true)
NW=$(grep -cE '^\S+\s+(WARN|ERROR)' "$LAZY_LOG" || true)
if ((N5 + NW > 0)); then
    WARNINGS+=("lazy mirror: $N5 answers 5xx, $NW WARN/ERROR log lines in $LAZY_LOG")
fi

# The previous runs' folders go now, after the measurements.
if compgen -G "$WORK/trash.*" >/dev/null; then
    rm -rf "$WORK"/trash.*
    mark_deleted "$WORK/deleted-at"
fi

# ---------------------------------------------------------------------------------------------
say "summary: hexrepo mirror of an upstream of $NPACKAGES packages / $NTARBALLS releases ($UPSTREAM_MB MB) served by nginx on 127.0.0.1, $CPUS CPUs, $("$BIN" --version)"
# med KEY SUFFIX: the median of $RUN/KEY.SUFFIX; range KEY SUFFIX: "min-max".
med() { read -r m _ _ _ < <(stats "$RUN/$1.$2" 1 "${3:-2}") && echo "$m"; }
range() { read -r _ _ lo hi < <(stats "$RUN/$1.$2" 1 "${3:-2}") && echo "$lo-$hi"; }
echo "eager: medians of $RUNS runs"
fmt='%-46s | %9s | %13s | %9s | %10s | %s\n'
printf "$fmt" case wall min-max "CPU" "peak RSS" "upstream requests (last run)"
printf '%s\n' "-----------------------------------------------+-----------+---------------+-----------+------------+-----------------------------"
printf "$fmt" "hexrepo mirror sync --jobs $JOBS, empty mirror" "$(med sync wall) s" "$(range sync wall) s" "$(med sync cpu) s" "$(med sync rss 1) MiB" "${UPSTREAM_REQS[sync]}"
printf "$fmt" "hexrepo mirror sync, complete mirror (re-run)" "$(med rerun wall) s" "$(range rerun wall) s" "$(med rerun cpu) s" "$(med rerun rss 1) MiB" "${UPSTREAM_REQS[rerun]}"
printf "$fmt" "curl -Z --parallel-max $JOBS, the same $NPATHS files" "$(med curl wall) s" "$(range curl wall) s" "$(med curl cpu) s" "$(med curl rss 1) MiB" "${UPSTREAM_REQS[curl]}"
printf "$fmt" "the same curl, then one sync -f" "$(med durable wall) s" "$(range durable wall) s" - - -
SYNC_MED=$(med sync wall) CURL_MED=$(med curl wall)
printf 'sync / curl: %s; sync throughput %s MB/s, %s files/s; curl %s MB/s\n' \
    "$(awk -v a="$SYNC_MED" -v b="$CURL_MED" 'BEGIN {printf "%.1fx", a / b}')" \
    "$(awk -v m="$UPSTREAM_MB" -v s="$SYNC_MED" 'BEGIN {printf "%.1f", m / s}')" \
    "$(awk -v n="$NPATHS" -v s="$SYNC_MED" 'BEGIN {printf "%.0f", n / s}')" \
    "$(awk -v m="$UPSTREAM_MB" -v s="$CURL_MED" 'BEGIN {printf "%.1f", m / s}')"
awk -v w="$SYNC_MED" -v c="$(med sync cpu)" -v n="$NPATHS" -v cpus="$CPUS" -v f="$FLUSH_TOTAL" 'BEGIN {
    printf "sync CPU is %.0f%% of its wall time on %d CPUs; wall per file %.2f ms (the durable write probe: %s ms)\n", 100 * c / w, cpus, 1000 * w / n, f}'
echo "the first mirror equals the upstream byte for byte (diff -r; .hexrepo/ left out), public_key the same key$(
    cmp -s "$UPSTREAM/public_key" "$MIRRORS/sync-1/public_key" || echo ' in another PEM encoding (SubjectPublicKeyInfo; the upstream has PKCS#1)')"
echo
echo "lazy: one curl with keep-alive, $FILES distinct files of each kind, one after the other; median / p99 of time_total"
fmt='%-36s | %19s | %19s | %19s | %s\n'
printf "$fmt" "file" "cold (miss)" "warm (stored)" "nginx direct" "upstream requests cold; warm"
printf '%s\n' "-------------------------------------+---------------------+---------------------+---------------------+-----------------------------"
for kind in "${KINDS[@]}"; do
    cells=()
    for phase in cold warm direct; do
        cells+=("$(printf '%.2f / %.2f ms' "${LAT_MED[${phase}_$kind]}" "${LAT_P99[${phase}_$kind]}")")
    done
    printf "$fmt" "${KIND_LABEL[$kind]}" "${cells[@]}" "${UPSTREAM_REQS[cold_$kind]}; ${UPSTREAM_REQS[warm_$kind]}"
done
echo "server CPU per cold request: $COLD_CPU, the three kinds together"
echo "durable write on this filesystem before the run: syncfs median $FLUSH_SYNCFS ms; write + syncfs + rename + folder fsync median $FLUSH_TOTAL ms"
echo
echo "throughput: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, hot files, warm mirror"
fmt='%-44s | %13s | %11s | %11s | %10s | %9s | %s\n'
printf "$fmt" endpoint "mirror req/s" "mirror p99" "nginx req/s" "nginx p99" "ratio" "CPU us/req mirror, nginx"
printf '%s\n' "---------------------------------------------+---------------+-------------+-------------+------------+-----------+--------------------------"
for i in "${!ENDPOINTS[@]}"; do
    k=${EP_KEYS[$i]}
    mr=${W_RPS[mirror_$k]} nr=${W_RPS[nginx_$k]} mp=${W_P99[mirror_$k]} np=${W_P99[nginx_$k]}
    mc=${W_CPU[mirror_$k]} nc=${W_CPU[nginx_$k]}
    printf "$fmt" "$MIRROR_PREFIX/${ENDPOINTS[$i]}" "$(printf '%.0f' "$mr")" "$(printf '%.2f ms' "$mp")" \
        "$(printf '%.0f' "$nr")" "$(printf '%.2f ms' "$np")" "$(awk -v a="$mr" -v b="$nr" 'BEGIN {printf "%.2fx", a / b}')" "$mc, $nc"
done
echo "lazy mirror peak RSS (VmHWM over its run): $LAZY_HWM MiB"
echo
echo "commands:"
echo "  upstream:  $BIN build $UPSTREAM --name $UPSTREAM_NAME --private-key $UPSTREAM_KEY; nginx $NGINX_VERSION (worker_processes auto, sendfile, etag)"
echo "  eager:     $BIN ${SYNC_ARGS[*]} --mirror-storage EMPTY_DIR"
echo "  baseline:  (cd EMPTY_DIR && ${CURL_CMD[*]})   # url/output pairs of the $NPATHS paths"
echo "  lazy:      $BIN serve --bind 127.0.0.1 --port 0 --public-dir DIR --private-key KEY --name $PRIVATE_NAME --log-format text --cache-mib 16 --mirror --mirror-mode lazy --upstream-url $UP_URL --upstream-name $UPSTREAM_NAME --upstream-public-key $UPSTREAM/public_key --mirror-storage EMPTY_DIR"
echo "  latency:   curl -s -K CONFIG (one connection, sequential), write-out %{time_total}; $CURL_VERSION"
echo "  throughput: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency; $WRK_VERSION"
echo "load average before measuring: $LOAD_BEFORE; after the eager part: $LOAD_EAGER; at the end: $LOAD_AFTER; run took $(($(date +%s) - T_START)) s"
echo "raw: $WORK/curl-*.txt, $WORK/wrk-*.txt, sync outputs $MIRRORS/*.out, access logs $UP_LOG $LAZY_LOG"
if ((${#WARNINGS[@]})); then
    echo "warnings:"
    printf '  %s\n' "${WARNINGS[@]}"
fi
exit 0
