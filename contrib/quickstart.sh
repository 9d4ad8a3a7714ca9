#!/usr/bin/env bash
# Fresh machine to the main job: install what is missing, build, then run
# contrib/main-job.sh over the software link: tb-demo, ucx_perftest over tb
# and an MPI job over tb.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

contrib/setup.sh
exec contrib/main-job.sh "$@"
