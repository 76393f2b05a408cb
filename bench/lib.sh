# shellcheck shell=bash
# The setup every bench script repeats, sourced by them (see bench/README.md); not run alone.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# On sourcing: ROOT is the repository root and the working directory, BENCH_CORPUS the shared
# corpus cache (target/bench-corpus). The functions below, by step:
#   messages       say, die
#   tools          need_apt (install with apt when missing and root), need_tool (or die)
#   binary         build_release DEST: cargo build --release -p hexrepo, frozen into DEST ($BIN)
#   corpus         ensure_corpus: the gen-corpus 1000 5 cache; ensure_key: the signing key
#   machine        machine_info, load1, loadavg, warn_if_busy, wait_for_quiet,
#                  mark_deleted and wait_since_deleted (ext4's 60 s after deleting files)
#   processes      bench_run_dir NAME: a temporary folder ($RUN) and the exit trap that stops
#                  every process registered with track_pid; stop_pid; free_port
#   servers        start_hexrepo, hexrepo_cmd, start_nginx, await_output
#   numbers        stats, cpu_ticks, vm_mib, time_v, wrk_ms
# Every function dies with "bench: ..." when it cannot do its job, so a script exits non-zero
# only when it cannot run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BENCH_CORPUS=$ROOT/target/bench-corpus

say() { printf '\n== %s\n' "$*"; }
die() { echo "bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools

# need_apt COMMAND PACKAGE...: true if COMMAND is there, after installing PACKAGE... with apt
# when it is missing and we are root. /usr/sbin counts: nginx lives there.
need_apt() {
    PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null && return 0
    echo "$1 not found; installing ${*:2}"
    if [[ $(id -u) == 0 ]]; then
        apt-get install -y "${@:2}" >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 && apt-get install -y "${@:2}" >/dev/null 2>&1; } || true
    fi
    PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null
}

# need_tool COMMAND PACKAGE...: need_apt, or die naming the package.
need_tool() { need_apt "$@" || die "$1 not found (apt-get install -y ${*:2})"; }

# ---------------------------------------------------------------------------------------------
# The binary

# build_release DEST: builds the release binary and copies it to DEST, so a rebuild elsewhere
# during the run cannot change what is measured. Sets BIN=DEST and BIN_BUILT (where cargo put
# it: honours CARGO_TARGET_DIR and cargo's config).
build_release() {
    say "release build"
    local built
    built=$(cargo build --release -p hexrepo --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\/hexrepo\)".*/\1/p' | tail -n 1) || die "cargo build --release -p hexrepo failed"
    [[ -x $built ]] || built=${CARGO_TARGET_DIR:-$ROOT/target}/release/hexrepo
    [[ -x $built ]] || die "cargo built no hexrepo binary that this script can find"
    mkdir -p "$(dirname "$1")"
    cp -f "$built" "$1.tmp" && mv -f "$1.tmp" "$1"
    BIN=$1 BIN_BUILT=$built
    echo "frozen copy of $BIN_BUILT: $BIN"
}

# ---------------------------------------------------------------------------------------------
# The corpus and the key

count_tars() { find "$1" -maxdepth 1 -name '*.tar' -type f 2>/dev/null | wc -l; }

# ensure_corpus: BENCH_CORPUS/tarballs holds `tools/gen-corpus DIR 1000 5` (5,000 tarballs,
# ~138 MB). Kept while it has 5,000 tarballs; otherwise taken from HEXREPO_BENCH_CORPUS (a
# folder of the same 5,000 tarballs: hard links, or a copy across filesystems) or generated
# (a few minutes; needs rebar3, installed with apt if missing). Filled in a temporary folder
# and renamed, so two scripts started at once never see half a corpus.
CORPUS_PACKAGES=1000 CORPUS_VERSIONS=5 CORPUS_TARBALLS=5000
ensure_corpus() {
    say "corpus"
    local dir=$BENCH_CORPUS/tarballs tmp src=${HEXREPO_BENCH_CORPUS:-}
    if [[ $(count_tars "$dir") -ne $CORPUS_TARBALLS ]]; then
        mkdir -p "$BENCH_CORPUS"
        tmp=$(mktemp -d "$BENCH_CORPUS/tarballs.tmp.XXXXXX")
        if [[ -n $src && $(count_tars "$src") -eq $CORPUS_TARBALLS ]]; then
            echo "taking the corpus from $src"
            if ! cp -al "$src"/*.tar "$tmp/" 2>/dev/null; then
                # Start again from empty: a copy onto a hard link would write into $src.
                find "$tmp" -mindepth 1 -delete
                cp -a "$src"/*.tar "$tmp/"
            fi
        else
            [[ -z $src ]] || echo "HEXREPO_BENCH_CORPUS=$src does not hold $CORPUS_TARBALLS tarballs; generating"
            need_apt rebar3 erlang-base rebar3 || true
            echo "generating: tools/gen-corpus $dir $CORPUS_PACKAGES $CORPUS_VERSIONS (takes a while)"
            tools/gen-corpus "$tmp" "$CORPUS_PACKAGES" "$CORPUS_VERSIONS"
        fi
        [[ $(count_tars "$tmp") -eq $CORPUS_TARBALLS ]] || die "corpus does not have $CORPUS_TARBALLS tarballs"
        if [[ $(count_tars "$dir") -ne $CORPUS_TARBALLS ]]; then
            rm -rf "$dir"
            mv "$tmp" "$dir"
        else
            rm -rf "$tmp" # another bench script finished one meanwhile
        fi
    fi
    echo "$(count_tars "$dir") tarballs, $(du -sh "$dir" | cut -f1) in $dir"
}

# ensure_key: KEY is the shared 2048-bit signing key (BENCH_CORPUS/private_key.pem), made with
# `hexrepo keygen` the first time. Needs BIN.
ensure_key() {
    KEY=$BENCH_CORPUS/private_key.pem
    if [[ ! -s $KEY ]]; then
        mkdir -p "$BENCH_CORPUS"
        "$BIN" keygen --out "$KEY" >/dev/null || die "hexrepo keygen --out $KEY failed"
    fi
}

# ---------------------------------------------------------------------------------------------
# The machine

load1() { cut -d' ' -f1 /proc/loadavg; } # what uptime prints first
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a > b)}'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= b)}'; }

# machine_info: CPUs, the binary and the source it was built from. Sets CPUS.
machine_info() {
    say "machine"
    CPUS=$(nproc)
    echo "CPUs: $CPUS ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
    echo "binary: $("$BIN" --version) ($BIN_BUILT, sha256 $(sha256sum "$BIN" | cut -c1-12))"
    echo "source: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(
        [[ -n $(GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null) ]] &&
            echo " + uncommitted changes (git diff HEAD sha256 $(git diff HEAD 2>/dev/null | sha256sum | cut -c1-12))")"
}

# warn_if_busy LIMIT WHY: prints the load averages, and a WARNING (ending with WHY) when the
# 1-minute one is above LIMIT.
warn_if_busy() {
    echo "load average before measuring: $(loadavg) (should be near 0)"
    if gt "$(load1)" "$1"; then echo "WARNING: the machine is busy (load average above $1); $2"; fi
    return 0
}

# wait_for_quiet MAX_LOAD MAX_WAIT_S STEP_S: waits until the 1-minute load average is below
# MAX_LOAD, checking every STEP_S seconds; after MAX_WAIT_S prints a WARNING and returns.
wait_for_quiet() {
    local waited=0
    while ge "$(load1)" "$1"; do
        if ((waited >= $2)); then
            echo "WARNING: load average still $(load1) after $2 s of waiting; measuring anyway (latencies will be inflated)"
            return 0
        fi
        echo "load average $(load1) >= $1: waiting ($(uptime | sed 's/.*load average/load average/'))"
        sleep "$3"
        waited=$((waited + $3))
    done
}

# Deleting many files slows creating files for 60 s: this root filesystem is ext4 without a
# journal, where creating a file skips every inode deleted in the last 60 s, checking each one
# (`recently_deleted()` in the kernel's inode allocator). So a script renames what it must
# delete, deletes it after measuring, notes when (mark_deleted STAMP_FILE), and the next run
# waits (wait_since_deleted STAMP_FILE) until 61 s have passed.
mark_deleted() { date +%s >"$1"; }
wait_since_deleted() {
    local wait_s
    [[ -f $1 ]] || return 0
    wait_s=$(($(cat "$1") + 61 - $(date +%s)))
    if ((wait_s > 0)); then
        echo "waiting ${wait_s} s: a previous run deleted files less than 61 s ago (ext4 inode allocator)"
        sleep "$wait_s"
    fi
}

# ---------------------------------------------------------------------------------------------
# Processes

# bench_run_dir NAME: RUN, a temporary folder removed on exit, and the exit trap: every process
# registered with track_pid is signalled (newest first) and waited for, then BENCH_CLEANUP (a
# function name, optional) runs.
BENCH_PIDS=()
bench_run_dir() {
    RUN=$(mktemp -d "${TMPDIR:-/tmp}/hexrepo-bench-$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM HUP
}
bench_cleanup() {
    set +e # stop everything, whatever fails
    local i entry
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        entry=${BENCH_PIDS[$i]}
        kill -"${entry#*:}" "${entry%%:*}" 2>/dev/null
    done
    for entry in "${BENCH_PIDS[@]}"; do wait "${entry%%:*}" 2>/dev/null; done
    BENCH_PIDS=()
    [[ -n ${BENCH_CLEANUP:-} ]] && "$BENCH_CLEANUP"
    [[ -n ${RUN:-} ]] && rm -rf "$RUN"
}

# track_pid PID [SIGNAL]: stop PID with SIGNAL (default TERM) on exit.
track_pid() { BENCH_PIDS+=("$1:${2:-TERM}"); }

# stop_pid PID: sends its registered signal now, waits for it, and forgets it.
stop_pid() {
    local entry kept=() sig=TERM
    for entry in "${BENCH_PIDS[@]}"; do
        if [[ ${entry%%:*} == "$1" ]]; then sig=${entry#*:}; else kept+=("$entry"); fi
    done
    BENCH_PIDS=("${kept[@]}")
    kill -"$sig" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
        echo $((20000 + RANDOM % 40000))
}

# ---------------------------------------------------------------------------------------------
# Servers

# The environment of every hexrepo process: without the variables that would override what a
# script sets with flags or pick up a config file (every HEXREPO_*, the guide's names, RUST_LOG),
# plus HEX_ENV (e.g. the AWS_* variables of an S3 run).
HEX_ENV=()
hexrepo_env() {
    local v
    HEXREPO_ENV_ARGS=(-u PORT -u PUBLIC_DIR -u AUTH_USERNAME -u AUTH_PASSWORD -u RUST_LOG -u AWS_SESSION_TOKEN -u AWS_PROFILE)
    for v in $(compgen -e); do [[ $v != HEXREPO_* ]] || HEXREPO_ENV_ARGS+=(-u "$v"); done
}

# hexrepo_cmd ARGS...: runs `$BIN ARGS...` in that environment from $RUN (so no ./hexrepo.toml
# is read); with CMD_TIMEOUT set, stopped after that many seconds.
hexrepo_cmd() {
    local pre=()
    [[ -z ${CMD_TIMEOUT:-} ]] || pre=(timeout "$CMD_TIMEOUT")
    hexrepo_env
    (cd "$RUN" && exec "${pre[@]}" env "${HEXREPO_ENV_ARGS[@]}" "${HEX_ENV[@]}" "$BIN" "$@")
}

# start_hexrepo VAR_PID VAR_PORT LOG [NAME=VALUE... --] SERVE_ARGS...: starts
# `hexrepo serve --bind 127.0.0.1 --port 0 SERVE_ARGS...` (in that environment plus NAME=VALUE...,
# from $RUN), stdout in LOG.out and stderr (the access log) in LOG, reads the port from its
# banner, and registers it to be stopped on exit.
start_hexrepo() {
    local var_pid=$1 var_port=$2 log=$3 pid port='' extra=()
    shift 3
    local a
    for a in "$@"; do
        if [[ $a == -- ]]; then
            while [[ $1 != -- ]]; do extra+=("$1"); shift; done
            shift
            break
        fi
    done
    # A previous run's output would give its port before this server writes its own.
    rm -f "$log" "$log.out"
    hexrepo_env
    (cd "$RUN" && exec env "${HEXREPO_ENV_ARGS[@]}" "${HEX_ENV[@]}" "${extra[@]}" "$BIN" serve \
        --bind 127.0.0.1 --port 0 "$@" >"$log.out" 2>"$log") &
    pid=$!
    track_pid "$pid"
    port=$(await_output "$pid" "$log.out" 's|^hexrepo serving .* at http://127\.0\.0\.1:\([0-9]*\)$|\1|p')
    [[ -n $port ]] || die "hexrepo serve $* did not start: $(cat "$log.out" "$log")"
    printf -v "$var_pid" %s "$pid"
    printf -v "$var_port" %s "$port"
}

# await_output PID FILE SED_SCRIPT: prints what `sed -n SED_SCRIPT FILE` gives once it gives
# something (a started server's address or port), polling for up to 20 s; prints nothing when
# the process PID exits first or time runs out.
await_output() {
    local pid=$1 file=$2 script=$3 found=''
    for _ in $(seq 1 200); do
        found=$(sed -n "$script" "$file" 2>/dev/null)
        [[ -n $found ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    printf '%s' "$found"
}

# start_nginx HTTP_BLOCK: Debian's nginx (NGINX) with its own prefix, conf, pid file and temp
# paths under $RUN/nginx, `worker_processes auto`, workers as root when we are root (to read
# 0700 folders), and in `http {}`: `access_log off; sendfile on; etag on;`, every file
# application/octet-stream, then HTTP_BLOCK (the servers). Sets NGINX_PID (stopped gracefully
# with QUIT on exit) and NGINX_VERSION.
start_nginx() {
    NGINX=$(PATH=$PATH:/usr/sbin:/sbin command -v nginx) || die "nginx not found (apt-get install -y nginx-light)"
    # shellcheck disable=SC2034 # for the scripts' reports
    NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
    local dir=$RUN/nginx built temp_paths m user_line=
    mkdir -p "$dir/logs" "$dir/tmp"
    built=$("$NGINX" -V 2>&1)
    temp_paths="client_body_temp_path $dir/tmp/body;"
    for m in proxy fastcgi uwsgi scgi; do
        case $built in *"--without-http_${m}_module"*) ;; *) temp_paths+=" ${m}_temp_path $dir/tmp/$m;" ;; esac
    done
    [[ $(id -u) == 0 ]] && user_line="user root root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  $temp_paths
  access_log off;
  types { }
  default_type application/octet-stream;
  sendfile on;
  etag on;
  server_tokens off;
$1
}
EOF
    "$NGINX" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
    NGINX_PID=$!
    track_pid "$NGINX_PID" QUIT # graceful: the master stops its workers
    for _ in $(seq 1 100); do [[ -s $dir/nginx.pid ]] && break; kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    [[ -s $dir/nginx.pid ]] || die "nginx did not start: $(cat "$dir/logs/error.log")"
}

# ---------------------------------------------------------------------------------------------
# Numbers

# stats FILE SCALE [DECIMALS]: "median p99 min max" of one number per line of FILE (- for
# stdin), each times SCALE; p99 by nearest rank. DECIMALS defaults to 2.
stats() {
    sort -g "$1" | awk -v k="$2" -v d="${3:-2}" '{v[NR] = $1 * k}
        END {n = NR; if (n == 0) {print "nan nan nan nan"; exit}
             med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2;
             r = int(0.99 * n); if (r < 0.99 * n) r++; if (r < 1) r = 1;
             f = "%." d "f"; printf f " " f " " f " " f "\n", med, v[r], v[1], v[n]}'
}

# cpu_ticks PID...: user+sys clock ticks of the processes and the children of the first (nginx:
# master and workers). TICKS ticks make a second.
# shellcheck disable=SC2034 # used by the scripts
TICKS=$(getconf CLK_TCK)
cpu_ticks() {
    local pid total=0 t
    for pid in "$@" $(pgrep -P "$1" 2>/dev/null || true); do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

# vm_mib PID FIELD: a /proc/PID/status field (VmHWM: peak RSS, VmRSS) in MiB.
vm_mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# time_v FILE FIELD: a field of `/usr/bin/time -v -o FILE` ("Maximum resident set size" in KiB,
# "Elapsed (wall clock) time (h:mm:ss or m:ss)", "User time (seconds)", ...).
time_v() { awk -F': ' -v k="$2" 'index($0, k) {print $NF; exit}' "$1" | sed 's/^ *//'; }

# wrk_ms WRK_OUTPUT ROW COLUMN: a latency from `wrk --latency` output, in ms: ROW 99% COLUMN 2
# is the p99, ROW Latency COLUMN 4 the max (wrk prints us, ms, s or m).
wrk_ms() {
    awk -v k="$2" -v c="$3" '$1 == k {v = $c; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1;
        printf "%.3f", v * f; exit}' <<<"$1"
}
