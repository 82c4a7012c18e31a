#!/usr/bin/env bash
# Run a long command (the mmcv compile) with its output in a log file, and report its progress on
# stderr: one line every DYNCONV_PROGRESS_INTERVAL seconds (default 30) with the elapsed time and,
# for a C++ build, the last step ninja reported ("[45/160] roi_align.cpp") or the number of
# sources compiled so far. On failure the last lines of the log are shown and the exit status is
# the command's.
#
# Usage: run_with_progress.sh LABEL LOGFILE COMMAND [ARGS...]
set -uo pipefail

[ "$#" -ge 3 ] || { printf 'usage: %s LABEL LOGFILE COMMAND [ARGS...]\n' "$0" >&2; exit 2; }
LABEL="$1"
LOGFILE="$2"
shift 2
INTERVAL="${DYNCONV_PROGRESS_INTERVAL:-30}"
case "$INTERVAL" in
    '' | *[!0-9]* | 0) printf '[setup_env] DYNCONV_PROGRESS_INTERVAL must be a positive number of seconds\n' >&2; exit 2 ;;
esac

say() { printf '[setup_env] %s\n' "$*" >&2; }
minutes() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# What the log says about the build so far: the last ninja step and the source it compiles, or
# the number of compiler calls (setuptools without ninja).
progress() {
    local line step source count
    line="$(grep -E '\[[0-9]+/[0-9]+\]' "$LOGFILE" 2>/dev/null | tail -n 1)"
    if [ -n "$line" ]; then
        step="$(printf '%s\n' "$line" | grep -oE '\[[0-9]+/[0-9]+\]' | head -n 1)"
        source="$(printf '%s\n' "$line" | grep -oE '[A-Za-z0-9_.+-]+\.(cpp|cu|cc|c)\b' | tail -n 1)"
        printf ', step %s%s' "$step" "${source:+ $source}"
        return
    fi
    count="$(grep -cE ' -c [^ ]+\.(cpp|cu|cc|c)( |$)' "$LOGFILE" 2>/dev/null)"
    if [ "${count:-0}" -gt 0 ]; then
        printf ', %s source files compiled' "$count"
    fi
}

mkdir -p "$(dirname "$LOGFILE")"
: >"$LOGFILE"
START=$SECONDS
"$@" >>"$LOGFILE" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; exit 130' INT TERM
say "$LABEL: started, log in $LOGFILE (a progress line every ${INTERVAL}s)"

NEXT=$((SECONDS + INTERVAL))
while kill -0 "$PID" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$NEXT" ] && kill -0 "$PID" 2>/dev/null; then
        say "$LABEL: $(minutes $((SECONDS - START))) elapsed$(progress)"
        NEXT=$((SECONDS + INTERVAL))
    fi
done
wait "$PID"
RC=$?
trap - INT TERM
if [ "$RC" -ne 0 ]; then
    say "$LABEL failed after $(minutes $((SECONDS - START))) (exit status $RC); last lines of $LOGFILE:"
    tail -n 40 "$LOGFILE" >&2
    exit "$RC"
fi
say "$LABEL: done in $(minutes $((SECONDS - START)))"
