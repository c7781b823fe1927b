#!/usr/bin/env bash
# Instructions per training step of the user path (user_step.py) for one or more checkouts,
# counted by callgrind: a 120-batch run minus a 20-batch run, divided by the 100 x 7 steps that
# differ (one warm-up and five timed passes, plus the import and set-up that cancel out).
#   bash benchmarks/instructions.sh M DTYPE label=/path/to/checkout ...
set -euo pipefail
m=$1; dt=$2; shift 2
here="$(cd "$(dirname "$0")" && pwd)"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
for spec in "$@"; do
  label=${spec%%=*}; path=${spec#*=}
  ir() {
    PYTHONPATH="$path" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      python "$here/user_step.py" "$m" "$dt" "$1" 2>&1 | grep -o "Collected : [0-9]*" | grep -o "[0-9]*"
  }
  a=$(ir $((m * 20))); b=$(ir $((m * 120)))
  echo "$label: $(((b - a) / (100 * 7))) instructions per step"
done
