"""The report script of docs/results-cpu.md reads committed campaign files and prints the report's tables."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PILOT = os.path.join(ROOT, "docs", "results", "paper-bf16-pilot")


def test_report_tables_match_the_recorded_pilot(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "campaign_report.py"), "--results", PILOT,
                          "--figures", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "| SST-2 | 1e-4 | 4 | 89.11 (702) | 87.50 | yes |" in out
    assert "| MRPC | 5e-5 | 5 | 84.59 (406) | 83.59 | yes |" in out
    assert "dev accuracy 0.0% -> 25.29%" in out
    assert "| 2e-4 | 1 | glr/SST-2-2e-4 | 84.29 | 83.83 | 84.06 | 82.68 | 99.9% | 61 |" in out
    assert "| glr/SST-2-2e-4 | mate-kd | 2 | 1970 | 0.4272 | 0.3796 | 1.125 | 99.9% | 80.1% | 0.0599 |" in out
    assert sorted(os.listdir(tmp_path)) == ["paper_generator.png", "paper_runs_SST-2.png"]
    assert all(os.path.getsize(tmp_path / name) > 10_000 for name in os.listdir(tmp_path))


BLOCK2 = os.path.join(ROOT, "docs", "results", "paper", "block2-xeon")


def test_block2_report_has_the_ablation_the_sweep_and_the_padding_check(tmp_path):
    """The padding table pairs a run without length grouping with the campaign's run of the same seed: in a copy
    of the block, a copy of kd seed 1 with its wall time doubled stands in for the ungrouped runs."""
    recorded = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "campaign_report.py"), "--results",
                               BLOCK2, "--figures", str(tmp_path / "recorded")], capture_output=True, text=True,
                              check=True).stdout
    assert "| kd | 1 | 84.29 / 83.83 | 13 | 84.17 / 82.68 | 15 | 1.16 |" in recorded  # the synced padding run
    assert "| mate-kd | 3 | -0.11 (1 / 1 / 1) | [-1.70, +1.47] | +0.31 (2 / 0 / 1) | [-1.59, +2.20] | 2.22 |" in recorded
    assert "| 5e-5 | 1 | glr/MRPC-5e-5 | 75.21 | 69.93 | 76.31 | 70.06 | 90.0% | 48 |" in recorded
    assert "| glr/MRPC-5e-5 | mate-kd | 1 | 5e-05 | 110 |" in recorded  # its generator_drift.json
    results = tmp_path / "results"
    shutil.copytree(BLOCK2, results)
    shutil.rmtree(results / "padding")
    sweep = results / "glr" / "MRPC-1e-5" / "runs" / "MRPC" / "mate-kd" / "seed1"
    shutil.copytree(results / "campaign" / "MRPC" / "runs" / "MRPC" / "mate-kd" / "seed1", sweep)
    config = (sweep / "run_config.yaml").read_text()
    assert "generator_learning_rate: 0.0002\n" in config
    (sweep / "run_config.yaml").write_text(config.replace("generator_learning_rate: 0.0002", "generator_learning_rate: 1.0e-05"))
    padded = results / "padding" / "SST-2" / "runs" / "SST-2" / "kd" / "seed1"
    shutil.copytree(results / "campaign" / "SST-2" / "runs" / "SST-2" / "kd" / "seed1", padded)
    drift = {"generator_learning_rate": 2e-4, "generator_updates": 200, "relative_weight_change": 0.0123,
             "mean_kl_end_start": 4.5, "top1_changed": 0.9, "distinct_top1": 1, "commonest_top1": "separate",
             "commonest_top1_share": 0.999, "start_generator": {"distinct_top1": 323, "commonest_top1": "the",
                                                                "commonest_top1_share": 0.107}}
    (results / "campaign" / "RTE" / "runs" / "RTE" / "mate-kd" / "seed1" / "generator_drift.json").write_text(
        json.dumps(drift))
    record = json.loads((padded / "compare_run.json").read_text())
    grouped_wall, record["wall_s"] = record["wall_s"], 2 * record["wall_s"]
    (padded / "compare_run.json").write_text(json.dumps(record))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "campaign_report.py"), "--results",
                          str(results), "--figures", str(tmp_path / "figures")],
                         capture_output=True, text=True, check=True).stdout
    assert "Block built on Intel(R) Xeon(R) Processor" in out
    assert "| 5e-5 | 2 | glr/SST-2-5e-5 | 85.09 | 84.75 | 84.29 | 82.57 | 90.6% | 28 |" in out
    assert "| campaign/SST-2 | mate-kd-ng0 | 5 | 2170 | 0.2416 | 0.2416 | 1.000 | 80.9% | 80.9% | 0.0349 |" in out
    minutes = round(grouped_wall / 60)
    assert f"| kd | 1 | 84.29 / 83.83 | {minutes} | 84.29 / 83.83 | {round(2 * grouped_wall / 60)} | 2.00 |" in out
    assert "| mate-kd |" not in out.split("## Padding check (SST)")[1].split("## ")[0]
    assert "| kd | 1 | +0.00 (0 / 1 / 0) | – | +0.00 (0 / 1 / 0) | – | 2.00 |" in out
    # SST's sweep pairs each rate with kd seed by seed; the 2e-4 rows are the campaign's mate-kd - kd statistics
    sst = out.split("## Generator-lr sweep (SST-2)")[1].split("## ")[0]
    assert "| 2e-4 | best-on-dev | 5 | +0.99 ± 0.40 | [+0.49, +1.49] | 5 / 0 / 0 |" in sst
    assert "| 5e-5 | final | 2 | +1.26 ± 1.30 | [-10.40, +12.92] | 2 / 0 / 0 |" in sst
    # a sweep on another task gets its own section, paired with that task's kd runs, and joins its figure
    mrpc = out.split("## Generator-lr sweep (MRPC)")[1].split("## ")[0]
    assert "| 1e-5 | 1 | glr/MRPC-1e-5 | 76.31 | 71.00 | 76.31 | 70.06 |" in mrpc
    assert "| 1e-5 | best-on-dev | 1 | +0.00 | – | 0 / 1 / 0 |" in mrpc
    assert "| 1e-5 | final | 1 | +0.94 | – | 1 / 0 / 0 |" in mrpc
    assert "| 2e-4 | 1 | campaign/MRPC |" in mrpc and "SST-2" not in mrpc
    assert "| glr/MRPC-1e-5 | mate-kd | 1 | 50 |" in out
    collapse = out.split("## Generator drift and collapse (per mate-kd run)")[1].split("## ")[0]
    assert "| start | | | | 0 | 0 | 0 | 0 | 323 | 'the' 10.7% |" in collapse
    assert "| campaign/RTE | mate-kd | 1 | 0.0002 | 200 | 1.23e-02 | 4.50e+00 | 90.0% | 1 | 'separate' 99.9% |" in collapse


def test_pool_pairs_each_mate_kd_run_with_kd_of_its_own_block_and_counts_a_seed_once(tmp_path):
    """A stand-in block 3 holds MRPC kd seeds 1, 2 (copies of block 2's) and generator-lr 5e-5 runs for seeds 1, 2
    (block 2's 2e-4 runs relabelled). Pooled with block 2 first, seed 1 comes from block 2's own sweep run and
    seed 2 from block 3; the kd seeds that both blocks ran are compared."""
    block3 = tmp_path / "block3-test"
    source = os.path.join(BLOCK2, "campaign", "MRPC", "runs", "MRPC")
    for seed in (1, 2):
        shutil.copytree(os.path.join(source, "kd", f"seed{seed}"), block3 / "campaign" / "MRPC" / "runs" / "MRPC" /
                        "kd" / f"seed{seed}")
        sweep = block3 / "glr" / "MRPC-5e-5" / "runs" / "MRPC" / "mate-kd" / f"seed{seed}"
        shutil.copytree(os.path.join(source, "mate-kd", f"seed{seed}"), sweep)
        config = (sweep / "run_config.yaml").read_text()
        (sweep / "run_config.yaml").write_text(config.replace("generator_learning_rate: 0.0002",
                                                              "generator_learning_rate: 5.0e-05"))
    report = [sys.executable, os.path.join(ROOT, "scripts", "campaign_report.py"), "--figures", str(tmp_path / "f")]
    out = subprocess.run(report + ["--results", BLOCK2, "--pool", str(block3)], capture_output=True, text=True,
                         check=True).stdout
    pooled = out.split("## mate-kd − kd pooled over blocks (MRPC)")[1].split("## ")[0]
    assert "| 5e-5 | 1 | block2-xeon | -1.10 | -0.14 |" in pooled
    assert "| 5e-5 | 2 | block3-test | +0.47 | +1.87 |" in pooled
    assert "| 5e-5 | final | 2 | +0.87 ± 1.42 | [-11.85, +13.58] | 1 / 0 / 1 |" in pooled
    assert "| 2e-4 | 3 | block2-xeon |" in pooled and "| 2e-4 | 1 | block3-test |" not in pooled
    assert "| 1 | 76.31 / 70.06 | 76.31 / 70.06 | yes |" in pooled and "| 3 | " not in pooled.split("| kd seed |")[1]
    # the other order takes seed 1 from block 3, whose relabelled run ties kd's best there
    out = subprocess.run(report + ["--results", str(block3), "--pool", BLOCK2], capture_output=True, text=True,
                         check=True).stdout
    assert "| 5e-5 | 1 | block3-test | +0.00 | +0.94 |" in out
    # one block's pairs alone are not a pool: no section
    out = subprocess.run(report + ["--results", BLOCK2, "--pool", os.path.join(ROOT, "docs", "results", "paper",
                                                                            "block1-epyc")],
                         capture_output=True, text=True, check=True).stdout
    assert "pooled over blocks" not in out


def test_a_block_that_does_not_exist_is_a_usage_error(tmp_path):
    missing = str(tmp_path / "block9-none")
    for flag, value in (("--results", missing), ("--pool", missing)):
        args = {"--results": BLOCK2, "--pool": None, flag: value}
        command = [sys.executable, os.path.join(ROOT, "scripts", "campaign_report.py"), "--figures", str(tmp_path)]
        command += [x for k, v in args.items() if v for x in (k, v)]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 2 and f"{missing} is not a directory" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""


def _report_module():
    spec = importlib.util.spec_from_file_location("campaign_report", os.path.join(ROOT, "scripts", "campaign_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_task_figure_shows_the_first_seed_with_two_runs_and_says_each_mate_kd_rate(tmp_path, monkeypatch):
    """A follow-up block without seed 1 (MRPC kd seed 2, generator-lr 5e-5 seed 2, a lone kd seed 1 on RTE) gets an
    MRPC figure of seed 2 and none for RTE; block 2's figures stay seed 1 and name the campaign's rate, 2e-4."""
    report = _report_module()
    drawn = {}
    monkeypatch.setattr(report, "plot_runs", lambda dirs, path, labels, title: drawn.setdefault(path, (dirs, title)))
    block = tmp_path / "block9-test"
    source = os.path.join(BLOCK2, "campaign", "MRPC", "runs", "MRPC")
    shutil.copytree(os.path.join(source, "kd", "seed2"), block / "campaign" / "MRPC" / "runs" / "MRPC" / "kd" / "seed2")
    sweep = block / "glr" / "MRPC-5e-5" / "runs" / "MRPC" / "mate-kd" / "seed2"
    shutil.copytree(os.path.join(source, "mate-kd", "seed2"), sweep)
    (sweep / "run_config.yaml").write_text((sweep / "run_config.yaml").read_text().replace(
        "generator_learning_rate: 0.0002", "generator_learning_rate: 5.0e-05"))
    shutil.copytree(os.path.join(BLOCK2, "campaign", "RTE", "runs", "RTE", "kd", "seed1"),
                    block / "campaign" / "RTE" / "runs" / "RTE" / "kd" / "seed1")
    written = report.adversary_figures(str(block), str(tmp_path / "f"), {})
    assert written == [drawn[str(tmp_path / "f" / "paper_runs_MRPC.png")]] and len(drawn) == 1
    dirs, title = drawn.popitem()[1]
    assert title == "MRPC, seed 2: kd, mate-kd (generator lr 5e-5)"
    assert [os.path.basename(os.path.dirname(d)) for d in dirs] == ["kd", "mate-kd"]
    assert all(d.endswith("seed2") for d in dirs)
    report.adversary_figures(BLOCK2, str(tmp_path / "f2"), {})
    titles = {os.path.basename(path): title for path, (_, title) in drawn.items()}
    assert titles["paper_runs_SST-2.png"] == ("SST-2, seed 1: finetune, kd, mate-kd (generator lr 2e-4), mate-kd-ng0, "
                                              "mate-kd (generator lr 5e-5), mate-kd (generator lr 5e-7)")
    # block 2 also ran RTE at 5e-5 (seed 3 only), so its RTE figure names the rate of the seed-1 run
    assert titles["paper_runs_RTE.png"] == "RTE, seed 1: finetune, kd, mate-kd (generator lr 2e-4), mate-kd-ng0"


def test_campaign_over_blocks_adds_each_blocks_seeds_keeps_rates_apart_and_checks_shared_runs(tmp_path):
    """A stand-in block that ran only finetune and kd seed 5 (block 2's seed-1 files), kd seed 1 again (equal),
    finetune seed 2 again (changed: must read "no"), its own teacher, and one mate-kd run at another rate."""
    report = _report_module()
    block = tmp_path / "block5-test"
    runs, source = block / "campaign" / "MRPC" / "runs" / "MRPC", os.path.join(BLOCK2, "campaign", "MRPC", "runs", "MRPC")
    for method, seed, copy_of in (("finetune", 5, 1), ("kd", 5, 1), ("kd", 1, 1), ("finetune", 2, 2),
                                  ("mate-kd", 4, 1)):
        shutil.copytree(os.path.join(source, method, f"seed{copy_of}"), runs / method / f"seed{seed}")
    changed = json.loads((runs / "finetune" / "seed2" / "eval_results.json").read_text())
    changed["final"]["metrics"]["dev"]["acc_and_f1"] += 0.01
    (runs / "finetune" / "seed2" / "eval_results.json").write_text(json.dumps(changed))
    config = (runs / "mate-kd" / "seed4" / "run_config.yaml").read_text()
    (runs / "mate-kd" / "seed4" / "run_config.yaml").write_text(
        config.replace("generator_learning_rate: 0.0002", "generator_learning_rate: 5.0e-05"))
    shutil.copytree(os.path.join(BLOCK2, "teachers", "MRPC", "lr5e-5-ep5"), block / "teachers" / "MRPC" / "lr5e-5-ep5")

    table = "\n".join(report.over_blocks_table([BLOCK2, str(block)], "MRPC"))
    assert ("| kd | best-on-dev | 76.31 (block2-xeon) | 76.38 (block2-xeon) | 76.92 (block2-xeon) | – | "
            "76.31 (block5-test) | 4 | 76.48 ± 0.29 |") in table
    assert "| finetune | final | 69.03 (block2-xeon) | 69.59 (block2-xeon) |" in table  # seed 2 from the first block
    assert "| mate-kd (generator lr 2e-4) | best-on-dev | 76.31 (block2-xeon) |" in table
    assert "| mate-kd (generator lr 5e-5) | best-on-dev | – | – | – | 76.31 (block5-test) | – | 1 | 76.31 |" in table
    assert "| kd − finetune | best-on-dev | 4 | " in table
    assert "| mate-kd (generator lr 5e-5) − kd |" not in table  # no seed in common
    assert "| selected teacher | – | lr5e-5-ep5: 84.81 (551) | lr5e-5-ep5: 84.81 (551) | yes |" in table
    assert "| kd | 1 | 76.31 / 70.06 | 76.31 / 70.06 | yes |" in table
    assert "| finetune | 2 | 76.56 / 69.59 | 76.56 / 70.59 | no |" in table
    assert report.over_blocks_table([BLOCK2], "MRPC") == []  # one block alone is not a pool
