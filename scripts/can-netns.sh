#!/usr/bin/env bash
# Exit 0 when this machine lets us create (and remove) a network namespace with a veth pair.
set -u
name="conntls-probe-$$"
ip netns add "$name" 2>/dev/null || exit 1
ok=0
ip -n "$name" link add "cp$$a" type veth peer name "cp$$b" 2>/dev/null || ok=1
ip netns del "$name" 2>/dev/null
exit $ok
