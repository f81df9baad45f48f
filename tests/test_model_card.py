"""Model cards: written beside a trained student, loaded back by huggingface_hub with the run's metadata."""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from mate_kd.cli import main
from mate_kd.config import RunArgs, parse_args
from mate_kd.model_card import write_model_card
from mate_kd.tasks import custom_task, get_task

HERE = Path(__file__).parent
SST2 = HERE / "fixtures" / "glue" / "SST-2"


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory) -> tuple[list[str], Path]:
    out = tmp_path_factory.mktemp("card") / "run"
    argv = ["--method", "kd", "--model_name_or_path", tiny_bert["student"], "--teacher_path", tiny_bert["teacher"],
            "--task_name", "sst-2", "--data_dir", str(SST2), "--output_dir", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--logging_steps", "1",
            "--evaluate_during_training", "--save_steps", "0", "--learning_rate", "1e-3"]
    assert main(["train", *argv]) == 0
    return argv, out


def test_card_of_a_trained_student_loads_back_with_its_metadata(trained):
    argv, out = trained
    args = parse_args(argv)
    results = json.loads((out / "eval_results.json").read_text())
    path = write_model_card(str(out / "best"), args, get_task("sst-2"), results["best"]["metrics"], argv,
                            step=results["best"]["step"])
    assert path == str(out / "best" / "README.md")
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert {"mate-kd", "knowledge-distillation"} <= set(data.tags) and "adversarial-training" not in data.tags
    assert data.datasets == ["nyu-mll/glue"] and data.metrics == ["accuracy"]
    assert data.base_model is None, "a local student initialisation is not a hub reference"
    (result,) = data.eval_results
    assert (result.task_type, result.dataset_type, result.dataset_config, result.dataset_split) == \
        ("text-classification", "nyu-mll/glue", "sst2", "validation")
    assert result.metric_type == "accuracy" and result.metric_value == results["best"]["metrics"]["dev"]["acc"]
    assert data.model_name == f"{out.name}-best"
    body = card.text
    assert shlex.join(["mate-kd", "train", *argv]) in body
    assert f"at student update {results['best']['step']}" in body
    assert f"| dev | acc | {100 * result.metric_value:.2f} |" in body
    for field in dataclasses.fields(RunArgs):
        assert f"| `{field.name}` |" in body, field.name
    assert f"- teacher: `{args.teacher_path}`" in body and "- generator: none" in body
    assert f'pipeline("text-classification", model="{out / "best"}")' in body
    # What the card tells readers to run works: the saved directory loads with its card beside it.
    from transformers import pipeline
    assert pipeline("text-classification", model=str(out / "best"))("the movie is good .")[0]["label"] in \
        ("0", "1")  # SST-2's label names, saved with the student


def test_hub_names_become_base_model_and_dataset_and_nan_stays_out_of_the_index(tmp_path):
    args = RunArgs(model_name_or_path="distilbert-base-uncased", teacher_path="t", generator_path="g",
                   dataset_name="someone/reviews", output_dir=str(tmp_path), hub_model_id="me/reviews-mate-kd",
                   push_to_hub=True)
    task = custom_task(None, regression=True)
    path = write_model_card(str(tmp_path), args, task, {"dev": {"pearson": math.nan, "spearmanr": 0.5, "corr": 0.25}},
                            "mate-kd train --config run.yaml")
    data = ModelCard.load(path).data
    assert data.base_model == "distilbert-base-uncased" and data.datasets == ["someone/reviews"]
    assert data.model_name == "me/reviews-mate-kd" and "adversarial-training" in data.tags
    assert [r.metric_type for r in data.eval_results] == ["spearmanr", "pearsonr_spearmanr_mean"]
    text = ModelCard.load(path).text
    assert "| dev | pearson | nan |" in text and "mate-kd train --config run.yaml" in text
    assert 'model="me/reviews-mate-kd"' in text and "regression" in text


def test_own_files_have_no_hub_dataset(tmp_path):
    args = RunArgs(model_name_or_path=str(tmp_path), train_file="data/train.csv", validation_file="data/dev.csv",
                   output_dir=str(tmp_path), method="finetune")
    path = write_model_card(str(tmp_path), args, custom_task(["neg", "pos"]), {"dev": {"acc": 0.5, "macro_f1": 0.4}},
                            [])
    data = ModelCard.load(path).data
    assert data.datasets is None and data.base_model is None and "knowledge-distillation" not in data.tags
    assert {r.dataset_type for r in data.eval_results} == {"custom"}
    assert [(r.metric_type, r.metric_config) for r in data.eval_results] == [("accuracy", None), ("f1", "macro")]
