#!/usr/bin/env bash
# The main job: sets up (Debian packages), builds, and runs t5g on a checkpoint folder.
#   scripts/run.sh MODEL_DIR [t5g generate options...]
# Without MODEL_DIR it runs the tiny reference checkpoint shipped with the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
MODEL=${1:-tests/data/vectors/tiny/model}
shift || true
if [ $# -eq 0 ]; then set -- --input-ids 2,17,33,45,99 --max-new-tokens 16 --json; fi
exec build/bin/t5g generate -m "$MODEL" "$@"
