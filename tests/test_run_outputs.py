"""What every run leaves at its end besides the weights: model cards in best/ and final/, and curves.png."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from mate_kd import loop
from mate_kd.cli import main
from mate_kd.config import parse_args

SST2 = Path(__file__).parent / "fixtures" / "glue" / "SST-2"


def flags(models: dict[str, str], out: Path) -> list[str]:
    return ["--method", "kd", "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--task_name", "sst-2", "--data_dir", str(SST2), "--output_dir", str(out), "--max_steps", "4",
            "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--logging_steps", "1",
            "--evaluate_during_training", "--save_steps", "0", "--learning_rate", "1e-3"]


@pytest.fixture(scope="module")
def finished(tiny_bert, tmp_path_factory) -> tuple[list[str], Path]:
    out = tmp_path_factory.mktemp("outputs") / "run"
    argv = flags(tiny_bert, out)
    assert main(["train", *argv]) == 0
    return argv, out


@pytest.mark.parametrize("name", ["best", "final"])
def test_best_and_final_carry_model_cards_with_their_own_metrics(finished, name):
    argv, out = finished
    results = json.loads((out / "eval_results.json").read_text())[name]
    card = ModelCard.load(out / name / "README.md")
    (result,) = card.data.eval_results
    assert result.metric_value == results["metrics"]["dev"]["acc"]
    assert card.data.model_name == f"run-{name}"
    assert f"at student update {results['step']}" in card.text
    assert shlex.join(["mate-kd", "train", *argv]) in card.text, "the command line the run was given"


def test_curves_png_is_written_at_the_end(finished):
    _, out = finished
    import matplotlib.image

    image = matplotlib.image.imread(out / "curves.png")
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_a_failed_drawing_keeps_the_run(tiny_bert, tmp_path, monkeypatch):
    def broken(_output_dir):
        raise RuntimeError("no font")

    monkeypatch.setattr(loop, "plot_run", broken)
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"curves.png was not drawn \(RuntimeError: no font\); the run's results "
                                         r"are saved\. Draw it later with `mate-kd plot"):
        results = loop.train(parse_args(flags(tiny_bert, out)))
    assert json.loads((out / "eval_results.json").read_text())["final"] == results["final"]
    assert (out / "best" / "README.md").is_file() and (out / "final" / "model.safetensors").is_file()
    assert not (out / "curves.png").exists()
