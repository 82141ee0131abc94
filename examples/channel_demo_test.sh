#!/bin/sh
# examples/channel_demo_test.sh DEMO: the README's two terminals, as one script (ctest
# example.channel_demo): a receiver waiting in the background, two senders, then remove.
set -eu
demo=$1
name=lockstep-demo-test-$$
out=$(mktemp)
trap 'rm -f "$out"; "$demo" remove "$name" 2>/dev/null || true' EXIT

"$demo" receive "$name" -n 3 >"$out" &
receiver=$!
"$demo" send "$name" hello from terminal 2
printf 'line one\nline two\n' | "$demo" send "$name"
wait "$receiver"

expected=$(printf 'hello from terminal 2\nline one\nline two')
if [ "$(cat "$out")" != "$expected" ]; then
  echo "channel_demo: the receiver printed:" >&2
  cat "$out" >&2
  exit 1
fi
"$demo" remove "$name"
if "$demo" remove "$name" 2>/dev/null; then
  echo "channel_demo: a second remove succeeded" >&2
  exit 1
fi
"$demo" bogus "$name" 2>/dev/null && exit 1 || [ $? -eq 2 ]
echo "channel_demo: 3 messages crossed, remove works"
