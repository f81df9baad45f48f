"""scripts/run_cpu_campaign.sh: the bookkeeping stages that carry a campaign across sessions and machines."""

import json
import os
import shutil
import subprocess

import pytest

from mate_kd.tiny import build_tiny_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "run_cpu_campaign.sh")
RUN = "campaign/SST-2/runs/SST-2/kd/seed1"


def _stage(*args, **env):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True,
                          env={**os.environ, **{k: str(v) for k, v in env.items()}})


def _write(path, text="{}"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def work(tmp_path):
    """A campaign directory with a finished generator and one finished run, weights and checkpoint included."""
    work = tmp_path / "work"
    _write(f"{work}/generator/mlm_results.json", json.dumps({"dev_after": {"loss": 5.07, "accuracy": 0.2568}}))
    _write(f"{work}/generator/model.safetensors", "weights")
    _write(f"{work}/{RUN}/eval_results.json", json.dumps({"best": {"step": 100}}))
    _write(f"{work}/{RUN}/log.jsonl", '{"step": 100}\n')
    _write(f"{work}/{RUN}/generator_drift.json", json.dumps({"distinct_top1": 1}))
    _write(f"{work}/{RUN}/best/model.safetensors", "weights")
    _write(f"{work}/{RUN}/checkpoints/step-00000100/eval_results.json")
    return work


def test_sync_needs_a_block_and_writes_nothing_without_one(work, tmp_path):
    result = _stage("sync", WORK=work)
    assert result.returncode == 2 and "set BLOCK" in result.stderr and "Traceback" not in result.stderr
    assert not (work / "machine.json").exists()


def test_sync_copies_small_files_and_the_machine_only(work, tmp_path):
    results = tmp_path / "results"
    result = _stage("sync", WORK=work, RESULTS=results)
    assert result.returncode == 0, result.stderr
    copied = sorted(os.path.relpath(os.path.join(d, f), results) for d, _, fs in os.walk(results) for f in fs)
    assert copied == ["campaign/SST-2/runs/SST-2/kd/seed1/eval_results.json",
                      "campaign/SST-2/runs/SST-2/kd/seed1/generator_drift.json",
                      "campaign/SST-2/runs/SST-2/kd/seed1/log.jsonl", "generator/mlm_results.json", "machine.json"]
    machine = json.loads((results / "machine.json").read_text())
    assert machine["cpu"] and machine["torch"].startswith("2.") and machine["torch_cpu_capability"]


def test_sync_never_replaces_a_recorded_file_and_says_which_it_kept(work, tmp_path):
    results = tmp_path / "results"
    assert _stage("sync", WORK=work, RESULTS=results).returncode == 0
    recorded = (results / RUN / "log.jsonl").read_text()
    _write(f"{work}/{RUN}/log.jsonl", '{"step": 100, "elapsed_s": 2}\n')  # a rebuild: the same run, other times
    _write(f"{work}/generator/mlm_log.jsonl", '{"step": 0}\n')            # a file the record lacks
    result = _stage("sync", WORK=work, RESULTS=results)
    assert result.returncode == 0, result.stderr
    assert (results / RUN / "log.jsonl").read_text() == recorded
    assert f"kept 1 recorded files that differ from {work}'s" in result.stdout
    assert f"{RUN}/log.jsonl" in result.stdout and "synced 1 run files" in result.stdout
    assert (results / "generator" / "mlm_log.jsonl").read_text() == '{"step": 0}\n'


def test_restore_refuses_a_rebuilt_generator_that_differs_and_copies_nothing(work, tmp_path):
    results = tmp_path / "results"
    assert _stage("sync", WORK=work, RESULTS=results).returncode == 0
    fresh = tmp_path / "fresh"
    _write(f"{fresh}/generator/mlm_results.json", json.dumps({"dev_after": {"loss": 5.0700001, "accuracy": 0.2568}}))
    result = _stage("restore", WORK=fresh, RESULTS=results)
    assert result.returncode != 0 and "differs from the recorded one" in result.stderr
    assert "start a new block" in result.stderr and "Traceback" not in result.stderr
    assert not (fresh / "campaign").exists()

    _write(f"{fresh}/generator/mlm_results.json", (results / "generator" / "mlm_results.json").read_text())
    result = _stage("restore", WORK=fresh, RESULTS=results)
    assert result.returncode == 0 and "restored 1 finished runs" in result.stdout
    assert (fresh / RUN / "eval_results.json").read_text() == (work / RUN / "eval_results.json").read_text()


def test_drift_without_runs_or_generator_says_so_and_writes_nothing(tmp_path):
    result = _stage("drift", WORK=tmp_path / "work")
    assert result.returncode == 2 and "has no generator or no campaign runs yet" in result.stderr
    assert not (tmp_path / "work").exists()


def test_an_unknown_stage_prints_the_usage(tmp_path):
    result = _stage("nonsense", WORK=tmp_path)
    assert result.returncode == 2 and "scripts/run_cpu_campaign.sh summary TASK METHODS SEEDS" in result.stderr
    assert "A block is one build" in result.stderr and result.stderr.rstrip().endswith("stages at a time (\"summary\" "
                                                                                      "afterwards, when two of them "
                                                                                      "shared one campaign).")


def _rte_campaign(tmp_path, generator: bool = True):
    """A campaign directory with RTE data, a tiny teacher and student, and (unless told not to) a generator."""
    work = tmp_path / "work"
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "glue", "RTE"), work / "data" / "RTE")
    paths = build_tiny_models(str(tmp_path / "models"), "bert", id2label={0: "entailment", 1: "not_entailment"})
    shutil.copytree(paths["teacher"], work / "teacher" / "RTE")
    shutil.copytree(paths["student"], work / "student")
    if generator:
        shutil.copytree(paths["generator"], work / "generator")
    return work


def test_summary_stage_passes_summary_only_to_compare_and_trains_nothing(tmp_path):
    """`summary` must hand --summary_only to compare itself (before its --), not to every run."""
    work = _rte_campaign(tmp_path)
    result = _stage("summary", "RTE", "kd,mate-kd", "1", WORK=work, GEN_LR="2e-4", TQDM_DISABLE=1)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RTE kd seed 1: not run, left out of the summary" in result.stdout
    assert not (work / "campaign" / "RTE" / "runs").exists()
    summary = json.loads((work / "campaign" / "RTE" / "results.json").read_text())
    assert summary["runs"] == [] and summary["settings"]["summary_only"] is True


@pytest.mark.parametrize("args, message", [
    (["runs"], "usage: scripts/run_cpu_campaign.sh runs TASK METHODS SEEDS"),
    (["runs", "SST-2", "kd"], "usage: scripts/run_cpu_campaign.sh runs TASK METHODS SEEDS"),
    (["runs", "sst2", "kd", "1"], "unknown task 'sst2': the campaign's tasks are SST-2, MRPC and RTE"),
    (["glr", "5e-5", "1", "CoLA"], "unknown task 'CoLA'"),
    (["glr", "5e-5"], "usage: scripts/run_cpu_campaign.sh glr LR SEEDS [TASK]"),
    (["summary", "RTE", "kd"], "usage: scripts/run_cpu_campaign.sh summary TASK METHODS SEEDS"),
    (["teacher", "MRPC", "1e-4"], "usage: scripts/run_cpu_campaign.sh teacher TASK LR EPOCHS"),
    (["padding", "kd", "1", "2"], "usage: scripts/run_cpu_campaign.sh padding METHODS SEEDS"),
])
def test_a_stage_with_wrong_arguments_or_an_unknown_task_stops_before_any_work(tmp_path, args, message):
    work = tmp_path / "work"
    result = _stage(*args, WORK=work, GEN_LR="2e-4")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "unbound variable" not in result.stderr and not work.exists()


def test_glr_sweeps_the_generator_lr_of_the_given_task(tmp_path):
    """`glr LR SEEDS TASK` trains mate-kd on TASK at that generator lr, in a directory of its own."""
    work = _rte_campaign(tmp_path)
    header, *rows = (work / "data" / "RTE" / "train.tsv").read_text().splitlines()
    # 64 pairs: 2 updates an epoch, so that the 10 epochs hold student updates after the first 10 generator ones.
    (work / "data" / "RTE" / "train.tsv").write_text("\n".join([header] + (rows * 64)[:64]) + "\n")
    result = _stage("glr", "5e-5", "1", "RTE", WORK=work, TQDM_DISABLE=1)
    assert result.returncode == 0, result.stderr[-2000:]
    run = work / "glr" / "RTE-5e-5" / "runs" / "RTE" / "mate-kd" / "seed1"
    assert (run / "eval_results.json").is_file()
    assert "generator_learning_rate: 5.0e-05" in (run / "run_config.yaml").read_text()
    assert not (work / "campaign").exists()
    # drift keeps how far the run moved its generator beside the run, for sync (the weights are not synced)
    (work / "gen_text").mkdir()
    (work / "gen_text" / "dev.jsonl").write_text('{"text": "the movie was good"}\n{"text": "a bad film"}\n')
    result = _stage("drift", WORK=work)
    assert result.returncode == 0, result.stderr[-2000:]
    drift = json.loads((run / "generator_drift.json").read_text())
    assert drift["generator_learning_rate"] == 5e-5 and drift["generator_updates"] >= 1
    assert drift["relative_weight_change"] > 0 and str(run) in result.stdout


def test_finetune_and_kd_stages_need_no_generator(tmp_path):
    """A machine that only runs the machine-independent methods must not have to build a generator first."""
    work = _rte_campaign(tmp_path, generator=False)
    result = _stage("summary", "RTE", "finetune,kd", "1", WORK=work, TQDM_DISABLE=1)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RTE kd seed 1: not run, left out of the summary" in result.stdout

    result = _stage("summary", "RTE", "kd,mate-kd-ng0", "1", WORK=work, GEN_LR="2e-4", TQDM_DISABLE=1)
    assert result.returncode != 0 and f"--generator {work}/generator is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_restore_asks_for_the_generator_it_must_check_and_needs_none_where_the_block_built_none(work, tmp_path):
    results = tmp_path / "results"
    assert _stage("sync", WORK=work, RESULTS=results).returncode == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = _stage("restore", WORK=fresh, RESULTS=results)
    assert result.returncode != 0 and f"{fresh}/generator/mlm_results.json is missing: rebuild it" in result.stderr
    assert "Traceback" not in result.stderr and not (fresh / "campaign").exists()

    (results / "generator" / "mlm_results.json").unlink()  # a block that ran only finetune and kd
    result = _stage("restore", WORK=fresh, RESULTS=results)
    assert result.returncode == 0 and "restored 1 finished runs" in result.stdout, result.stderr


def test_sync_keeps_the_blocks_record_and_refuses_a_machine_of_another_kind(work, tmp_path):
    results = tmp_path / "results"
    assert _stage("sync", WORK=work, RESULTS=results).returncode == 0
    record = json.loads((results / "machine.json").read_text())
    kept = {**record, "mate_kd_commit": "0" * 40, "built": "2026-01-01"}  # an earlier session of the same kind
    (results / "machine.json").write_text(json.dumps(kept))
    _write(f"{work}/campaign/SST-2/runs/SST-2/kd/seed2/eval_results.json", json.dumps({"best": {"step": 7}}))
    assert _stage("sync", WORK=work, RESULTS=results).returncode == 0
    assert json.loads((results / "machine.json").read_text()) == kept
    assert (results / "campaign/SST-2/runs/SST-2/kd/seed2/eval_results.json").exists()

    (results / "machine.json").write_text(json.dumps({**kept, "torch_cpu_capability": "AVX512"
                                                      if record["torch_cpu_capability"] != "AVX512" else "AVX2"}))
    _write(f"{work}/campaign/SST-2/runs/SST-2/kd/seed3/eval_results.json", json.dumps({"best": {"step": 7}}))
    result = _stage("sync", WORK=work, RESULTS=results)
    assert result.returncode != 0 and "its runs belong to another block" in result.stderr
    assert "BLOCK=<new name>" in result.stderr and "Traceback" not in result.stderr
    assert not (results / "campaign/SST-2/runs/SST-2/kd/seed3").exists()
