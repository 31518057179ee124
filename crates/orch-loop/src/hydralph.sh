#!/usr/bin/env bash
# hydralph loop, embedded in hydra-orchestrator and written into each session's own runtime
# directory. It follows hydralph's contract (environment, status values, promise tags, exit
# codes) with bash and coreutils only, and fixes its weaknesses: status.json is written
# atomically, `paused` is reported while waiting, queued operator messages are prepended to the
# next prompt, and the agent's output is logged with a bounded size.
#
# Exit codes: 0 complete, 1 max-iterations, 2 blocked, 3 bad setup.
set -u
# Everything the loop writes (status, logs, prompts) is for this user only.
umask 077

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
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
INBOX="$DIR/inject.d"
export HYDRALPH_SESSION_ID="$SESSION" HYDRALPH_PRD="$PRD" HYDRALPH_PROGRESS="$PROGRESS"

# Flags are split on whitespace into separate arguments and never evaluated: quotes, $(...),
# backticks and ; reach the agent as literal characters.
FLAG_ARGS=()
if [ -n "$FLAGS" ]; then
  IFS=$' \t\n' read -r -d '' -a FLAG_ARGS <<< "$FLAGS" || true
fi

stories() {
  # done/total from the PRD's "passes" fields, without jq.
  local text rest done=0 total=0 re='"passes"[[:space:]]*:[[:space:]]*(true|false)'
  text="$(cat -- "$PRD" 2>/dev/null)" || { printf '0/0'; return; }
  rest="$text"
  while [[ $rest =~ $re ]]; do
    total=$((total + 1))
    [ "${BASH_REMATCH[1]}" = true ] && done=$((done + 1))
    rest="${rest#*"${BASH_REMATCH[0]}"}"
  done
  printf '%d/%d' "$done" "$total"
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
  extra=",\"stories\":\"$(stories)\",\"run\":$RUN"
  if [ -n "${3:-}" ]; then extra="$extra,\"reason\":\"$(json_text "$3")\""; fi
  printf '{"session":"%s","status":"%s","iteration":%d,"max":%d%s}\n' \
    "$SESSION" "$1" "$2" "$MAX" "$extra" > "$tmp" && mv -f -- "$tmp" "$STATUS"
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
  rest=$(wc -c | tr -d ' ')
  if [ "${rest:-0}" -gt 0 ]; then
    printf '\n[hydralph: %s more bytes of output not logged (HYDRALPH_LOG_MAX_BYTES=%s)]\n' "$rest" "$LOG_MAX" >> "$LOG"
  fi
}

run_agent() { # iteration: runs the agent once; the pane shows everything, agent.log gets it as
  # it is printed (the first LOG_MAX bytes of one iteration), and the last OUT_MAX bytes are kept
  # in $out to find the promise. A FIFO rather than process substitution: bash 3.2 can wait on it.
  local fifo="$DIR/.logpipe" logger
  printf '\n===== iteration %s (%s) =====\n' "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$LOG"
  rm -f -- "$fifo"
  mkfifo -m 600 -- "$fifo"
  log_output < "$fifo" &
  logger=$!
  { "$AGENT" ${FLAG_ARGS[@]+"${FLAG_ARGS[@]}"} < "$input" 2>&1 | tee /dev/fd/3 "$fifo" | tail -c "$OUT_MAX" > "$out"; } 3>&1
  wait "$logger"
  rm -f -- "$fifo"
  rotate_log
}

if ! command -v -- "$AGENT" >/dev/null 2>&1; then
  echo "hydralph: agent '$AGENT' not found" >&2
  write_status blocked 0 "agent '$AGENT' not found"
  exit 3
fi
[ -f "$PROMPT" ] || { echo "hydralph: prompt $PROMPT missing" >&2; exit 3; }
mkdir -p -- "$INBOX"

write_status started $((START - 1))
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
      for m in ${msgs[@]+"${msgs[@]}"}; do cat -- "$m"; printf '\n\n'; done
      printf -- '---\n\n'
    fi
    cat -- "$PROMPT"
  } > "$input"
  # Messages are consumed once they are in a prompt.
  for m in ${msgs[@]+"${msgs[@]}"}; do rm -f -- "$m"; done

  out="$DIR/.output"
  echo "hydralph: iteration $i/$MAX: $AGENT ${FLAG_ARGS[*]+${FLAG_ARGS[*]}}"
  run_agent "$i"
  printf '%s iteration %d done\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$i" >> "$PROGRESS.log"
  result="$(cat -- "$out" 2>/dev/null)"
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
  i=$((i + 1))
  [ "$i" -le "$MAX" ] && sleep "$DELAY"
done
write_status max-iterations "$MAX"
echo "hydralph: max iterations ($MAX) reached"
exit 1
