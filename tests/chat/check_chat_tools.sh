#!/usr/bin/env bash
# Checks `mlxengine run`, `mlxengine chat` and `generate --prompt` end to end
# on a chat model folder written for the test (tests/chat_model_util.h):
# usage errors, --device, the message when no model is given, run's reply against
# chat's first reply and against stdin input, stop strings cut the output,
# chat's slash commands driven through a pipe (/set, /stats, /undo, /system,
# /save, /load, /quit), a session saved in one chat and loaded in another
# answering like one continuous chat, generate --prompt streaming the text of
# the ids it generates, and a Hub id resolved offline from a cache.
set -euo pipefail
tool=$1
make_model=$2
py=/usr/bin/python3
work=$(mktemp -d /tmp/mlxe-chat-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # expected_rc command...
    local want=$1; shift
    set +e
    "$@" >"$work/out" 2>"$work/err" </dev/null
    local rc=$?
    set -e
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$work/err")"
}
same_files() { cmp -s "$1" "$2" || fail "$3: $(od -c "$1" | head -3) vs $(od -c "$2" | head -3)"; }

model=$work/model
"$make_model" "$model" 11
export HF_HOME=$work/hf HF_HUB_OFFLINE=1 XDG_CONFIG_HOME=$work/config

# no prompt; no model named means the embedded default model; bad flags
expect_rc 2 "$tool" run
grep -q "prompt is empty" "$work/err" || fail "run without a prompt: $(cat "$work/err")"
expect_rc 0 "$tool" run "Quote Psalms 23:1." --max-tokens 24
grep -q "Psalms 23:1" "$work/out" || fail "run with the default model: $(cat "$work/out")"
printf 'Quote Psalms 23:1.\n/quit\n' | "$tool" chat --max-tokens 24 >"$work/chat_default" 2>"$work/err" ||
    fail "chat with the default model: $(cat "$work/err")"
cmp -s "$work/chat_default" "$work/out" || grep -q "Psalms 23:1" "$work/chat_default" ||
    fail "chat with the default model: $(cat "$work/chat_default")"
expect_rc 2 "$tool" run "$model" hi --bogus
grep -q "unknown option '--bogus'" "$work/err" || fail "no message for a bad flag"
# --device: an unknown device is refused by name; cpu and auto (the GPU when
# usable, else the CPU) give run's reply; chat takes the flag too
expect_rc 1 "$tool" run --device tpu "Quote Psalms 23:1." --max-tokens 24
grep -q '"tpu"' "$work/err" || fail "run --device tpu: the error does not name the device: $(cat "$work/err")"
expect_rc 0 "$tool" run --device cpu "Quote Psalms 23:1." --max-tokens 24
cp "$work/out" "$work/run_cpu"
expect_rc 0 "$tool" run --device auto "Quote Psalms 23:1." --max-tokens 24
grep -q "Psalms 23:1" "$work/out" || fail "run --device auto: $(cat "$work/out")"
printf 'Quote Psalms 23:1.\n/quit\n' | "$tool" chat --device cpu --max-tokens 24 --no-stats >"$work/chat_cpu" 2>"$work/err" ||
    fail "chat --device cpu: $(cat "$work/err")"
grep -q "Psalms 23:1" "$work/chat_cpu" || fail "chat --device cpu: $(cat "$work/chat_cpu")"
expect_rc 2 "$tool" run "$model" hi --temp abc
expect_rc 2 "$tool" chat "$model" --context-policy sometimes
expect_rc 1 "$tool" run /nonexistent/model hi
grep -q "/nonexistent/model" "$work/err" || fail "load error does not name the folder"

# run: one streamed reply, stats on stderr, deterministic when greedy
expect_rc 0 "$tool" run "$model" "hello there" --max-tokens 12
cp "$work/out" "$work/run1"
grep -q "prompt [0-9]* tokens (0 cached)" "$work/err" || fail "run: no stats line: $(cat "$work/err")"
grep -Eq "reply [0-9]+ tokens, [0-9.]+ tok/s \| first token [0-9.]+ s \| stop (stop|length) \| peak memory" "$work/err" ||
    fail "run: stats line: $(cat "$work/err")"
[ -s "$work/run1" ] || fail "run printed nothing"
expect_rc 0 "$tool" run "$model" "hello there" --max-tokens 12 --no-stats
same_files "$work/out" "$work/run1" "greedy run is not deterministic"
[ ! -s "$work/err" ] || fail "--no-stats still printed: $(cat "$work/err")"
printf 'hello there\n' | "$tool" run "$model" --max-tokens 12 >"$work/out" 2>/dev/null
same_files "$work/out" "$work/run1" "prompt from stdin differs from the argument"

# a stop string taken from the middle of the reply cuts it there
stop=$($py -c "import sys; t=open(sys.argv[1],'rb').read().decode('utf-8','replace'); print(t[3:5], end='')" "$work/run1")
expect_rc 0 "$tool" run "$model" "hello there" --max-tokens 12 --stop "$stop"
$py - "$work/run1" "$work/out" "$stop" <<'PY' || fail "stop string not cut"
import sys
full = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace')
cut = open(sys.argv[2], 'rb').read().decode('utf-8', 'replace')
stop = sys.argv[3]
assert cut == full[:full.index(stop)] + "\n", (full, cut, stop)
PY
grep -q "stop stop" "$work/err" || fail "stop reason not 'stop'"

# context policies from the command line
expect_rc 1 "$tool" run "$model" "this prompt is longer than the context we allow" --ctx 16 --max-tokens 4
grep -q "context holds 16" "$work/err" || fail "too long a prompt: $(cat "$work/err")"
expect_rc 0 "$tool" run "$model" "hi" --ctx 32 --context-policy rotate --keep 4 --max-tokens 60 --var ignored=1
grep -q "tokens rotated out" "$work/err" || fail "rotate: $(cat "$work/err")"
expect_rc 2 "$tool" run "$model" "hi" --var novalue
expect_rc 0 "$tool" run "$model" "hello there" --max-tokens 12 --eos "<|im_start|>" --no-stats
same_files "$work/out" "$work/run1" "an --eos token that never comes changed the reply"
expect_rc 1 "$tool" run "$model" "hi" --eos "<|no such token|>"
grep -q "is not a token" "$work/err" || fail "unknown --eos token: $(cat "$work/err")"

# chat through a pipe: the first reply equals run's, commands work
printf 'hello there\n/set temp 0.7\n/set top_k 5\n/set\n/set nonsense 1\n/stats\n/undo\n/stats\n/system be brief\n/system\n/quit\nnot read\n' |
    "$tool" chat "$model" --max-tokens 12 >"$work/chat" 2>"$work/chat_err" || fail "chat failed: $(cat "$work/chat_err")"
head -c "$(stat -c %s "$work/run1")" "$work/chat" >"$work/chat_first"
same_files "$work/chat_first" "$work/run1" "chat's first reply differs from run's"
grep -q "^temp set to 0.7$" "$work/chat" || fail "/set temp"
grep -q "^temp 0.7, top_p 1, top_k 5," "$work/chat" || fail "/set listing: $(cat "$work/chat")"
grep -q "unknown option 'nonsense'" "$work/chat_err" || fail "/set with a bad name"
grep -q "^session: 2 messages (0 left out)" "$work/chat" || fail "/stats after one reply"
grep -q "^removed 2 messages$" "$work/chat" || fail "/undo"
grep -q "^session: 0 messages" "$work/chat" || fail "/stats after /undo"
grep -q "^be brief$" "$work/chat" || fail "/system"
grep -q "reply [0-9]* tokens" "$work/chat_err" || fail "no stats line after the chat reply"
grep -q "not read" "$work/chat" && fail "chat read past /quit"

# /save in one chat, /load in another == one continuous chat
printf 'first message\n/save %s\n/quit\n' "$work/s.bin" | "$tool" chat "$model" --max-tokens 6 --no-stats >/dev/null 2>&1
[ -s "$work/s.bin" ] || fail "/save wrote nothing"
printf '/load %s\nsecond message\n/stats\n' "$work/s.bin" |
    "$tool" chat "$model" --max-tokens 6 --no-stats >"$work/loaded" 2>&1 || fail "chat with /load failed"
grep -q "^loaded .*: 2 messages$" "$work/loaded" || fail "/load: $(cat "$work/loaded")"
printf 'first message\nsecond message\n' | "$tool" chat "$model" --max-tokens 6 --no-stats >"$work/continuous" 2>&1
$py - "$work/loaded" "$work/continuous" <<'PY' || fail "loaded session answers differently"
import sys
loaded = open(sys.argv[1], 'rb').read().split(b'\n')
continuous = open(sys.argv[2], 'rb').read()
# the reply after /load is the line after the "loaded" line; it ends the continuous output
reply = b'\n'.join(loaded[1:loaded.index(next(l for l in loaded if l.startswith(b'[prompt') or l.startswith(b'session:')))])
assert continuous.endswith(reply + b'\n'), (reply, continuous)
PY
grep -q "cached" "$work/loaded" || fail "/stats after /load"
"$make_model" "$work/other" 99
printf '/load %s\n' "$work/s.bin" | "$tool" chat "$work/other" >"$work/out" 2>&1
grep -q "saved with another model" "$work/out" || fail "loading into another model: $(cat "$work/out")"

# generate --prompt streams the text of the ids it generates
expect_rc 0 "$tool" generate --model "$model" --prompt "hello world" --max-tokens 10 --print-ids
ids=$(cat "$work/out")
expect_rc 0 "$tool" generate --model "$model" --prompt "hello world" --max-tokens 10
cp "$work/out" "$work/gen_text"
expect_rc 0 "$tool" detokenize --model "$model" $ids
same_files "$work/gen_text" "$work/out" "generate --prompt text != detokenize of its ids"
expect_rc 2 "$tool" generate --model "$model" --prompt "x" --prompt-ids 1 --max-tokens 2

# a Hub id from the cache, offline
commit=0123456789abcdef0123456789abcdef01234567
repo=$HF_HOME/hub/models--test-org--chat-model
mkdir -p "$repo/refs" "$repo/snapshots/$commit"
printf '%s' "$commit" >"$repo/refs/main"
cp "$model"/* "$repo/snapshots/$commit/"
expect_rc 0 "$tool" run test-org/chat-model "hello there" --max-tokens 12
same_files "$work/out" "$work/run1" "run with a cached Hub id"
expect_rc 0 "$tool" generate --model test-org/chat-model --prompt-ids 104,105 --max-tokens 3
expect_rc 1 "$tool" run missing-org/missing "hi"
grep -q "not in the cache" "$work/err" || fail "uncached id offline: $(cat "$work/err")"
# Ctrl-C: a reply that would never end (rotating window, EOS ignored) stops
# on SIGINT; run exits 130, chat goes on with the next line
$py - "$tool" "$model" <<'PY' || fail "Ctrl-C handling"
import signal, subprocess, sys, time
tool, model = sys.argv[1], sys.argv[2]
endless = ["--ctx", "32", "--context-policy", "rotate", "--max-tokens", "-1", "--ignore-eos"]
run = subprocess.Popen([tool, "run", model, "hi"] + endless, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(1.0)
assert run.poll() is None, "run ended by itself"
run.send_signal(signal.SIGINT)
out, err = run.communicate(timeout=30)
assert run.returncode == 130, (run.returncode, err)
assert b"stop cancelled" in err, err
chat = subprocess.Popen([tool, "chat", model] + endless, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
chat.stdin.write(b"hi\n")
chat.stdin.flush()
time.sleep(1.0)
assert chat.poll() is None, "chat ended by itself"
chat.send_signal(signal.SIGINT)
time.sleep(0.3)
out, err = chat.communicate(b"/stats\n/quit\n", timeout=30)
assert chat.returncode == 0, (chat.returncode, err)
assert b"(reply stopped)" in err, err
assert b"session: 2 messages" in out, out[-300:]
PY
echo "chat tools: all checks passed"
