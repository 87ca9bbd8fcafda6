#!/usr/bin/env bash
# Scans Portcullis's HTTPS listener with testssl.sh (Debian package) and
# fails on any HIGH or CRITICAL finding. Everything runs on 127.0.0.1.
#
#   bash scripts/testssl.sh              # intermediate policy (the default)
#   POLICY=modern bash scripts/testssl.sh
#
# The certificate comes from a throwaway CA made here and handed to
# testssl.sh with --add-ca, so the chain of trust is checked too. Like a
# public CA's, the leaf lives 90 days and names a CRL location (nothing is
# served there; testssl only checks that revocation information exists).
set -euo pipefail
cd "$(dirname "$0")/.."

POLICY=${POLICY:-intermediate}
PORT=${PORT:-18443}
UPSTREAM_PORT=${UPSTREAM_PORT:-18081}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if ! command -v testssl >/dev/null && ! command -v testssl.sh >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
fi
testssl=$(command -v testssl || command -v testssl.sh)

echo "[testssl] building portcullis and the test upstream"
go build -o "$work/portcullis" ./cmd/portcullis
go build -o "$work/upstream" ./bench/upstream

# A CA and a leaf for localhost, as an operator's certbot would leave them.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/ca.key" -subj "/CN=Portcullis testssl CA" -days 730 -out "$work/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/leaf.ec" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$work/leaf.ec" -out "$work/leaf.key"
openssl req -new -key "$work/leaf.key" -subj "/CN=localhost" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\ncrlDistributionPoints=URI:http://127.0.0.1/testssl-ca.crl\n' > "$work/ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 90 -extfile "$work/ext" -out "$work/leaf.crt" 2>/dev/null
cat "$work/leaf.crt" "$work/ca.pem" > "$work/chain.pem"

cat > "$work/portcullis.yaml" <<YAML
listeners:
  - address: "127.0.0.1:$PORT"
    protocol: https
upstreams:
  - name: app
    targets: ["http://127.0.0.1:$UPSTREAM_PORT"]
tls:
  policy: $POLICY
sites:
  - hosts: ["localhost"]
    tls:
      certificate: files
      cert_file: $work/chain.pem
      key_file: $work/leaf.key
      hsts:
        max_age: 8760h
    routes:
      - path: /
        upstream: app
audit:
  file: $work/audit.jsonl
YAML

"$work/upstream" -listen "127.0.0.1:$UPSTREAM_PORT" >/dev/null 2>&1 & pids+=($!)
(cd "$work" && ./portcullis run -c portcullis.yaml) >"$work/portcullis.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null --cacert "$work/ca.pem" "https://localhost:$PORT/" && break
  sleep 0.1
done

echo "[testssl] scanning https://localhost:$PORT (policy $POLICY); this takes a minute or two"
timeout 600 "$testssl" --quiet --color 0 --warnings off --ip 127.0.0.1 --add-ca "$work/ca.pem" \
  --severity LOW --jsonfile "$work/findings.json" "https://localhost:$PORT" >"$work/testssl.out" 2>&1 || true

python3 - "$work/findings.json" <<'PY'
import json, sys, collections
findings = json.load(open(sys.argv[1]))
by = collections.defaultdict(list)
for f in findings:
    by[f.get("severity", "")].append(f)
order = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
print("[testssl] findings by severity: " + ", ".join(f"{s} {len(by[s])}" for s in order))
for s in order:
    for f in by[s]:
        print(f"  {s:8} {f['id']}: {f['finding']}")
sys.exit(1 if by["CRITICAL"] or by["HIGH"] else 0)
PY
