#!/usr/bin/env bash
# ipc/tests/lockstep_mq_test.sh TOOL: drives the lockstep-mq shell tool as a script would:
# create, send with priorities, receive in priority order (and FIFO within one), info, list,
# remove, another user's queue refused without --any-owner, and every documented exit status
# (usage 2, timeout 3, no such queue 4, exists 5, other errors 1). Each check names itself;
# the first failure stops the run with status 1.
set -uo pipefail
tool=$1
q="lockstep-test-$$-tool"
other="lockstep-test-$$-notaqueue"
trap '"$tool" remove "$q" >/dev/null 2>&1; rm -f "/dev/shm/$other"' EXIT

n=0
check() {  # check DESCRIPTION EXPECTED-STATUS COMMAND...: runs it, output in $out/$err
  local what=$1 want=$2
  shift 2
  out=$("$@" 2>/tmp/lockstep_mq_test.$$) && got=0 || got=$?
  err=$(cat /tmp/lockstep_mq_test.$$)
  rm -f /tmp/lockstep_mq_test.$$
  n=$((n + 1))
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, want $want"
    echo "  stdout: $out"
    echo "  stderr: $err"
    exit 1
  fi
}
expect() {  # expect DESCRIPTION ACTUAL WANTED
  n=$((n + 1))
  if [ "$2" != "$3" ]; then
    printf 'FAIL: %s:\n  got:  %q\n  want: %q\n' "$1" "$2" "$3"
    exit 1
  fi
}

check "--help" 0 "$tool" --help
expect "--help names every command" "$(grep -c -E '^  (create|send|receive|info|remove|list)' <<<"$out")" 6
check "no command" 2 "$tool"
check "unknown command" 2 "$tool" frobnicate
check "unknown option" 2 "$tool" create "$q" --bogus 1
check "bad number" 2 "$tool" create "$q" --max-msgs ten
check "bad priority" 2 "$tool" send "$q" --priority 32768 x
check "bad duration" 2 "$tool" receive "$q" --timeout soon
check "missing queue: receive" 4 "$tool" receive "$q" --timeout 0
check "missing queue: info" 4 "$tool" info "$q"
check "missing queue: remove" 4 "$tool" remove "$q"

check "create" 0 "$tool" create "$q" --max-msgs 3 --msg-size 16 --mode 0640
check "create again" 5 "$tool" create "$q"
expect "mode" "$(stat -c %a "/dev/shm/$q")" 640
check "bad name" 1 "$tool" create "a/b"

check "send low" 0 "$tool" send "$q" --priority 1 first-low
check "send high" 0 "$tool" send "$q" --priority 9 high
check "send low from stdin" 0 bash -c "printf 'second-low' | '$tool' send '$q' --priority 1 -"
check "full: send times out" 3 "$tool" send "$q" --timeout 10ms x
check "oversize message" 1 "$tool" send "$q" --timeout 0 "seventeen bytes!!"
check "info" 0 "$tool" info "$q"
expect "info: max_msgs" "$(grep '^max_msgs:' <<<"$out")" "max_msgs: 3"
expect "info: msg_size" "$(grep '^msg_size:' <<<"$out")" "msg_size: 16"
expect "info: messages" "$(grep '^messages:' <<<"$out")" "messages: 3"
expect "info: per priority" "$(grep '^priority' <<<"$out" | tr '\n' ';')" "priority 9: 1;priority 1: 2;"
check "list" 0 "$tool" list
expect "list shows the queue" "$(grep "^$q" <<<"$out")" "$q	message_queue	3	16"

check "receive in priority order, FIFO within one" 0 "$tool" receive "$q" --count 3 --show-priority
expect "received" "$out" "$(printf '9\thigh\n1\tfirst-low\n1\tsecond-low')"
check "empty: receive times out" 3 "$tool" receive "$q" --timeout 20ms
check "send after drain" 0 "$tool" send "$q" again
check "fewer than --count" 3 "$tool" receive "$q" --count 2 --timeout 0
expect "the one that was there" "$out" "again"

# A blocking receive in the background is woken by a send from another process.
"$tool" receive "$q" --timeout 10s >/tmp/lockstep_mq_bg.$$ &
bg=$!
sleep 0.2
check "send to a sleeping receiver" 0 "$tool" send "$q" --priority 4 wake
wait "$bg" && bgst=0 || bgst=$?
expect "background receive status" "$bgst" 0
expect "background receive got it" "$(cat /tmp/lockstep_mq_bg.$$)" "wake"
rm -f /tmp/lockstep_mq_bg.$$

# Not a queue: a file of the right size with other bytes is refused, and not removed.
head -c 4096 /dev/zero | tr '\0' 'x' >"/dev/shm/$other"
check "info on a foreign segment" 1 "$tool" info "$other"
check "remove refuses a foreign segment" 1 "$tool" remove "$other"
expect "foreign segment still there" "$(test -e "/dev/shm/$other" && echo yes)" yes

# Another user's queue: refused unless --any-owner (as root, hand the file to "nobody").
if [ "$(id -u)" = 0 ]; then
  chown 65534:65534 "/dev/shm/$q"
  check "another user's queue: info refused" 1 "$tool" info "$q"
  expect "refusal names the owner" "$(grep -c 'owned by uid 65534' <<<"$err")" 1
  check "another user's queue: send refused" 1 "$tool" send "$q" --timeout 0 x
  check "another user's queue: remove refused" 1 "$tool" remove "$q"
  check "another user's queue with --any-owner: info" 0 "$tool" info "$q" --any-owner
  expect "info --any-owner: owner" "$(grep '^owner:' <<<"$out")" "owner: 65534"
  chown 0:0 "/dev/shm/$q"
else
  echo "lockstep-mq: skipped the other-owner checks: not root (chown needs it)"
fi

check "remove" 0 "$tool" remove "$q"
check "removed" 4 "$tool" info "$q"
echo "lockstep-mq: $n checks passed"
