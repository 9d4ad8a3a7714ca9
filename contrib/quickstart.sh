#!/usr/bin/env bash
# Fresh machine to running demo: install what is missing, build, then run
# tb-demo (two processes doing put/get/atomics over the software link).
# Arguments are passed to tb-demo.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if ! contrib/setup.sh; then
    [ -f src/tools/tb_demo.cpp ] ||
        echo "quickstart: src/tools/tb_demo.cpp does not exist yet, so there is no demo to build" >&2
    exit 1
fi

demo=build/src/tools/tb-demo
if [ ! -x "$demo" ]; then
    echo "quickstart: $demo was not built (is src/tools/tb_demo.cpp there yet?)" >&2
    exit 1
fi
exec "$demo" "$@"
