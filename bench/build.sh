#!/usr/bin/env bash
# Build benchmark for `hexrepo build` (see bench/README.md).
#
#   bench/build.sh [RUNS]        RUNS defaults to 5
#
# Corpus: `tools/gen-corpus DIR 1000 5` (5,000 tarballs, ~138 MB), cached in
# target/bench-corpus/ and reused while it holds 5,000 tarballs. To seed the cache from a
# corpus generated elsewhere, set HEXREPO_BENCH_CORPUS=/path/to/dir/with/the/tarballs.
#
# Cases, each RUNS times, timing only the hexrepo command:
#   full build    fresh PUBLIC_DIR holding only tarballs/ (hard links into the corpus)
#   no-change     build again on a built folder
#   add-one       built folder of 4,999 tarballs, plus one new version of an existing package
#   peak RSS      /usr/bin/time -v of the full build
# plus context rows: no-change with a warmed page cache, and (when the kernel lets us drop
# caches) no-change and full build with a cold page cache.
#
# It is a report, not a test: it exits 0 even when a target is missed, and prints MISSED.
set -euo pipefail

RUNS=${1:-5}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/build.sh [RUNS]" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Targets (issue text) and the mix reference figure.
T_FULL=0.8 T_NOCHANGE=0.1 T_ADDONE=0.1 T_RSS_MIB=64 MIX_S=4.4
PACKAGES=$CORPUS_PACKAGES VERSIONS=$CORPUS_VERSIONS EXPECTED=$CORPUS_TARBALLS
REPO_NAME=bench

CORPUS=$BENCH_CORPUS
WORK=$ROOT/target/bench-work

# ---------------------------------------------------------------------------------------------
say "tools"
need_tool /usr/bin/time time
HAVE_HYPERFINE=0
if need_apt hyperfine hyperfine; then HAVE_HYPERFINE=1; echo "timing with $(hyperfine --version)"
else echo "hyperfine unavailable: timing with a date +%s%N loop"; fi

build_release "$WORK/hexrepo"

# ---------------------------------------------------------------------------------------------
ensure_corpus
ensure_key
# The add-one tarball: the newest version of a package in the middle of the corpus.
HELD=$(cd "$CORPUS/tarballs" && ls pkg_00500-*.tar | sort -V | tail -n 1)
echo "add-one tarball: $HELD"

# ---------------------------------------------------------------------------------------------
machine_info
LOAD0=$(load1)
warn_if_busy 0.5 "wall times will be inflated (CPU times less so)"
echo "runs per case: $RUNS"

# ---------------------------------------------------------------------------------------------
# Work folders hold hard links into the corpus (hexrepo only reads tarballs), so making one is
# cheap. Every full build gets a folder made in advance: a reset renames the used folder away
# and the next fresh one into place, and nothing is deleted while measuring. Why: this root
# filesystem is ext4 without a journal, where creating a file scans past every inode deleted in
# the last 60 s (`recently_deleted` in the kernel's inode allocator); a reset that did `rm -rf`
# of the previous build's 1,000 files made the next full build spend 0.5 s more in the kernel,
# which is a cost of the benchmark, not of hexrepo.
FULL=$WORK/full NOCH=$WORK/nochange ADD=$WORK/addone POOL=$WORK/pool USED=$WORK/used
BUILD=("$BIN" build PLACEHOLDER --name "$REPO_NAME" --private-key "$KEY")
build_cmd() { printf '%q build %q --name %q --private-key %q' "$BIN" "$1" "$REPO_NAME" "$KEY"; }

DROP_CACHES=0
if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then DROP_CACHES=1; fi

say "work folders"
rm -rf "$FULL" "$NOCH" "$ADD" "$POOL" "$USED"
sync
mark_deleted "$WORK/deleted-at"
mkdir -p "$POOL" "$USED"
fresh() { mkdir -p "$1" && cp -al "$CORPUS/tarballs" "$1/tarballs"; }
# Full builds: the check run, RUNS timed, RUNS for RSS, RUNS cold; plus spares.
NPOOL=$((3 * RUNS + 3))
for ((i = 0; i < NPOOL; i++)); do fresh "$(printf '%s/%04d' "$POOL" "$i")"; done
fresh "$NOCH"
"$BIN" build "$NOCH" --name "$REPO_NAME" --private-key "$KEY" >/dev/null 2>&1
fresh "$ADD"
rm -f "$ADD/tarballs/$HELD"
"$BIN" build "$ADD" --name "$REPO_NAME" --private-key "$KEY" >/dev/null 2>&1
sync
echo "$NPOOL fresh folders for full builds, one built folder each for no-change and add-one"
wait_since_deleted "$WORK/deleted-at"

# Each reset ends with `sync -f` so the timed build's syncfs does not pay for the reset's writes.
cat >"$WORK/prep-full.sh" <<EOF
set -e
next=\$(ls $(printf %q "$POOL") | head -n 1)
[ -n "\$next" ] || { echo "bench: no fresh folder left in $(printf %q "$POOL")" >&2; exit 1; }
if [ -e $(printf %q "$FULL") ]; then mv $(printf %q "$FULL") $(printf %q "$USED")/"\$next"; fi
mv $(printf %q "$POOL")/"\$next" $(printf %q "$FULL")
sync -f $(printf %q "$FULL")
EOF
cat >"$WORK/prep-addone.sh" <<EOF
set -e
rm -f $(printf %q "$ADD/tarballs/$HELD")
$(build_cmd "$ADD") >/dev/null 2>&1
cp $(printf %q "$CORPUS/tarballs/$HELD") $(printf %q "$ADD/tarballs/$HELD")
sync -f $(printf %q "$ADD")
EOF
cat >"$WORK/prep-cold.sh" <<EOF
set -e
sync
echo 3 > /proc/sys/vm/drop_caches
EOF
cat >"$WORK/prep-full-cold.sh" <<EOF
set -e
bash $(printf %q "$WORK/prep-full.sh")
bash $(printf %q "$WORK/prep-cold.sh")
EOF
printf 'true\n' >"$WORK/prep-none.sh"

# check LABEL DIR EXPECTED_READ: one untimed run, showing hexrepo's summary line.
check() {
    local out read
    out=$("$BIN" build "$2" --name "$REPO_NAME" --private-key "$KEY" 2>&1 >/dev/null | tail -n 1)
    read=$(sed -n 's/.*; \([0-9]*\) tarballs read.*/\1/p' <<<"$out")
    printf '  check %-10s %s\n' "$1:" "$out"
    [[ $read == "$3" ]] || { echo "bench: $1 read $read tarballs, expected $3" >&2; exit 1; }
}

# measure KEY LABEL PREP_SCRIPT DIR [WARMUP]: sets MED_KEY, MIN_KEY, MAX_KEY (seconds).
measure() {
    local key=$1 label=$2 prep=$3 dir=$4 warmup=${5:-0} med min max cpu=-
    echo
    echo "-- $label"
    if ((HAVE_HYPERFINE)); then
        hyperfine -N --style basic --runs "$RUNS" --warmup "$warmup" \
            --prepare "bash $prep" --export-csv "$WORK/$key.csv" \
            --command-name "$label" "$(build_cmd "$dir")" >&2
        # CSV: command,mean,stddev,median,user,system,min,max (count from the end: the
        # command name may hold commas)
        IFS=, read -r med min max cpu < <(awk -F, 'NR==2 {print $(NF-4)","$(NF-1)","$NF","$(NF-3)+$(NF-2)}' "$WORK/$key.csv")
    else
        local i t0 t1 times=()
        for ((i = 0; i < warmup; i++)); do bash "$prep"; "${BUILD[@]/PLACEHOLDER/$dir}" >/dev/null 2>&1; done
        for ((i = 0; i < RUNS; i++)); do
            bash "$prep"
            t0=$(date +%s%N)
            "${BUILD[@]/PLACEHOLDER/$dir}" >/dev/null 2>&1
            t1=$(date +%s%N)
            times+=("$((t1 - t0))")
        done
        read -r med _ min max < <(printf '%s\n' "${times[@]}" | stats - 1e-9 6)
    fi
    printf -v "MED_$key" %s "$med"; printf -v "MIN_$key" %s "$min"; printf -v "MAX_$key" %s "$max"
    printf -v "CPU_$key" %s "$cpu"
    printf '  %s: median %.3f s (min %.3f, max %.3f, %d runs; mean CPU time user+sys %s s)\n' \
        "$label" "$med" "$min" "$max" "$RUNS" "$cpu"
}

say "measurements"
# 1. full build
bash "$WORK/prep-full.sh"; check "full" "$FULL" "$EXPECTED"
measure full "full build" "$WORK/prep-full.sh" "$FULL"

# 2. no-change rebuild (a folder built during setup)
check "no-change" "$NOCH" 0
measure nochange "no-change rebuild" "$WORK/prep-none.sh" "$NOCH"

# 3. add-one (a folder built without the held-back tarball during setup)
bash "$WORK/prep-addone.sh"; check "add-one" "$ADD" 1
measure addone "add-one rebuild" "$WORK/prep-addone.sh" "$ADD"

# 4. peak RSS of the full build
echo
echo "-- peak RSS of the full build (/usr/bin/time -v)"
rss=()
for ((i = 0; i < RUNS; i++)); do
    bash "$WORK/prep-full.sh"
    /usr/bin/time -v -o "$WORK/time-v.txt" "$BIN" build "$FULL" --name "$REPO_NAME" --private-key "$KEY" >/dev/null 2>&1
    rss+=("$(time_v "$WORK/time-v.txt" "Maximum resident set size")")
    printf '  run %d: %s KiB, %s wall, %s%% CPU\n' "$((i + 1))" "${rss[-1]}" \
        "$(time_v "$WORK/time-v.txt" "Elapsed (wall clock)")" "$(time_v "$WORK/time-v.txt" "Percent of CPU" | tr -d %)"
done
read -r RSS_MED _ RSS_MIN RSS_MAX < <(printf '%s\n' "${rss[@]}" | stats - 0.0009765625 1)
printf '  peak RSS: median %.1f MiB (min %.1f, max %.1f)\n' "$RSS_MED" "$RSS_MIN" "$RSS_MAX"

# Context: the page cache warmed by extra runs, and a cold page cache.
say "context (not targets)"
measure nochange_warm "no-change, page cache warmed (3 warmup runs)" "$WORK/prep-none.sh" "$NOCH" 3
if ((DROP_CACHES)); then
    measure nochange_cold "no-change, cold page cache (drop_caches)" "$WORK/prep-cold.sh" "$NOCH"
    measure full_cold "full build, cold page cache (drop_caches)" "$WORK/prep-full-cold.sh" "$FULL"
else
    echo "  (cannot write /proc/sys/vm/drop_caches: cold-cache rows skipped)"
fi

# ---------------------------------------------------------------------------------------------
say "summary: hexrepo build, gen-corpus $PACKAGES x $VERSIONS ($EXPECTED tarballs), $CPUS CPUs, $("$BIN" --version), medians of $RUNS runs"
MISSED=0
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v <= t)}' && echo ok || echo MISSED; }
row_time() { # row_time LABEL KEY TARGET|- : time row with speedup vs mix
    local med min max cpu v target speed n
    n=MED_$2; med=${!n}; n=MIN_$2; min=${!n}; n=MAX_$2; max=${!n}; n=CPU_$2; cpu=${!n}
    [[ $cpu == - ]] || cpu=$(printf '%.3f s' "$cpu")
    speed=$(awk -v m="$MIX_S" -v x="$med" 'BEGIN {printf "%.1fx", m/x}')
    if [[ $3 == - ]]; then target="-"; v="(context)"
    else target="<= $3 s"; v=$(verdict "$med" "$3"); [[ $v == ok ]] || MISSED=$((MISSED + 1)); fi
    printf '%-44s | %9s | %9s | %-9s | %-17s | %9s | %s\n' "$1" "$(printf '%.3f s' "$med")" "$target" "$v" \
        "$(printf '%.3f-%.3f s' "$min" "$max")" "$cpu" "$speed"
}
printf '%-44s | %9s | %9s | %-9s | %-17s | %9s | %s\n' "case" "median" "target" "verdict" "min-max" "CPU time" "vs mix ${MIX_S} s"
printf '%s\n' "---------------------------------------------+-----------+-----------+-----------+-------------------+-----------+-------------"
row_time "full build" full "$T_FULL"
row_time "no-change rebuild" nochange "$T_NOCHANGE"
row_time "add-one rebuild" addone "$T_ADDONE"
v=$(verdict "$RSS_MED" "$T_RSS_MIB"); [[ $v == ok ]] || MISSED=$((MISSED + 1))
printf '%-44s | %9s | %9s | %-9s | %-17s | %9s | %s\n' "peak RSS (full build)" "$(printf '%.1f MiB' "$RSS_MED")" \
    "<= $T_RSS_MIB MiB" "$v" "$(printf '%.1f-%.1f MiB' "$RSS_MIN" "$RSS_MAX")" "-" "-"
row_time "context: no-change, warmed page cache" nochange_warm -
if ((DROP_CACHES)); then
    row_time "context: no-change, cold page cache" nochange_cold -
    row_time "context: full build, cold page cache" full_cold -
fi
echo "CPU time = mean user+sys of the hexrepo process (all threads); wall >= CPU time / $CPUS."
echo "load average at the end: $(loadavg) (at the start: $LOAD0)"
echo
echo "mix reference: \`mix hex.registry build\` takes about ${MIX_S} s on this corpus in each of the three cases."
if ((MISSED)); then echo "RESULT: $MISSED target(s) MISSED"; else echo "RESULT: all targets met"; fi
# The used folders are deleted only now, after the last measurement.
rm -rf "$USED" "$POOL" "$FULL"
exit 0
