#!/usr/bin/env bash
# MATE-KD on MNLI, RoBERTa setting: teacher RoBERTa-large (fine-tuned), student DistilRoBERTa-base,
# generator DistilRoBERTa-base's masked LM (the same directory serves both). The released script's flags,
# unchanged, plus --generator_path, --method mate-kd and --warmup_steps 2138 (the released code hard-codes
# that warm-up). Unlike the released code, --per_gpu_train_batch_size 32 really trains with batch 32 (it
# trained with 8). The MNLI label order is taken from the teacher's config. No --do_lower_case: RoBERTa
# is cased (the flag is accepted but the tokenizer's own setting is always used).
#
# Layout (SPEC), each folder overridable by an environment variable:
#   $GLUE_DIR/MNLI                          GLUE MNLI TSVs            (GLUE_DIR, default glue_data)
#   $CKPTS/teachers_roberta_large/MNLI      fine-tuned teacher        (CKPTS, default ckpts)
#   $BERT_MODELS/distilroberta-base         student and generator     (BERT_MODELS, default bert_models)
#   $OUTPUT_DIR                             results (default $CKPTS/students_distilroberta/MNLI)
# EXTRA_ARGS and any arguments to this script are appended to the command line (later flags win).
# MATE_KD is the command to run (default mate-kd; e.g. MATE_KD="python -m mate_kd").
set -euo pipefail

GLUE_DIR=${GLUE_DIR:-glue_data}
BERT_MODELS=${BERT_MODELS:-bert_models}
CKPTS=${CKPTS:-ckpts}
OUTPUT_DIR=${OUTPUT_DIR:-$CKPTS/students_distilroberta/MNLI}
TASK=MNLI
DATA=$GLUE_DIR/$TASK
TEACHER=$CKPTS/teachers_roberta_large/$TASK
STUDENT=$BERT_MODELS/distilroberta-base
GENERATOR=$BERT_MODELS/distilroberta-base
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require "$DATA" train.tsv "GLUE MNLI data" \
    "Put the original GLUE MNLI files (train.tsv, dev_matched.tsv, dev_mismatched.tsv) in $DATA/, or set GLUE_DIR to the folder holding MNLI/."
require "$TEACHER" config.json "fine-tuned RoBERTa-large MNLI teacher" \
    "Put a save_pretrained classifier directory there (make one with: scripts/finetune_teacher.sh MNLI roberta), or set CKPTS to the folder holding teachers_roberta_large/."
require "$STUDENT" config.json "student and generator DistilRoBERTa-base" \
    "Put distilroberta-base (its masked-LM checkpoint) there (with hub access: hf download distilbert/distilroberta-base --local-dir $STUDENT), or set BERT_MODELS."
if (( missing )); then
    echo "Expected layout (SPEC): $GLUE_DIR/MNLI, $CKPTS/teachers_roberta_large/MNLI, $BERT_MODELS/distilroberta-base." >&2
    exit 2
fi

set -x
"${CMD[@]}" train --model_type roberta --model_name_or_path "$STUDENT" --task_name "$TASK" \
    --do_train --evaluate_during_training --data_dir "$DATA" --max_seq_length 128 \
    --per_gpu_train_batch_size 32 --learning_rate 2e-5 --num_train_epochs 30 --output_dir "$OUTPUT_DIR" \
    --overwrite_output_dir --logging_steps 500 --save_steps 500 --teacher_path "$TEACHER" --seed 42 \
    --generator_path "$GENERATOR" --method mate-kd --warmup_steps 2138 \
    "${EXTRA[@]}" "$@"
