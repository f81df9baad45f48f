#!/usr/bin/env bash
# Run one config: scripts/run_task.sh configs/bert/mnli.yaml [extra mate-kd train flags]
#
# Configs name paths relative to the SPEC layout: glue_data/..., bert_models/..., ckpts/... . This script
# moves each of them under its environment variable and passes it as a flag after --config (flags beat the
# config), so configs stay portable and hold only mate-kd settings:
#   glue_data/X   -> $GLUE_DIR/X      (default glue_data)
#   bert_models/X -> $BERT_MODELS/X   (default bert_models)
#   ckpts/X       -> $CKPTS/X         (default ckpts)
#   output_dir    -> $OUTPUT_DIR when set
# Each such path must exist before anything heavy starts (unless the flag is given again on the command line).
# EXTRA_ARGS and the extra flags are appended (later flags win). MATE_KD is the command to run (default
# mate-kd; e.g. MATE_KD="python -m mate_kd"); PYTHON (default python) reads the config.
set -euo pipefail

if (( $# < 1 )) || [[ ! -f $1 ]]; then
    echo "usage: $0 CONFIG.yaml [extra mate-kd train flags]  (config ${1:-not given} not found; see configs/)" >&2
    exit 2
fi
CONFIG=$1
shift
read -r -a CMD <<< "${MATE_KD:-mate-kd}"
read -r -a EXTRA <<< "${EXTRA_ARGS:-}"

flags=$(GLUE_DIR=${GLUE_DIR:-glue_data} BERT_MODELS=${BERT_MODELS:-bert_models} CKPTS=${CKPTS:-ckpts} \
        OUTPUT_DIR=${OUTPUT_DIR:-} "${PYTHON:-python}" - "$CONFIG" "${EXTRA[@]}" "$@" <<'PY'
import os, sys
import yaml

config, given = sys.argv[1], {a.split("=", 1)[0] for a in sys.argv[2:]}
settings = yaml.safe_load(open(config, encoding="utf-8")) or {}
roots = {"glue_data": "GLUE_DIR", "bert_models": "BERT_MODELS", "ckpts": "CKPTS"}
inputs = {"data_dir": "train.tsv", "model_name_or_path": "config.json", "teacher_path": "config.json",
          "generator_path": "config.json", "tokenizer_name": None}
flags, missing = [], []
for key in (*inputs, "output_dir"):
    value = settings.get(key)
    if not isinstance(value, str):
        continue
    root, _, rest = value.partition("/")
    if root in roots and rest:
        value = os.path.join(os.environ[roots[root]], rest)
    if key == "output_dir" and os.environ["OUTPUT_DIR"]:
        value = os.environ["OUTPUT_DIR"]
    flags += [f"--{key}", value]
    probe = inputs.get(key)
    if probe and f"--{key}" not in given and not os.path.isfile(os.path.join(value, probe)):
        env = roots.get(root, "the config")
        missing.append(f"error: {config}: {key} {value}/{probe} not found. Put it there (SPEC layout: "
                       f"glue_data/TASK, bert_models/MODEL, ckpts/teachers_*/TASK), set {env}, or pass --{key}.")
if missing:
    sys.exit("\n".join(missing))
print("\n".join(flags))
PY
)
FLAGS=()
if [[ -n $flags ]]; then mapfile -t FLAGS <<< "$flags"; fi

set -x
"${CMD[@]}" train --config "$CONFIG" "${FLAGS[@]}" "${EXTRA[@]}" "$@"
