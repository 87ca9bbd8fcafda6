#!/usr/bin/env bash
# Upload soak of issue 8, proof item 4: 1,000 × 10 MiB uploads through
# Portcullis with body inspection on; prints the server's RSS and Go heap
# before, during and after. Flags go to bench/uploads (see bench/README.md,
# "Uploads"), e.g.  bash bench/uploads.sh -n 200 -c 2 -kind multipart
#
# Bounded by TIMEOUT (default 45m): the program stops, kills the server it
# started and removes its temp dir. Everything listens on 127.0.0.1.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p bench/.bin
timeout 900 go build -o bench/.bin/uploads ./bench/uploads
timeout 900 go build -o bench/.bin/portcullis-uploads ./cmd/portcullis
exec timeout --signal=INT --kill-after=30s "${TIMEOUT:-45m}" \
  bench/.bin/uploads -bin bench/.bin/portcullis-uploads "$@"
