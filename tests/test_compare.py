"""compare: run flags per method, summaries, and a tiny resumable campaign end to end."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys

import pytest

from mate_kd.cli import main as cli_main
from mate_kd.compare import Campaign, learning_curve, markdown, prepare_teacher, run_argv, validate
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError
from mate_kd.tasks import get_task
from mate_kd.tiny import build_tiny_models

FIXTURE_RTE = os.path.join(os.path.dirname(__file__), "fixtures", "glue", "RTE")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("compare")
    shutil.copytree(FIXTURE_RTE, root / "glue" / "RTE")
    paths = build_tiny_models(str(root / "models"), "bert", id2label={0: "entailment", 1: "not_entailment"})
    return {"root": str(root), "data_root": str(root / "glue"), **paths}


def _campaign(setup, **kw) -> Campaign:
    values = dict(data_root=setup["data_root"], output_dir=os.path.join(setup["root"], "out"),
                  student_init=setup["student"], tasks=["RTE"], methods=["finetune", "kd", "mate-kd", "mate-kd-ng0"],
                  seeds=[1], teacher=setup["teacher"], generator=setup["generator"])
    values.update(kw)
    return Campaign(**values)


def test_run_flags_per_method(setup):
    c = _campaign(setup, train_flags=["--n_generator_steps", "3", "--learning_rate", "1e-4"],
                  method_args={"mate-kd": ["--generator_learning_rate", "1e-4"]})
    task = get_task("RTE")
    parsed = {m: parse_args(run_argv(c, task, m, 7, setup["teacher"])) for m in c.methods}
    assert parsed["finetune"].method == "finetune" and parsed["finetune"].teacher_path is None
    assert parsed["kd"].method == "kd" and parsed["kd"].generator_path is None
    assert parsed["mate-kd"].n_generator_steps == 3 and parsed["mate-kd"].generator_learning_rate == 1e-4
    ng0 = parsed["mate-kd-ng0"]
    assert ng0.method == "mate-kd" and ng0.n_generator_steps == 0 and ng0.generator_learning_rate == 5e-7
    for method, args in parsed.items():
        assert args.seed == 7 and args.learning_rate == 1e-4 and args.evaluate_during_training
        assert args.output_dir == os.path.join(c.output_dir, "runs", "RTE", method, "seed7")
        assert args.model_name_or_path == setup["student"] and args.data_dir == os.path.join(setup["data_root"], "RTE")


@pytest.mark.parametrize("change, message", [
    ({"methods": ["finetune", "distil"]}, "Unknown methods"),
    ({"teacher": None}, "need a teacher"),
    ({"generator": None}, "--generator"),
    ({"train_flags": ["--seed", "3"]}, "sets itself"),
    ({"method_args": {"mate-kd-ng0": ["--n_generator_steps", "2"]}}, "fixes --n_generator_steps"),
    ({"tasks": ["MRPC"]}, "No directory for task MRPC"),
    ({"tasks": ["RTE", "rte"]}, "twice"),
    ({"train_flags": ["--run_name", "x"]}, "sets itself"),
    ({"train_flags": ["--push_to_hub"]}, "uploads none of them.*hf upload"),
    ({"teacher_args": ["--hub_model_id=me/teacher"]}, r"\['--hub_model_id'\].*uploads none"),
    ({"method_args": {"kd": ["--hub_private_repo"]}}, "uploads none"),
])
def test_bad_campaigns_are_refused(setup, change, message):
    with pytest.raises(ConfigError, match=message):
        validate(_campaign(setup, **change))


def test_report_to_reaches_every_run_under_its_own_name_and_is_not_a_setting_change(setup, tmp_path):
    from mate_kd.compare import check_same_settings
    from mate_kd.config import dump

    c = _campaign(setup, output_dir=str(tmp_path), train_flags=["--report_to", "tensorboard"])
    task = get_task("RTE")
    names = {m: parse_args(run_argv(c, task, m, 7, setup["teacher"])) for m in c.methods}
    assert {m: (a.report_to, a.run_name) for m, a in names.items()} == \
        {m: ("tensorboard", f"RTE-{m}-seed7") for m in c.methods}
    out = tmp_path / "finished"
    out.mkdir()
    dump(parse_args(run_argv(_campaign(setup, output_dir=str(tmp_path)), task, "kd", 7, setup["teacher"])),
         str(out / "run_config.yaml"))  # a finished run made without reporting
    check_same_settings(str(out), run_argv(c, task, "kd", 7, setup["teacher"]))
    with pytest.raises(ConfigError, match="learning_rate"):
        check_same_settings(str(out), run_argv(c, task, "kd", 7, setup["teacher"]) + ["--learning_rate", "1e-3"])


def test_method_args_must_name_a_method(setup, capsys):
    code = cli_main(["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", "finetune",
                     "--student_init", setup["student"], "--output_dir", os.path.join(setup["root"], "x"),
                     "--method_args", "kd:--kd_temperature 2"])
    assert code == 1 and "METHOD:FLAGS" in capsys.readouterr().err


def test_given_teacher_is_scored_once(setup, tmp_path):
    c = _campaign(setup, output_dir=str(tmp_path / "out"), train_flags=["--max_seq_length", "64"])
    teacher = prepare_teacher(c, get_task("RTE"))
    assert teacher["path"] == setup["teacher"] and teacher["source"] == "given"
    assert teacher["score"] == teacher["metrics"]["dev"]["acc"] and 0.0 <= teacher["score"] <= 1.0
    cache = tmp_path / "out" / "teachers" / "RTE" / "given_teacher_eval.json"
    assert json.loads(cache.read_text(encoding="utf-8")) == teacher
    stamp = os.path.getmtime(cache)
    assert prepare_teacher(c, get_task("RTE")) == teacher and os.path.getmtime(cache) == stamp


def test_learning_curve_and_table(tmp_path, setup):
    run = tmp_path / "run"
    run.mkdir()
    events = [{"step": 2, "eval": {"dev": {"acc": 0.5}}}, {"step": 3, "loss_ce": 0.1},
              {"step": 4, "eval": {"dev": {"acc": 0.75}}}, {"step": 5, "final_eval": {"dev": {"acc": 0.625}}}]
    (run / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    assert learning_curve(str(run), "dev/acc") == {2: 0.5, 4: 0.75, 5: 0.625}
    runs = [{"task": "RTE", "method": "kd", "seed": s, "selection_metric": "dev/acc", "best_score": b,
             "final_score": f, "wall_s": 10.0, "best": {"metrics": {"dev": {"acc": b}}},
             "final": {"metrics": {"dev": {"acc": f}}}} for s, b, f in [(1, 0.5, 0.4), (2, 0.7, 0.6)]]
    teachers = {"RTE": {"score": 0.8, "selection_metric": "dev/acc"}}
    table = markdown(runs, teachers, _campaign(setup, methods=["kd"], seeds=[1, 2]))
    assert "| RTE | kd | 2 | dev/acc | 60.00 ± 14.14 | 50.00 ± 14.14 | 10 |" in table
    assert "| RTE | teacher | 1 | dev/acc | 80.00 | – | – |" in table


def test_markdown_pairs_methods_seed_by_seed(setup):
    scores = {("finetune", 1): 0.70, ("finetune", 2): 0.74, ("finetune", 3): 0.72,
              ("mate-kd", 1): 0.71, ("mate-kd", 2): 0.74, ("mate-kd", 3): 0.75}
    runs = [{"task": "RTE", "method": m, "seed": s, "selection_metric": "dev/acc", "best_score": v, "final_score": v,
             "wall_s": 1.0, "best": {"metrics": {"dev": {"acc": v}}}, "final": {"metrics": {"dev": {"acc": v}}}}
            for (m, s), v in scores.items()]
    table = markdown(runs, {}, _campaign(setup, methods=["finetune", "mate-kd"], seeds=[1, 2, 3]))
    assert "| RTE | finetune | 70.00 | 74.00 | 72.00 |" in table
    assert "| RTE | mate-kd | 71.00 | 74.00 | 75.00 |" in table
    # differences 1, 0, 3: mean 1.33, sample std 1.53, t(0.975, 2) = 4.303: half-width 4.303 * 1.53 / sqrt(3) = 3.79;
    # better on seeds 1 and 3, equal on 2
    assert "| RTE | mate-kd | finetune | best-on-dev | 3 | +1.33 ± 1.53 | [-2.46, +5.13] | 2 / 1 / 0 |" in table
    assert "| RTE | mate-kd | finetune | final | 3 | +1.33 ± 1.53 | [-2.46, +5.13] | 2 / 1 / 0 |" in table
    assert table.count("## Per seed") == 2


def test_tiny_campaign_end_to_end_and_resume(setup, capsys):
    out = os.path.join(setup["root"], "campaign")
    argv = ["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", "finetune,mate-kd-ng0",
            "--seeds", "1,2", "--teacher_init", setup["teacher"], "--student_init", setup["student"],
            "--generator", setup["generator"], "--output_dir", out, "--",
            "--max_steps", "2", "--logging_steps", "1", "--per_device_train_batch_size", "4", "--max_seq_length", "64"]
    assert cli_main(argv) == 0
    summary = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    runs = summary["runs"]
    assert sorted((r["method"], r["seed"]) for r in runs) == [("finetune", 1), ("finetune", 2),
                                                             ("mate-kd-ng0", 1), ("mate-kd-ng0", 2)]
    for r in runs:
        assert r["task"] == "RTE" and r["selection_metric"] == "dev/acc" and not r["skipped"]
        assert r["best_score"] == r["best"]["metrics"]["dev"]["acc"] and 0.0 <= r["final_score"] <= 1.0
        assert r["final"]["step"] == 2 and r["wall_s"] > 0
        assert os.path.isfile(os.path.join(r["run_dir"], "eval_results.json"))
    ng0 = parse_args(["--config", os.path.join(out, "runs", "RTE", "mate-kd-ng0", "seed1", "run_config.yaml")])
    assert ng0.method == "mate-kd" and ng0.n_generator_steps == 0
    teacher = summary["teachers"]["RTE"]
    assert teacher["path"] == os.path.join(out, "teachers", "RTE", "best") and os.path.isdir(teacher["path"])

    table = open(os.path.join(out, "results.md"), encoding="utf-8").read()
    for method in ("finetune", "mate-kd-ng0"):
        best = [100 * r["best_score"] for r in runs if r["method"] == method]
        cell = f"{statistics.mean(best):.2f} ± {statistics.stdev(best):.2f}"
        assert f"| RTE | {method} | 2 | dev/acc | {cell} |" in table
    assert f"| RTE | teacher | 1 | dev/acc | {100 * teacher['score']:.2f} |" in table
    assert "| RTE | mate-kd-ng0 | finetune | best-on-dev | 2 |" in table
    with open(os.path.join(out, "curves_RTE.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    stamps = {r["run_dir"]: os.path.getmtime(os.path.join(r["run_dir"], "eval_results.json")) for r in runs}
    teacher_stamp = os.path.getmtime(os.path.join(out, "teachers", "RTE", "eval_results.json"))
    capsys.readouterr()
    assert cli_main(argv) == 0
    assert "fine-tuning" not in capsys.readouterr().out
    rerun = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))["runs"]
    assert all(r["skipped"] for r in rerun)
    assert [r["best_score"] for r in rerun] == [r["best_score"] for r in runs]
    assert {r["run_dir"]: os.path.getmtime(os.path.join(r["run_dir"], "eval_results.json")) for r in rerun} == stamps
    assert os.path.getmtime(os.path.join(out, "teachers", "RTE", "eval_results.json")) == teacher_stamp

    changed = argv[:argv.index("--max_steps")] + ["--max_steps", "3"] + argv[argv.index("--max_steps") + 2:]
    assert cli_main(changed) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "max_steps: 2 there, 3 now" in err


def test_results_are_written_after_every_run(setup, tmp_path, monkeypatch):
    """A campaign stopped part-way leaves results.json/results.md with the runs finished so far."""
    from mate_kd import compare

    def fake_run(c, task, method, seed, teacher):
        if method == "kd":
            raise KeyboardInterrupt
        return {"task": "RTE", "method": method, "seed": seed, "selection_metric": "dev/acc", "best_score": 0.6,
                "final_score": 0.5, "wall_s": 1.0, "skipped": False, "best": {"metrics": {"dev": {"acc": 0.6}}},
                "final": {"metrics": {"dev": {"acc": 0.5}}}}

    monkeypatch.setattr(compare, "run_one", fake_run)
    monkeypatch.setattr(compare, "prepare_teacher", lambda c, task: None)
    c = _campaign(setup, output_dir=str(tmp_path / "out"), methods=["finetune", "kd"])
    with pytest.raises(KeyboardInterrupt):
        compare.run_campaign(c)
    written = json.load(open(tmp_path / "out" / "results.json", encoding="utf-8"))
    assert [(r["method"], r["seed"]) for r in written["runs"]] == [("finetune", 1)]
    assert "| RTE | finetune | 1 | dev/acc | 60.00 | 50.00 | 1 |" in (tmp_path / "out" / "results.md").read_text()


def test_a_run_stopped_part_way_resumes_from_its_checkpoint(setup, capsys):
    """The second campaign loses its last checkpoint and its results, as a kill would leave it; rerunning the
    command continues from the checkpoint that is left and ends with the weights of the uninterrupted run."""
    from safetensors.torch import load_file

    def argv(out):
        return ["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", "kd", "--seeds", "1",
                "--teacher", setup["teacher"], "--student_init", setup["student"], "--output_dir", out, "--no_plots",
                "--", "--max_steps", "4", "--logging_steps", "1", "--save_steps", "2", "--save_total_limit", "2",
                "--per_device_train_batch_size", "4", "--max_seq_length", "64"]

    reference, resumed = os.path.join(setup["root"], "ref"), os.path.join(setup["root"], "resumed")
    assert cli_main(argv(reference)) == 0 and cli_main(argv(resumed)) == 0
    run = os.path.join(resumed, "runs", "RTE", "kd", "seed1")
    for name in ("eval_results.json", "final", "best", os.path.join("checkpoints", "step-00000004")):
        path = os.path.join(run, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    capsys.readouterr()
    assert cli_main(argv(resumed)) == 0
    assert "resuming" in capsys.readouterr().out and "step-00000002" in open(os.path.join(run, "compare_run.json")).read()
    a = load_file(os.path.join(reference, "runs", "RTE", "kd", "seed1", "final", "model.safetensors"))
    b = load_file(os.path.join(run, "final", "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)
    steps = [json.loads(line)["step"] for line in open(os.path.join(run, "log.jsonl"), encoding="utf-8")]
    assert steps == [1, 2, 3, 4, 4], "events after the checkpoint are redone, not duplicated"
    timing = json.load(open(os.path.join(run, "compare_run.json"), encoding="utf-8"))
    assert len(timing["attempts"]) == 2 and timing["attempts"][1]["resumed_from"].endswith("step-00000002")
    assert timing["wall_s"] > 0
    record = json.load(open(os.path.join(resumed, "results.json"), encoding="utf-8"))["runs"][0]
    assert record["attempts"] == 2 and not record["skipped"]
    assert cli_main(argv(resumed)) == 0, "a finished resumed run is reused, not refused for its resume flag"


def test_a_run_that_crashes_is_named_with_how_to_resume_it(setup, tmp_path, capsys, monkeypatch):
    """An internal error inside one run of a campaign says which run failed and that the same command resumes it
    from its latest checkpoint; the checkpoint and the finished runs are left as they were."""
    from mate_kd import cli, compare

    out = os.path.join(setup["root"], "crash")
    argv = ["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", "finetune,kd", "--seeds",
            "1", "--teacher", setup["teacher"], "--student_init", setup["student"], "--output_dir", out, "--no_plots",
            "--", "--max_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "4", "--max_seq_length",
            "64"]
    assert cli_main(argv) == 0
    run = os.path.join(out, "runs", "RTE", "kd", "seed1")
    os.remove(os.path.join(run, "eval_results.json"))  # kd stopped part-way: a checkpoint and no results
    finished = os.path.join(out, "runs", "RTE", "finetune", "seed1", "eval_results.json")
    before = {p: os.path.getmtime(p) for p in (finished, os.path.join(run, "checkpoints", "step-00000002"))}

    def crash(argv):
        raise KeyError("token_type_ids")

    monkeypatch.setattr(compare, "_train", crash)
    monkeypatch.setattr(cli.tempfile, "tempdir", str(tmp_path))
    capsys.readouterr()
    assert cli_main(argv) == 3
    err = capsys.readouterr().err
    assert "mate-kd compare: internal error: KeyError: 'token_type_ids'" in err and "Traceback" not in err
    assert f"while training {run}; once fixed, the same compare command resumes it from its latest checkpoint" in err
    assert {p: os.path.getmtime(p) for p in before} == before
    assert "KeyError" in open(err.strip().rsplit(" ", 1)[1], encoding="utf-8").read()


def test_a_second_compare_leaves_a_run_that_is_training_alone(setup, capsys):
    """While one process trains a run (it holds the run's lock), a second `compare` over the same campaign is
    refused with the holder's details, before it marks the running attempt as interrupted in compare_run.json."""
    from mate_kd.lock import OutputDirLock

    out = os.path.join(setup["root"], "busy")
    run = os.path.join(out, "runs", "RTE", "kd", "seed1")
    os.makedirs(run)
    record = json.dumps({"attempts": [{"start": 1.0, "resumed_from": None}]})
    with open(os.path.join(run, "compare_run.json"), "w", encoding="utf-8") as f:
        f.write(record)
    argv = ["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", "kd", "--seeds", "1",
            "--teacher", setup["teacher"], "--student_init", setup["student"], "--output_dir", out, "--no_plots",
            "--", "--max_steps", "2", "--per_device_train_batch_size", "4", "--max_seq_length", "64"]
    with OutputDirLock(run):
        assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "in use" in err and str(os.getpid()) in err and "Traceback" not in err
    assert open(os.path.join(run, "compare_run.json"), encoding="utf-8").read() == record


def test_summary_only_gathers_runs_that_separate_compares_finished_and_trains_nothing(setup, capsys):
    """Two processes share a campaign out by method; each writes a results.json of its own runs only. A
    --summary_only pass over every method writes the summary of all finished runs and starts no new run."""
    out = os.path.join(setup["root"], "shared")

    def argv(methods, seeds, *extra):
        return ["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", methods, "--seeds", seeds,
                "--teacher", setup["teacher"], "--student_init", setup["student"], "--output_dir", out, "--no_plots",
                *extra, "--", "--max_steps", "2", "--per_device_train_batch_size", "4", "--max_seq_length", "64"]

    assert cli_main(argv("finetune", "1,2")) == 0 and cli_main(argv("kd", "1")) == 0
    only_kd = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    assert [r["method"] for r in only_kd["runs"]] == ["kd"]
    half = os.path.join(out, "runs", "RTE", "kd", "seed2")
    os.makedirs(os.path.join(half, "checkpoint-1"))  # a run stopped before it finished
    capsys.readouterr()
    assert cli_main(argv("finetune,kd", "1,2,3", "--summary_only")) == 0
    printed = capsys.readouterr().out
    assert ("RTE kd seed 2: not finished (a run without --summary_only resumes it from its latest checkpoint, or "
            "starts it again if it has none), left out") in printed
    assert "RTE finetune seed 3: not run, left out" in printed and "RTE kd seed 3: not run, left out" in printed
    assert os.listdir(half) == ["checkpoint-1"] and not os.path.exists(os.path.join(out, "runs", "RTE", "kd", "seed3"))
    summary = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    assert sorted((r["method"], r["seed"]) for r in summary["runs"]) == [("finetune", 1), ("finetune", 2), ("kd", 1)]
    assert all(r["skipped"] for r in summary["runs"])
    assert [(p["a"], p["b"], p["seeds"]) for p in summary["paired"]] == [("kd", "finetune", [1])] * 2


def test_summary_only_refuses_a_teacher_that_has_not_been_trained(setup, tmp_path, capsys):
    argv = ["compare", "--data_root", setup["data_root"], "--tasks", "RTE", "--methods", "finetune", "--seeds", "1",
            "--teacher_init", setup["teacher"], "--student_init", setup["student"], "--output_dir", str(tmp_path),
            "--summary_only", "--", "--max_steps", "2"]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "--summary_only trains nothing" in err and "without --summary_only" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "teachers" / "RTE" / "eval_results.json")


def test_compare_imports_neither_torch_nor_transformers_until_it_trains():
    """`compare --summary_only`, its usage errors and scripts/campaign_report.py need neither; importing them took
    about 7 s a process on an AVX2 machine."""
    code = "import sys, mate_kd.compare; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
