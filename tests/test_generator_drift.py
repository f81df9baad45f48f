"""scripts/generator_drift.py: the collapse columns find a generator that puts one token everywhere, and --write
keeps each run's drift beside its results."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file

from mate_kd.tiny import build_tiny_models, build_tokenizer

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "generator_drift.py")


def _drift():
    spec = importlib.util.spec_from_file_location("generator_drift", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_collapse_counts_distinct_top_tokens_and_the_commonest_share():
    drift = _drift()
    tokenizer = build_tokenizer("bert", model_max_length=64)
    logits = torch.zeros(8, len(tokenizer))
    logits[torch.arange(8), torch.tensor([5, 5, 5, 5, 5, 5, 7, 9])] = 3.0
    token = tokenizer.convert_ids_to_tokens(5)
    assert drift.collapse_cells(drift.collapse(logits.log_softmax(-1), tokenizer)) == f"3 | {token!r} 75.0%"
    logits[:, 5] = 10.0  # collapsed: one token is the most likely everywhere
    assert drift.collapse(logits.log_softmax(-1), tokenizer) == {"distinct_top1": 1, "commonest_top1": token,
                                                                 "commonest_top1_share": 1.0}


def _run(root, name, generator, scale, finished=True):
    """A mate-kd run directory whose saved generator is the start's weights times `scale`."""
    run = root / "runs" / "SST-2" / "mate-kd" / name
    shutil.copytree(generator, run / "generator")
    weights = load_file(run / "generator" / "model.safetensors")
    save_file({k: v * scale for k, v in weights.items()}, run / "generator" / "model.safetensors")
    (run / "run_config.yaml").write_text("generator_learning_rate: 0.0002\n")
    if finished:
        (run / "eval_results.json").write_text(json.dumps({"progress": {"generator_updates": 7}}))
    return run


def test_write_keeps_each_finished_runs_drift_beside_it(tmp_path):
    generator = build_tiny_models(str(tmp_path / "models"), "bert")["generator"]
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["the movie was good", "a bad film", "it is fine"]))
    same, moved = _run(tmp_path, "seed1", generator, 1.0), _run(tmp_path, "seed2", generator, 1.1)
    unfinished = _run(tmp_path, "seed3", generator, 1.1, finished=False)
    out = subprocess.run([sys.executable, SCRIPT, "--start", generator, "--dev", str(dev), "--write", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert f"| {same} | 0.0002 | 7 | 0.00e+00 | 0.00e+00 | 0.0% |" in out
    record = json.loads((moved / "generator_drift.json").read_text())
    assert abs(record["relative_weight_change"] - 0.1) < 1e-5  # every weight scaled by 1.1
    assert record["mean_kl_end_start"] > 0 and record["generator_updates"] == 7
    assert record["probe"]["sentences"] == 3 and record["probe"]["masked_positions"] > 0
    assert json.loads((same / "generator_drift.json").read_text())["top1_changed"] == 0
    assert not (unfinished / "generator_drift.json").exists() and str(unfinished) not in out


def test_a_missing_start_generator_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "--start", str(tmp_path / "nope"), "--dev", str(tmp_path),
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "--start: no generator at" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_come_before_torch_and_transformers_are_imported(tmp_path):
    """Importing them took about 7 s on an AVX2 machine; a mistyped path should be answered at once."""
    argv = [SCRIPT, "--start", str(tmp_path / "nope"), "--dev", str(tmp_path), str(tmp_path)]
    code = ("import runpy, sys\n"
            f"sys.argv = {argv!r}\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as stop:\n"
            "    print(stop.code, sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "2 []" and "--start: no generator at" in done.stderr
