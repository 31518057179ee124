#!/usr/bin/env bash
# hydralph loop, embedded in hydra-orchestrator and written into each session's own runtime
# directory. It follows hydralph's contract (environment, status values, promise tags, exit
# codes) with bash and coreutils only, and fixes its weaknesses: status.json is written
# atomically, `paused` is reported while waiting, queued operator messages are prepended to the
# next prompt, and the agent's output is logged with a bounded size.
#
# Beyond hydralph: an agent profile's argv (HYDRALPH_ARGC, HYDRALPH_ARG_1..N) and prompt mode
# (stdin, arg, file); usage-limit messages make the loop wait for the reset (status
# `waiting`) and retry the same iteration; K iterations without progress (no commit, no PRD
# change, no working-tree change) block the loop; a cost the agent reports is summed, and a cost
# limit ends the loop as max-iterations does.
#
# Exit codes: 0 complete, 1 max-iterations (or the cost limit), 2 blocked, 3 bad setup.
set -u
# Everything the loop writes (status, logs, prompts) is for this user only.
umask 077

# The script's own directory; without a subshell when started by an absolute path (as hydra
# starts it), so the first status is written within milliseconds.
case "${BASH_SOURCE[0]}" in
  /*/*) DIR="${BASH_SOURCE[0]%/*}" ;;
  *) DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" ;;
esac
SESSION="${HYDRALPH_SESSION_ID:-}"
AGENT="${HYDRALPH_AGENT:-claude}"
FLAGS="${HYDRALPH_FLAGS:-}"
MAX="${HYDRALPH_MAX_ITERATIONS:-10}"
PRD="${HYDRALPH_PRD:-$DIR/prd.json}"
PROGRESS="${HYDRALPH_PROGRESS:-$DIR/progress.txt}"
PROMPT="${HYDRALPH_PROMPT:-$DIR/prompt.md}"
STATUS="${HYDRALPH_STATUS:-$DIR/status.json}"
START="${HYDRALPH_START_ITERATION:-1}"
RUN="${HYDRALPH_RUN:-1}"
DELAY="${HYDRALPH_DELAY:-2}"
LOG="${HYDRALPH_LOG:-$DIR/agent.log}"
LOG_MAX="${HYDRALPH_LOG_MAX_BYTES:-5242880}"
OUT_MAX="${HYDRALPH_OUTPUT_MAX_BYTES:-1048576}"
PAUSE="$DIR/.pause"
RETRY="$DIR/.retry"
INBOX="$DIR/inject.d"
PROMPT_MODE="${HYDRALPH_PROMPT_MODE:-stdin}"
LIMITS="${HYDRALPH_LIMIT_PATTERNS:-}"
BACKOFF="${HYDRALPH_LIMIT_BACKOFF:-60}"
BACKOFF_MAX="${HYDRALPH_LIMIT_BACKOFF_MAX:-1800}"
COST_RE="${HYDRALPH_COST_PATTERN:-}"
TOKENS_RE="${HYDRALPH_TOKENS_PATTERN:-}"
MAX_COST="${HYDRALPH_MAX_COST:-}"
NO_PROGRESS_LIMIT="${HYDRALPH_NO_PROGRESS_LIMIT:-0}"
COST_TOTAL="${HYDRALPH_COST_START:-0}"
TOKENS_TOTAL="${HYDRALPH_TOKENS_START:-0}"
UNTIL=""

# The profile's arguments, one variable each: never split, never evaluated.
ARGS=()
k=1
while [ "$k" -le "${HYDRALPH_ARGC:-0}" ]; do
  v="HYDRALPH_ARG_$k"
  ARGS+=("${!v}")
  k=$((k + 1))
done
export HYDRALPH_SESSION_ID="$SESSION" HYDRALPH_PRD="$PRD" HYDRALPH_PROGRESS="$PROGRESS"

# Flags are split on whitespace into separate arguments and never evaluated: quotes, $(...),
# backticks and ; reach the agent as literal characters.
FLAG_ARGS=()
if [ -n "$FLAGS" ]; then
  IFS=$' \t\n' read -r -d '' -a FLAG_ARGS <<< "$FLAGS" || true
fi

count_stories() {
  # STORIES = done/total from the PRD's "passes" fields, without jq, a subshell or a program.
  local text="" rest done=0 total=0 re='"passes"[[:space:]]*:[[:space:]]*(true|false)'
  STORIES=0/0
  [ -f "$PRD" ] && [ -r "$PRD" ] || return 0
  IFS= read -r -d '' text < "$PRD" 2>/dev/null || true
  rest="$text"
  while [[ $rest =~ $re ]]; do
    total=$((total + 1))
    [ "${BASH_REMATCH[1]}" = true ] && done=$((done + 1))
    rest="${rest#*"${BASH_REMATCH[0]}"}"
  done
  STORIES="$done/$total"
}

json_text() { # text -> a JSON string body: quotes and backslashes escaped, controls as spaces
  local t="$1"
  t="${t//\\/\\\\}"
  t="${t//\"/\\\"}"
  t="${t//[$'\001'-$'\037']/ }"
  printf '%s' "$t"
}

write_status() { # status iteration [reason]
  local tmp="$STATUS.tmp.$$" extra=""
  count_stories
  extra=",\"stories\":\"$STORIES\",\"run\":$RUN,\"cost\":\"$COST_TOTAL\",\"tokens\":$TOKENS_TOTAL"
  if [ -n "${3:-}" ]; then extra="$extra,\"reason\":\"$(json_text "$3")\""; fi
  if [ -n "$UNTIL" ]; then extra="$extra,\"until\":$UNTIL"; fi
  # Replaced atomically (a reader sees the old report or the new one); the first one is
  # written in place, without starting mv: a reader that meets it half-written sees what it
  # saw before, no report.
  local target="$tmp"
  [ -e "$STATUS" ] || target="$STATUS"
  printf '{"session":"%s","status":"%s","iteration":%d,"max":%d%s}\n' \
    "$SESSION" "$1" "$2" "$MAX" "$extra" > "$target" || return
  [ "$target" = "$STATUS" ] || mv -f -- "$tmp" "$STATUS"
}

if ! command -v -- "$AGENT" >/dev/null 2>&1; then
  echo "hydralph: agent '$AGENT' not found" >&2
  write_status blocked 0 "agent '$AGENT' not found"
  exit 3
fi
[ -f "$PROMPT" ] || { echo "hydralph: prompt $PROMPT missing" >&2; exit 3; }

write_status started $((START - 1))

# What the iterations need, read only now: the loop says it has started as soon as it can.
stories() { # done/total, printed
  count_stories
  printf '%s' "$STORIES"
}

# NOW = the UTC time as ISO 8601; bash 4.2 and later print it themselves (no date process,
# no subshell); bash 3.2 (macOS's) asks date.
if [ "${BASH_VERSINFO[0]}" -gt 4 ] || { [ "${BASH_VERSINFO[0]}" -eq 4 ] && [ "${BASH_VERSINFO[1]}" -ge 2 ]; }; then
  utc_now() { TZ=UTC0 printf -v NOW '%(%Y-%m-%dT%H:%M:%SZ)T' -1; }
else
  utc_now() { NOW="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; }
fi

# The log's reader runs as a process substitution where bash can wait for one (4.4 and later):
# no mkfifo and rm, two processes fewer per iteration. Bash 3.2 (macOS's) reads a named pipe;
# HYDRALPH_LOG_FIFO=1 asks for that anywhere (tests cover both).
LOG_FIFO=1
if [ "${HYDRALPH_LOG_FIFO:-}" != 1 ] && { [ "${BASH_VERSINFO[0]}" -gt 4 ] || { [ "${BASH_VERSINFO[0]}" -eq 4 ] && [ "${BASH_VERSINFO[1]}" -ge 4 ]; }; }; then
  LOG_FIFO=0
fi

put_text() { # file -> its text on stdout, without starting cat (text: up to a NUL byte, if any)
  local t=""
  IFS= read -r -d '' t < "$1" || true
  printf '%s' "$t"
}

blocked_reason() { # output file -> what the agent said inside <reason>...</reason>, bounded
  local text r
  text="$(tail -c 65536 -- "$1" 2>/dev/null)"
  if [[ $text == *"<reason>"*"</reason>"* ]]; then
    r="${text##*<reason>}"
    r="${r%%</reason>*}"
  else
    # The last non-empty lines before the promise tag.
    r="${text%%<promise>BLOCKED</promise>*}"
    r="$(printf '%s' "$r" | tail -n 3)"
  fi
  r="$(printf '%s' "$r" | tr -s '[:space:]' ' ')"
  r="${r# }"
  printf '%s' "${r:0:400}"
}

rotate_log() { # keeps agent.log under LOG_MAX between iterations (one older part, agent.log.1)
  local size
  size=$(wc -c < "$LOG" 2>/dev/null || echo 0)
  if [ "$size" -gt "$LOG_MAX" ]; then mv -f -- "$LOG" "$LOG.1"; fi
}

log_output() { # copies stdin to agent.log as it comes, up to LOG_MAX bytes, then drains the rest.
  # dd bs=1 writes each byte the moment it is read (head -c and awk buffer, or read a byte per
  # call for the whole stream); its cost is bounded by LOG_MAX, and wc drains what is left fast.
  local rest
  dd bs=1 count="$LOG_MAX" 2>/dev/null >> "$LOG"
  rest=$(wc -c)
  rest="${rest//[!0-9]/}"
  if [ "${rest:-0}" -gt 0 ]; then
    printf '\n[hydralph: %s more bytes of output not logged (HYDRALPH_LOG_MAX_BYTES=%s)]\n' "$rest" "$LOG_MAX" >> "$LOG"
  fi
}

run_agent() { # iteration: runs the agent once; the pane shows everything, agent.log gets it as
  # it is printed (the first LOG_MAX bytes of one iteration), and the last OUT_MAX bytes are kept
  # in $out to find the promise.
  local fifo="$DIR/.logpipe" logger cmd from=/dev/null sink logfd=""
  utc_now
  printf '\n===== iteration %s (%s) =====\n' "$1" "$NOW" >> "$LOG"
  if [ "$LOG_FIFO" = 1 ]; then
    if [ -e "$fifo" ] || [ -L "$fifo" ]; then rm -f -- "$fifo"; fi
    mkfifo -m 600 -- "$fifo"
    log_output < "$fifo" &
    sink="$fifo"
  else
    # This shell holds the pipe's writing end until tee has its own: the agent and tail get
    # none (an agent's background process holding it would keep the log's reader waiting).
    exec {logfd}> >(log_output)
    sink="/dev/fd/$logfd"
  fi
  logger=$!
  # The agent's argv: program, profile arguments, --flags, then the prompt as its mode says.
  cmd=("$AGENT" ${ARGS[@]+"${ARGS[@]}"} ${FLAG_ARGS[@]+"${FLAG_ARGS[@]}"})
  case "$PROMPT_MODE" in
    arg) cmd+=("$(put_text "$input")") ;;
    file) cmd+=("$input") ;;
    *) from="$input" ;;
  esac
  if [ "$LOG_FIFO" = 1 ]; then
    { "${cmd[@]}" < "$from" 2>&1 | tee /dev/fd/3 "$sink" | tail -c "$OUT_MAX" > "$out"; } 3>&1
  else
    { "${cmd[@]}" < "$from" {logfd}>&- 2>&1 | tee /dev/fd/3 "$sink" | tail -c "$OUT_MAX" {logfd}>&- > "$out"; } 3>&1
    exec {logfd}>&-
  fi
  wait "$logger"
  if [ "$LOG_FIFO" = 1 ]; then rm -f -- "$fifo"; fi
  rotate_log
}

limit_line() { # output file -> its first line with a usage-limit pattern of the profile
  [ -n "$LIMITS" ] || return 1
  printf '%s\n' "$LIMITS" > "$DIR/.limits"
  tail -c 65536 -- "$1" 2>/dev/null | grep -i -F -m 1 -f "$DIR/.limits"
}

reset_in() { # a usage-limit line -> seconds until the reset it names (fails when it names none)
  local l="$1" now n unit total=0 tz h m ampm t_h t_m t_s secs
  now=$(date +%s)
  if [[ $l =~ \|([0-9]{10}) ]] || [[ $l =~ resets_at\"?:[[:space:]]*([0-9]{10}) ]]; then
    echo $((BASH_REMATCH[1] - now)); return 0
  fi
  if [[ $l =~ resets_in_seconds\"?:[[:space:]]*([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; return 0; fi
  # "try again in 2 days 17 hours 14 minutes", "in 2 seconds"
  if [[ $l =~ [Ii]n(([[:space:]]+[0-9]+[[:space:]]*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)[,]?)+) ]]; then
    local rest="${BASH_REMATCH[1]}" re='([0-9]+)[[:space:]]*([a-z]+)'
    while [[ $rest =~ $re ]]; do
      n=${BASH_REMATCH[1]}; unit=${BASH_REMATCH[2]}
      case "$unit" in
        d|day|days) total=$((total + n * 86400)) ;;
        h|hr|hrs|hour|hours) total=$((total + n * 3600)) ;;
        m|min|mins|minute|minutes) total=$((total + n * 60)) ;;
        *) total=$((total + n)) ;;
      esac
      rest="${rest#*"${BASH_REMATCH[0]}"}"
    done
    echo "$total"; return 0
  fi
  # "resets 3pm (Europe/Lisbon)", "reset at 9am", "resets 12:50am", "at 15:00"
  if [[ $l =~ (at|resets?)[[:space:]]+([0-9]{1,2})(:([0-9]{2}))?[[:space:]]*([AaPp][Mm])? ]]; then
    h=$((10#${BASH_REMATCH[2]})); m=$((10#${BASH_REMATCH[4]:-0})); ampm="${BASH_REMATCH[5]}"
    case "$ampm" in [Pp][Mm]) [ "$h" -lt 12 ] && h=$((h + 12)) ;; [Aa][Mm]) [ "$h" -eq 12 ] && h=0 ;; esac
    tz=""
    if [[ $l =~ \(([A-Za-z_]+/[A-Za-z_/+-]+)\) ]]; then tz="${BASH_REMATCH[1]}"; fi
    # One reading of the clock, so a minute cannot turn between its fields.
    IFS=: read -r t_h t_m t_s <<< "$(TZ="${tz:-${TZ:-}}" date +%H:%M:%S)"
    secs=$(( (h * 3600 + m * 60) - (10#$t_h * 3600 + 10#$t_m * 60 + 10#$t_s) ))
    [ "$secs" -le 0 ] && secs=$((secs + 86400))
    echo "$secs"; return 0
  fi
  return 1
}

wait_for_reset() { # iteration line: waits until the reset the line names (or a capped back-off)
  local secs
  if ! secs=$(reset_in "$2"); then
    secs=$BACKOFF
    BACKOFF=$((BACKOFF * 2)); [ "$BACKOFF" -gt "$BACKOFF_MAX" ] && BACKOFF=$BACKOFF_MAX
  fi
  [ "$secs" -lt 1 ] && secs=1
  UNTIL=$(( $(date +%s) + secs ))
  rm -f -- "$RETRY"
  write_status waiting $(($1 - 1)) "usage limit: $2"
  echo "hydralph: usage limit; waiting until $(date -r "$UNTIL" 2>/dev/null || date -d "@$UNTIL" 2>/dev/null || echo "$UNTIL") (hydra resume retries now)"
  while [ "$(date +%s)" -lt "$UNTIL" ] && [ ! -e "$RETRY" ]; do sleep 1; done
  rm -f -- "$RETRY"
  UNTIL=""
}

fingerprint() { # what counts as progress: the commit, the PRD's passes, the working tree
  # Two git processes, neither of which writes the index (so takes no index.lock that the
  # agent's own git could meet): status without optional locks names the commit and the
  # staged and untracked files (porcelain v2 with the staged content's object), and the
  # plumbing diff-files the unstaged changes' content (the porcelain `git diff` rewrites the
  # index whatever the option says, and would run a configured external diff).
  {
    stories
    if git --no-optional-locks status --porcelain=v2 --branch --no-ahead-behind 2>/dev/null; then
      git diff-files -p 2>/dev/null
    else
      echo no-repository
    fi
  } | cksum
}

changed_files_since() { # marker -> whether a file outside .git and .hydra changed since it (no git)
  [ -n "$(find . -newer "$1" -type f ! -path './.git/*' ! -path './.hydra/*' 2>/dev/null | head -n 1)" ]
}

add_usage() { # output file: the cost and tokens the agent reported, added to the totals
  local text c
  [ -n "$COST_RE$TOKENS_RE" ] || return 0
  text="$(tail -c 65536 -- "$1" 2>/dev/null)"
  if [ -n "$COST_RE" ] && [[ $text =~ $COST_RE ]]; then
    c="${BASH_REMATCH[1]}"
    if [[ $c =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
      COST_TOTAL=$(awk -v a="$COST_TOTAL" -v b="$c" 'BEGIN { printf "%.6f", a + b }')
    fi
  fi
  if [ -n "$TOKENS_RE" ] && [[ $text =~ $TOKENS_RE ]]; then
    c="${BASH_REMATCH[1]}"
    if [[ $c =~ ^[0-9]{1,15}$ ]]; then TOKENS_TOTAL=$((TOKENS_TOTAL + 10#$c)); fi
  fi
}

i=$START
while [ "$i" -le "$MAX" ]; do
  if [ -e "$PAUSE" ]; then
    write_status paused $((i - 1))
    while [ -e "$PAUSE" ]; do sleep 0.2; done
  fi
  write_status running "$i"
  input="$DIR/.prompt"
  {
    shopt -s nullglob
    msgs=("$INBOX"/*.md)
    if [ ${#msgs[@]} -gt 0 ]; then
      printf '## Messages from your operator (newest last)\n\n'
      for m in ${msgs[@]+"${msgs[@]}"}; do put_text "$m"; printf '\n\n'; done
      printf -- '---\n\n'
    fi
    put_text "$PROMPT"
  } > "$input"
  # Messages are consumed once they are in a prompt.
  for m in ${msgs[@]+"${msgs[@]}"}; do rm -f -- "$m"; done

  out="$DIR/.output"
  echo "hydralph: iteration $i/$MAX: $AGENT ${ARGS[*]+${ARGS[*]}} ${FLAG_ARGS[*]+${FLAG_ARGS[*]}}"
  # What the circuit breaker compares against (only when it is on: it runs git).
  if [ "$NO_PROGRESS_LIMIT" -gt 0 ]; then
    before="$(fingerprint)"
    : > "$DIR/.iteration-start"
  fi
  run_agent "$i"
  # A usage limit: this iteration does not count; wait for the reset and run it again.
  if line="$(limit_line "$out")"; then
    wait_for_reset "$i" "$line"
    continue
  fi
  BACKOFF="${HYDRALPH_LIMIT_BACKOFF:-60}"
  add_usage "$out"
  utc_now
  printf '%s iteration %d done\n' "$NOW" "$i" >> "$PROGRESS.log"
  { result="$(< "$out")"; } 2>/dev/null
  if [[ $result == *"<promise>COMPLETE</promise>"* ]]; then
    write_status complete "$i"
    echo "hydralph: complete after $i iteration(s)"
    exit 0
  fi
  if [[ $result == *"<promise>BLOCKED</promise>"* ]]; then
    write_status blocked "$i" "$(blocked_reason "$out")"
    echo "hydralph: blocked at iteration $i; waiting for an operator"
    exit 2
  fi
  if [ -n "$MAX_COST" ] && awk -v t="$COST_TOTAL" -v m="$MAX_COST" 'BEGIN { exit !(t >= m) }'; then
    write_status max-iterations "$i" "cost limit reached: $COST_TOTAL of $MAX_COST USD"
    echo "hydralph: cost limit reached ($COST_TOTAL of $MAX_COST USD)"
    exit 1
  fi
  # The circuit breaker: a commit, a PRD change or a working-tree change is progress.
  if [ "$NO_PROGRESS_LIMIT" -gt 0 ]; then
    if [ "$(fingerprint)" != "$before" ] || { ! git rev-parse --git-dir >/dev/null 2>&1 && changed_files_since "$DIR/.iteration-start"; }; then
      idle=0
    else
      idle=$((${idle:-0} + 1))
      if [ "$idle" -ge "$NO_PROGRESS_LIMIT" ]; then
        write_status blocked "$i" "no progress in $idle iterations"
        echo "hydralph: no progress in $idle iterations; blocked"
        exit 2
      fi
    fi
  fi
  i=$((i + 1))
  [ "$i" -le "$MAX" ] && sleep "$DELAY"
done
write_status max-iterations "$MAX"
echo "hydralph: max iterations ($MAX) reached"
exit 1
