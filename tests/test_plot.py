"""`mate-kd plot` and plot_run: PNGs of real runs' logs, several runs overlaid, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mate_kd.cli import main
from mate_kd.errors import DataError
from mate_kd.plot import default_label, loss_curves, metric_curve, plot_run, read_log, selection_metric

SST2 = Path(__file__).parent / "fixtures" / "glue" / "SST-2"
PNG = b"\x89PNG\r\n\x1a\n"
RUN = ["--task_name", "sst-2", "--data_dir", str(SST2), "--max_steps", "6", "--per_device_train_batch_size", "4",
       "--max_seq_length", "32", "--logging_steps", "2", "--save_steps", "0", "--learning_rate", "1e-3"]


@pytest.fixture(scope="module")
def runs(tiny_bert, tmp_path_factory) -> dict[str, Path]:
    """A fine-tuning and a MATE-KD run evaluated during training, and a KD run still going (no evaluations)."""
    root = tmp_path_factory.mktemp("plot")
    flags = {"finetune": [], "kd": ["--teacher_path", tiny_bert["teacher"]],
             "mate-kd": ["--teacher_path", tiny_bert["teacher"], "--generator_path", tiny_bert["generator"],
                         "--n_generator_steps", "1", "--n_student_steps", "2"]}
    out = {}
    for method, extra in flags.items():
        out[method] = root / method
        evaluate = [] if method == "kd" else ["--evaluate_during_training"]
        assert main(["train", "--method", method, "--model_name_or_path", tiny_bert["student"], *extra, *RUN,
                     *evaluate, "--seed", "7", "--output_dir", str(out[method])]) == 0
    log = out["kd"] / "log.jsonl"  # the kd run as it looks before its end: no final evaluation yet
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines() if "final_eval" not in line))
    (out["kd"] / "eval_results.json").unlink()
    return out


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 20_000


def test_series_come_from_the_log(runs):
    events = read_log(str(runs["mate-kd"]))
    assert selection_metric(str(runs["mate-kd"]), events) == "dev/acc"
    curve = metric_curve(events, "dev/acc")
    assert sorted(curve) == [2, 4, 6] and curve[6] == events[-1]["final_eval"]["dev"]["acc"]
    losses = loss_curves(events)
    assert {"loss_student", "loss_ce", "loss_kd", "loss_adv", "loss_generator"} <= set(losses)
    assert losses["loss_ce"][2] == events[0]["loss_ce"]
    assert default_label(str(runs["mate-kd"])) == "mate-kd seed 7"
    assert selection_metric(str(runs["kd"]), read_log(str(runs["kd"]))) is None


def test_cli_overlays_several_runs(runs, tmp_path, capsys):
    out = tmp_path / "figs" / "curves.png"
    assert main(["plot", *(str(runs[m]) for m in ("finetune", "kd", "mate-kd")), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert is_png(out)
    assert main(["plot", str(runs["finetune"]), str(runs["mate-kd"]), "--labels", "FT,MATE", "--output",
                 str(out)]) == 0
    assert is_png(out) and not list(out.parent.glob("*.tmp*"))


def test_a_run_without_evaluations_still_plots_its_losses(runs, tmp_path):
    out = tmp_path / "kd.png"
    assert main(["plot", str(runs["kd"]), "--output", str(out)]) == 0
    assert is_png(out)


def test_plot_run_writes_curves_png_in_the_run(runs):
    path = Path(plot_run(str(runs["finetune"])))
    assert path == runs["finetune"] / "curves.png" and is_png(path)


def test_unfinished_last_line_is_left_out_and_damage_is_named(runs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = (runs["finetune"] / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join(lines) + '\n{"step": 8, "loss_')
    assert len(read_log(str(run))) == len(lines)
    (run / "log.jsonl").write_text(lines[0] + "\nnot json\n" + lines[1] + "\n")
    with pytest.raises(DataError, match=r"log.jsonl, line 2: not a JSON object"):
        read_log(str(run))


@pytest.mark.parametrize("case, message", [
    ("missing_log", "has no log.jsonl: pass the --output_dir of a `mate-kd train` run"),
    ("not_a_dir", "is not a directory"),
    ("empty_log", "has no logged steps yet"),
    ("labels_count", "--labels has 1 entries for 2 run directories"),
    ("bad_extension", "cannot write 'txt'; end it in .png"),
])
def test_refusals(case, message, runs, tmp_path, capsys):
    dirs, extra, output = [str(runs["finetune"])], [], str(tmp_path / "out.png")
    if case == "missing_log":
        dirs = [str(tmp_path)]
    elif case == "not_a_dir":
        dirs = [str(tmp_path / "nope")]
    elif case == "empty_log":
        (tmp_path / "r").mkdir()
        (tmp_path / "r" / "log.jsonl").write_text("")
        dirs = [str(tmp_path / "r")]
    elif case == "labels_count":
        dirs, extra = dirs + [str(runs["mate-kd"])], ["--labels", "only-one"]
    else:
        output = str(tmp_path / "out.txt")
    assert main(["plot", *dirs, *extra, "--output", output]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mate-kd plot: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_compare_learning_curve_reads_through_plot(runs):
    from mate_kd.compare import learning_curve
    assert learning_curve(str(runs["finetune"]), "dev/acc") == metric_curve(read_log(str(runs["finetune"])),
                                                                            "dev/acc")
    assert json.loads((runs["finetune"] / "eval_results.json").read_text())["selection_metric"] == "dev/acc"


def _png_height(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[20:24], "big")  # IHDR: width at 16, height at 20


def test_the_adversary_probe_gets_its_own_panels(runs, tiny_bert, tmp_path):
    from mate_kd.plot import adversary_curves

    probed = tmp_path / "probed"
    assert main(["train", "--method", "mate-kd", "--model_name_or_path", tiny_bert["student"], "--teacher_path",
                 tiny_bert["teacher"], "--generator_path", tiny_bert["generator"], "--n_generator_steps", "1",
                 "--n_student_steps", "2", *RUN, "--evaluate_during_training", "--seed", "7",
                 "--adversary_probe_samples", "8", "--output_dir", str(probed)]) == 0
    events = read_log(str(probed))
    curves = adversary_curves(events)
    assert set(curves) >= {"d_adv_current", "d_adv_frozen", "replaced_current", "replaced_frozen"}
    assert curves["d_adv_current"][2] == events[0]["adversary"]["d_adv_current"]
    assert adversary_curves(read_log(str(runs["mate-kd"]))) == {}
    with_probe, without = tmp_path / "with.png", tmp_path / "without.png"
    assert main(["plot", str(probed), "--output", str(with_probe)]) == 0
    assert main(["plot", str(runs["mate-kd"]), "--output", str(without)]) == 0
    assert is_png(with_probe) and _png_height(with_probe) > _png_height(without), "a third row of panels"
