#!/usr/bin/env bash
# Stock Coraza @rx against fastop in the rule-engine stage (issue 8):
# runs BenchmarkEngines (package waf) REPS times, each run measuring both
# engines on the three bench/ workloads back to back, and prints per
# workload the median ns/op and CPU ns/op of each and their ratios.
# On a shared machine compare the ratios, not the absolute numbers.
#
#   bash bench/fast-ratio.sh              # REPS=5, BENCHTIME=3s
#   REPS=7 BENCHTIME=5s bash bench/fast-ratio.sh
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=${REPS:-5}
BENCHTIME=${BENCHTIME:-3s}
OUT=$(mktemp /tmp/fast-ratio.XXXXXX)
trap 'rm -f "$OUT"' EXIT

cd "$ROOT"
go test -c -o "$OUT.test" ./waf
trap 'rm -f "$OUT" "$OUT.test"' EXIT
for ((i = 1; i <= REPS; i++)); do
  # A fresh process per repetition: the stock engine can only be compiled
  # before fastop registers itself.
  (cd waf && "$OUT.test" -test.run '^$' -test.bench '^BenchmarkEngines$' -test.benchtime "$BENCHTIME" -test.benchmem) \
    | grep '^BenchmarkEngines/' >> "$OUT"
  echo "rep $i/$REPS done" >&2
done

# Lines: BenchmarkEngines/<workload>/<engine>-N  iters  X ns/op  Y cpu-ns/op  Z B/op  W allocs/op
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    split($1, p, "/"); w = p[2]; e = p[3]; sub(/-[0-9]+$/, "", e)
    for (k = 3; k < NF; k++) {
      if ($(k + 1) == "ns/op") ns[w, e] = ns[w, e] " " $k
      if ($(k + 1) == "cpu-ns/op") cpu[w, e] = cpu[w, e] " " $k
      if ($(k + 1) == "allocs/op") al[w, e] = al[w, e] " " $k
    }
    if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
  }
  END {
    printf "| workload | stock ms/op | fast ms/op | ratio | stock CPU ms/op | fast CPU ms/op | CPU ratio | allocs/op stock / fast |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= nw; i++) {
      w = order[i]
      s = median(ns[w, "stock"]); f = median(ns[w, "fast"])
      sc = median(cpu[w, "stock"]); fc = median(cpu[w, "fast"])
      printf "| %s | %.2f | %.2f | %.1fx | %.2f | %.2f | %.1fx | %d / %d |\n", w, s / 1e6, f / 1e6, s / f, sc / 1e6, fc / 1e6, sc / fc, median(al[w, "stock"]), median(al[w, "fast"])
    }
  }' "$OUT"
