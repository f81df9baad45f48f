#!/usr/bin/env bash
# MATE-KD on MNLI, BERT setting: teacher BERT-base (fine-tuned), student DistilBERT-base-uncased,
# generator BERT-Mini MLM (uncased_L-4_H-256_A-4). The released script's flags, unchanged, plus
# --generator_path, --method mate-kd and --warmup_steps 2138 (the released code hard-codes that warm-up).
# Unlike the released code, --per_gpu_train_batch_size 32 really trains with batch 32 (it trained with 8).
#
# Layout (SPEC), each folder overridable by an environment variable:
#   $GLUE_DIR/MNLI                          GLUE MNLI TSVs            (GLUE_DIR, default glue_data)
#   $CKPTS/teachers_bert_base/MNLI          fine-tuned teacher        (CKPTS, default ckpts)
#   $BERT_MODELS/distilbert-base            student initialisation    (BERT_MODELS, default bert_models)
#   $BERT_MODELS/uncased_L-4_H-256_A-4      generator (masked LM)
#   $OUTPUT_DIR                             results (default $CKPTS/students_distilbert/MNLI)
# EXTRA_ARGS and any arguments to this script are appended to the command line (later flags win).
# MATE_KD is the command to run (default mate-kd; e.g. MATE_KD="python -m mate_kd").
set -euo pipefail

GLUE_DIR=${GLUE_DIR:-glue_data}
BERT_MODELS=${BERT_MODELS:-bert_models}
CKPTS=${CKPTS:-ckpts}
OUTPUT_DIR=${OUTPUT_DIR:-$CKPTS/students_distilbert/MNLI}
TASK=MNLI
DATA=$GLUE_DIR/$TASK
TEACHER=$CKPTS/teachers_bert_base/$TASK
STUDENT=$BERT_MODELS/distilbert-base
GENERATOR=$BERT_MODELS/uncased_L-4_H-256_A-4
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require "$DATA" train.tsv "GLUE MNLI data" \
    "Put the original GLUE MNLI files (train.tsv, dev_matched.tsv, dev_mismatched.tsv) in $DATA/, or set GLUE_DIR to the folder holding MNLI/."
require "$TEACHER" config.json "fine-tuned BERT-base MNLI teacher" \
    "Put a save_pretrained classifier directory there (make one with: scripts/finetune_teacher.sh MNLI bert), or set CKPTS to the folder holding teachers_bert_base/."
require "$STUDENT" config.json "student DistilBERT-base-uncased" \
    "Put distilbert-base-uncased there (with hub access: hf download distilbert/distilbert-base-uncased --local-dir $STUDENT), or set BERT_MODELS."
require "$GENERATOR" config.json "generator BERT-Mini masked LM" \
    "Put BERT-Mini there (with hub access: hf download google/bert_uncased_L-4_H-256_A-4 --local-dir $GENERATOR), or set BERT_MODELS."
if (( missing )); then
    echo "Expected layout (SPEC): $GLUE_DIR/MNLI, $CKPTS/teachers_bert_base/MNLI, $BERT_MODELS/{distilbert-base,uncased_L-4_H-256_A-4}." >&2
    exit 2
fi

set -x
"${CMD[@]}" train --model_type distilbert --model_name_or_path "$STUDENT" --task_name "$TASK" \
    --do_train --evaluate_during_training --do_lower_case --data_dir "$DATA" --max_seq_length 128 \
    --per_gpu_train_batch_size 32 --learning_rate 2e-5 --num_train_epochs 30 --output_dir "$OUTPUT_DIR" \
    --overwrite_output_dir --logging_steps 500 --save_steps 500 --teacher_path "$TEACHER" --seed 42 \
    --generator_path "$GENERATOR" --method mate-kd --warmup_steps 2138 \
    "${EXTRA[@]}" "$@"
