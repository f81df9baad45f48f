#!/usr/bin/env bash
# The whole pipeline in a few minutes on a CPU, offline: tiny random-init models on the bundled SST-2
# sample (teacher fine-tuning, then kd and mate-kd distillation), ending with a results table.
# Installs this package first (pip install -e .) when the mate-kd command is missing.
# Arguments go to `mate-kd quickstart` (--output_dir DIR, --family bert|roberta, --seed N, --fast).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v mate-kd > /dev/null 2>&1; then
    echo "mate-kd is not installed: running pip install -e $ROOT" >&2
    python -m pip install -e "$ROOT"
fi
exec mate-kd quickstart "$@"
