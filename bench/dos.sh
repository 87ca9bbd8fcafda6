#!/usr/bin/env bash
# The denial-of-service bench of issue 18: each attack against a fresh
# portcullis with the default configuration, a victim on 127.0.0.2, the
# attackers on 127.0.0.1 (and 127.0.1.0/24). Flags go to bench/dos (see
# bench/README.md, "Denial of service"), e.g.
#   bash bench/dos.sh -only keepalive,slow-readers -duration 10s
#
# Bounded by TIMEOUT (default 30m): the program stops, kills what it started
# and removes its temp dir. Everything listens on loopback. Needs prlimit
# (util-linux) for the descriptor attacks.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p bench/.bin
timeout 900 go build -o bench/.bin/dos ./bench/dos
timeout 900 go build -o bench/.bin/portcullis-dos ./cmd/portcullis
exec timeout --signal=INT --kill-after=30s "${TIMEOUT:-30m}" \
  bench/.bin/dos -bin bench/.bin/portcullis-dos "$@"
