"""`mate-kd quickstart --fast` runs the whole pipeline and prints its results table."""

import json
import os

from mate_kd import cli
from mate_kd.quickstart import format_table


def test_quickstart_fast(tmp_path, capsys):
    out = tmp_path / "qs"
    assert cli.main(["quickstart", "--fast", "--output_dir", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| run | model | updates | dev acc (best) | dev acc (final) | wall time |" in printed
    assert "not the paper's results" in printed
    for run in ("teacher (finetune)", "student (kd)", "student (mate-kd)", "majority class"):
        assert f"| {run} |" in printed

    with open(out / "quickstart_results.json") as f:
        summary = json.load(f)
    assert [r["method"] for r in summary["rows"]] == ["finetune", "kd", "mate-kd"]
    assert summary["generator_mlm"]["steps"] == 5
    for row in summary["rows"]:
        with open(os.path.join(row["output_dir"], "eval_results.json")) as f:
            results = json.load(f)
        assert row["final"] == results["final"]["metrics"]["dev"]["acc"]
        assert row["best"] == results["best"]["metrics"]["dev"]["acc"] >= row["final"]
        assert 0.0 <= row["final"] <= 1.0 and row["updates"] == results["progress"]["student_updates"] > 0
        assert os.path.isfile(os.path.join(row["output_dir"], "best", "config.json"))
    kd, mate = summary["rows"][1:]
    with open(os.path.join(mate["output_dir"], "eval_results.json")) as f:
        assert json.load(f)["progress"]["generator_updates"] > 0
    with open(os.path.join(kd["output_dir"], "run_config.yaml")) as f:  # kd distils the fine-tuned teacher
        assert str(out / "runs" / "teacher" / "best") in f.read()


def test_format_table_rows():
    rows = [{"run": "student (kd)", "model": "distilbert 64x1", "updates": 7, "best": 0.75, "final": 0.7,
             "wall_s": 1.26}]
    table = format_table(rows, 0.5).splitlines()
    assert table[2] == "| student (kd) | distilbert 64x1 | 7 | 0.750 | 0.700 | 1.3 s |"
    assert table[3] == "| majority class | - | - | 0.500 | 0.500 | - |"
