#!/usr/bin/env bash
# Fine-tune the teacher that MATE-KD distils: scripts/finetune_teacher.sh TASK [bert|roberta] [extra flags]
#   bert:    $BERT_MODELS/bert-base-uncased -> $CKPTS/teachers_bert_base/TASK
#   roberta: $BERT_MODELS/roberta-large     -> $CKPTS/teachers_roberta_large/TASK
# TASK is a GLUE task (MNLI, sst-2, ...); data come from $GLUE_DIR/TASK (GLUE_DIR, default glue_data;
# BERT_MODELS default bert_models; CKPTS default ckpts). TEACHER_INIT overrides the initial model.
#
# Hyper-parameters are the usual GLUE fine-tuning ones (BERT and RoBERTa papers), not from the MATE-KD
# release, which ships no teachers: lr 2e-5, 3 epochs, batch 32, max length 128, linear decay with 10%
# warm-up (6% for RoBERTa, as in its paper), seed 42, dev evaluation every 500 steps. RoBERTa-large on the
# small tasks (RTE, MRPC, STS-B, CoLA) sometimes fails to leave chance at 2e-5: rerun with
# `--learning_rate 1e-5` or another `--seed`.
#
# The run (logs, best and final models) goes to $RUN_DIR (default $CKPTS/runs/teacher_<family>_TASK); its
# best-on-dev model is then copied to the teacher directory above, the one the distillation scripts read.
# EXTRA_ARGS and the extra flags are appended to the command line (later flags win).
# MATE_KD is the command to run (default mate-kd; e.g. MATE_KD="python -m mate_kd").
set -euo pipefail

usage="usage: $0 TASK [bert|roberta] [extra mate-kd train flags]  (TASK: CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI)"
if (( $# < 1 )); then echo "$usage" >&2; exit 2; fi
case "$(echo "$1" | tr '[:upper:]' '[:lower:]' | tr -d '_-')" in
    cola) TASK=CoLA ;; sst2) TASK=SST-2 ;; mrpc) TASK=MRPC ;; stsb) TASK=STS-B ;; qqp) TASK=QQP ;;
    mnli) TASK=MNLI ;; qnli) TASK=QNLI ;; rte) TASK=RTE ;; wnli) TASK=WNLI ;;
    *) echo "error: unknown GLUE task '$1' (AX has no training data: its teacher is the MNLI one)." >&2
       echo "$usage" >&2; exit 2 ;;
esac
shift
FAMILY=bert
if (( $# )) && [[ $1 != -* ]]; then FAMILY=$1; shift; fi

GLUE_DIR=${GLUE_DIR:-glue_data}
BERT_MODELS=${BERT_MODELS:-bert_models}
CKPTS=${CKPTS:-ckpts}
case "$FAMILY" in
    bert) INIT=${TEACHER_INIT:-$BERT_MODELS/bert-base-uncased}; NAME=bert_base; WARMUP=0.1
          HUB=google-bert/bert-base-uncased ;;
    roberta) INIT=${TEACHER_INIT:-$BERT_MODELS/roberta-large}; NAME=roberta_large; WARMUP=0.06
             HUB=FacebookAI/roberta-large ;;
    *) echo "error: unknown family '$FAMILY': use bert or roberta." >&2; echo "$usage" >&2; exit 2 ;;
esac
DATA=$GLUE_DIR/$TASK
TEACHER=$CKPTS/teachers_$NAME/$TASK
RUN_DIR=${RUN_DIR:-$CKPTS/runs/teacher_${NAME}_$TASK}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require "$DATA" train.tsv "GLUE $TASK data" \
    "Put the original GLUE $TASK files (train.tsv, dev*.tsv) in $DATA/, or set GLUE_DIR to the folder holding $TASK/."
require "$INIT" config.json "pre-trained teacher initialisation" \
    "Put the pre-trained model there (with hub access: hf download $HUB --local-dir $INIT), or set BERT_MODELS or TEACHER_INIT."
if (( missing )); then exit 2; fi

(
    set -x
    "${CMD[@]}" train --method finetune --model_name_or_path "$INIT" --task_name "$TASK" --data_dir "$DATA" \
        --do_train --evaluate_during_training --max_seq_length 128 --per_device_train_batch_size 32 \
        --learning_rate 2e-5 --num_train_epochs 3 --warmup_ratio "$WARMUP" --logging_steps 500 --save_steps 500 \
        --seed 42 --output_dir "$RUN_DIR" --overwrite_output_dir "${EXTRA[@]}" "$@"
)
mkdir -p "$TEACHER"
cp -R "$RUN_DIR/best/." "$TEACHER/"
echo "Teacher (best on dev) saved to $TEACHER; run logs and results in $RUN_DIR."
