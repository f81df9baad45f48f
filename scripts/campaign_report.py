"""Tables and figures of docs/results-cpu.md from the paper-regime campaign's recorded files.

Reads one block of docs/results/paper (what `run_cpu_campaign.sh sync` copies out of the campaign directory),
prints the markdown tables that the report quotes, and writes its figures:

    python scripts/campaign_report.py --results docs/results/paper/BLOCK --figures docs/figures/BLOCK

With --pool OTHER_BLOCK..., each task's mate-kd − kd pairs of all the blocks are also pooled seed by seed (a
mate-kd run pairs only with kd of its own block), and the kd runs that two blocks share are checked for equality;
and each task's main campaign is shown with every block's seeds (finetune and kd are machine-independent, so a
block that ran only those adds their seeds).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics

import yaml

from mate_kd.compare import paired_difference
from mate_kd.plot import adversary_curves, finish_axes, plot_runs, pyplot, read_log, save

TASKS = ("SST-2", "MRPC", "RTE")
METHODS = ("finetune", "kd", "mate-kd", "mate-kd-ng0")


def _json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _score(results: dict, which: str) -> float:
    split, metric = results["selection_metric"].split("/")
    return 100 * results[which]["metrics"][split][metric]


def teacher_table(root: str) -> list[str]:
    lines = ["| task | lr | epochs | best-on-dev (step) | final | selected |", "| --- | --- | --- | --- | --- | --- |"]
    for task in TASKS:
        runs = sorted(glob.glob(f"{root}/teachers/{task}/*/eval_results.json"))
        scores = {r: _score(_json(r), "best") for r in runs}
        for run in runs:
            results, name = _json(run), os.path.basename(os.path.dirname(run))
            lr, epochs = name[2:].split("-ep")
            lines.append(f"| {task} | {lr} | {epochs} | {scores[run]:.2f} ({results['best']['step']}) | "
                         f"{_score(results, 'final'):.2f} | {'yes' if scores[run] == max(scores.values()) else ''} |")
    return lines


def generator_figure(root: str, figures: str) -> list[str]:
    results = _json(f"{root}/generator/mlm_results.json")
    curve = results["curve"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot([p["step"] for p in curve], [100 * p["dev_accuracy"] for p in curve], marker="o", markersize=3,
            label="dev masked-token accuracy")
    finish_axes(ax, "accuracy x100 (30% of tokens masked)", "Generator pretraining: dev masked-token accuracy")
    ax.set_xlabel("MLM steps (batch 64)")
    ax2 = ax.twinx()
    ax2.plot([p["step"] for p in curve[1:]], [p["dev_loss"] for p in curve[1:]], color="tab:orange", linewidth=1,
             label="dev MLM loss")
    ax2.set_ylabel("dev MLM loss (nats)")
    fig.legend(loc="center right", bbox_to_anchor=(0.88, 0.45), frameon=False)
    fig.tight_layout()
    save(fig, f"{figures}/paper_generator.png")
    plt.close(fig)
    last = curve[-4:]
    return [f"steps {results['steps']} ({results['epochs']:.2f} epochs of {results['train_examples']} texts), wall "
            f"{results['wall_s'] / 60:.0f} min; dev accuracy {100 * results['dev_before']['accuracy']:.1f}% -> "
            f"{100 * results['dev_after']['accuracy']:.2f}%, loss {results['dev_before']['loss']:.2f} -> "
            f"{results['dev_after']['loss']:.2f}; last four evaluations: "
            + ", ".join(f"{p['step']}: {100 * p['dev_accuracy']:.2f}%" for p in last)]


def _runs(root: str, campaign: str, task: str, method: str) -> list[str]:
    return sorted(glob.glob(f"{root}/{campaign}/runs/{task}/{method}/seed*/eval_results.json"))


def _seed(run: str) -> int:
    """The seed of a run from its eval_results.json path (.../seed3/eval_results.json -> 3)."""
    return int(os.path.basename(os.path.dirname(run))[len("seed"):])


def adversary_table(root: str) -> list[str]:
    """Per campaign and method, the probe at the first, middle and last evaluation, mean over seeds."""
    lines = ["| runs | method | seeds | at update | D(S(x'),T(x')) current G | initial G | current / initial | "
             "replaced, current G | initial G | D(S(x),T(x)) |", "| --- |" * 1 + " --- |" * 9]
    campaigns = [(f"campaign/{t}", t) for t in TASKS] + [(c, t) for t in TASKS for c in _sweep_campaigns(root, t)]
    for campaign, task in campaigns:
        for method in ("mate-kd", "mate-kd-ng0"):
            curves = [adversary_curves(read_log(os.path.dirname(r))) for r in _runs(root, campaign, task, method)]
            curves = [c for c in curves if c]
            if not curves:
                continue
            steps = sorted(set.intersection(*(set(c["d_adv_current"]) for c in curves)))
            for step in (steps[0], steps[len(steps) // 2], steps[-1]):
                mean = {k: statistics.mean(c[k][step] for c in curves) for k in curves[0]}
                lines.append(f"| {campaign} | {method} | {len(curves)} | {step} | {mean['d_adv_current']:.4f} | "
                             f"{mean['d_adv_frozen']:.4f} | {mean['d_adv_current'] / mean['d_adv_frozen']:.3f} | "
                             f"{100 * mean['replaced_current']:.1f}% | {100 * mean['replaced_frozen']:.1f}% | "
                             f"{mean['d_clean']:.4f} |")
    return lines


def _generator_lr(run: str) -> str:
    """The run's --generator_learning_rate as the sweep writes it (2e-4, 5e-7, ...)."""
    with open(os.path.join(os.path.dirname(run), "run_config.yaml"), encoding="utf-8") as f:
        value = float(yaml.safe_load(f)["generator_learning_rate"])
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _ci(d: dict) -> str:
    """A paired_difference's 95% interval as the report prints it; "–" for a single seed."""
    return f"[{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]" if d["ci95"] else "–"


def _glr_task(sweep: str) -> str:
    """The task of a sweep directory, glr/TASK-LR (glr/SST-2-5e-5 -> SST-2)."""
    name = os.path.basename(sweep)
    return next(t for t in TASKS if name.startswith(f"{t}-"))


def _sweep_campaigns(root: str, task: str) -> list[str]:
    return sorted(os.path.relpath(d, root) for d in glob.glob(f"{root}/glr/*") if _glr_task(d) == task)


def _glr_points(root: str, task: str) -> list[tuple[str, int, str, str]]:
    """(rate, seed, campaign, run) of every mate-kd run of a task: the sweep's and the main campaign's."""
    points = [(_generator_lr(run), _seed(run), where, run)
              for where in _sweep_campaigns(root, task) + [f"campaign/{task}"]
              for run in _runs(root, where, task, "mate-kd")]
    return sorted(points, key=lambda p: (float(p[0]), p[1], p[2]))


def _kd_runs(root: str, task: str) -> dict[int, dict]:
    return {_seed(r): _json(r) for r in _runs(root, f"campaign/{task}", task, "kd")}


def _glr_pairs(root: str, task: str) -> dict[str, dict[int, dict[str, float]]]:
    """Per rate and seed, mate-kd − kd of the same seed in this block (x100), best-on-dev and final."""
    kd, pairs = _kd_runs(root, task), {}
    for rate, seed, _, run in _glr_points(root, task):
        if seed in kd:
            results = _json(run)
            pairs.setdefault(rate, {})[seed] = {w: _score(results, w) - _score(kd[seed], w) for w in ("best", "final")}
    return pairs


def _difference_row(label: str, which: str, values: list[float]) -> str:
    d = paired_difference(values)
    spread = f" ± {d['std']:.2f}" if d["std"] is not None else ""
    return (f"| {label} | {'best-on-dev' if which == 'best' else 'final'} | {d['n']} | {d['mean']:+.2f}{spread} | "
            f"{_ci(d)} | {d['wins']} / {d['ties']} / {d['losses']} |")


def glr_table(root: str, task: str) -> list[str]:
    """One task's generator-lr sweep: per rate and seed, best-on-dev and final beside kd's run of the same seed,
    then per rate the paired-by-seed difference against kd (x100, 95% t-interval, better / equal / worse).

    The main campaign's mate-kd runs are the sweep's points at their rate (same flags), so they count once."""
    lines = ["| generator lr | seed | runs | best-on-dev | final | kd best-on-dev (same seed) | kd final | "
             "replaced at the end (probe) | wall min |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    kd = _kd_runs(root, task)
    for rate, seed, where, run in _glr_points(root, task):
        results = _json(run)
        probe = adversary_curves(read_log(os.path.dirname(run))).get("replaced_current", {})
        other = kd.get(seed)
        kd_cells = f"{_score(other, 'best'):.2f} | {_score(other, 'final'):.2f}" if other else "– | –"
        replaced = f"{100 * probe[max(probe)]:.1f}%" if probe else "–"
        wall = _json(os.path.join(os.path.dirname(run), "compare_run.json")).get("wall_s")
        lines.append(f"| {rate} | {seed} | {where} | {_score(results, 'best'):.2f} | "
                     f"{_score(results, 'final'):.2f} | {kd_cells} | {replaced} | {wall / 60:.0f} |")
    lines += ["", "| generator lr | score | seeds | mate-kd − kd, mean ± std | 95% CI | better / equal / worse |",
              "| --- | --- | --- | --- | --- | --- |"]
    for rate, by_seed in sorted(_glr_pairs(root, task).items(), key=lambda item: float(item[0])):
        for which in ("best", "final"):
            lines.append(_difference_row(rate, which, [d[which] for d in by_seed.values()]))
    return lines


def _block(root: str) -> str:
    """A block's name: the last part of its directory (docs/results/paper/block2-xeon -> block2-xeon)."""
    return os.path.basename(os.path.normpath(root))


def pooled_table(roots: list[str], task: str) -> list[str]:
    """mate-kd − kd per generator lr, pooled over blocks: each pair is a mate-kd run and the kd run of the same
    seed in the same block (a mate-kd run is only comparable within its block), and a seed counts once, from
    the first block that has it. Then every kd seed that two blocks both ran, which must agree (the rebuild check)."""
    pairs: dict[str, dict[int, tuple[str, dict[str, float]]]] = {}
    for root in roots:
        for rate, by_seed in _glr_pairs(root, task).items():
            for seed, d in by_seed.items():
                pairs.setdefault(rate, {}).setdefault(seed, (_block(root), d))
    if len({block for by_seed in pairs.values() for block, _ in by_seed.values()}) < 2:
        return []
    lines = ["| generator lr | seed | block | mate-kd − kd best-on-dev | final |", "| --- | --- | --- | --- | --- |"]
    summary = ["", "| generator lr | score | seeds | mate-kd − kd, mean ± std | 95% CI | better / equal / worse |",
               "| --- | --- | --- | --- | --- | --- |"]
    for rate, by_seed in sorted(pairs.items(), key=lambda item: float(item[0])):
        for seed, (block, d) in sorted(by_seed.items()):
            lines.append(f"| {rate} | {seed} | {block} | {d['best']:+.2f} | {d['final']:+.2f} |")
        for which in ("best", "final"):
            summary.append(_difference_row(rate, which, [d[which] for _, d in by_seed.values()]))
    check = ["", "| kd seed | " + " | ".join(_block(r) for r in roots) + " | equal |",
             "| --- |" + " --- |" * (len(roots) + 1)]
    kd = [_kd_runs(root, task) for root in roots]
    for seed in sorted(set().union(*kd)):
        scores = [(_score(k[seed], "best"), _score(k[seed], "final")) if seed in k else None for k in kd]
        if sum(s is not None for s in scores) > 1:
            ran = {s for s in scores if s is not None}
            check.append(f"| {seed} | " + " | ".join(f"{s[0]:.2f} / {s[1]:.2f}" if s else "–" for s in scores)
                         + f" | {'yes' if len(ran) == 1 else 'no'} |")
    return lines + summary + (check if len(check) > 3 else [])


MACHINE_INDEPENDENT = ("finetune", "kd")  # bit-equal on every CPU kind measured; mate-kd runs are not


def _campaign_method(run: str, method: str) -> str:
    """A campaign run's method as the over-blocks table keys it: mate-kd with its generator lr, so rates never mix."""
    return f"mate-kd (generator lr {_generator_lr(run)})" if method == "mate-kd" else method


def over_blocks_table(roots: list[str], task: str) -> list[str]:
    """The main campaign's four methods with every block's seeds: per method and seed the score and the block that
    ran it (a seed counts once, from the first block that has it), mean ± std, then every pair of methods seed by
    seed (a mate-kd run pairs with kd of any block: kd is machine-independent). Last, the selected teacher of every
    block that built one, and every finetune or kd seed that two blocks both ran: each must agree."""
    runs: dict[str, dict[int, list[tuple[str, dict]]]] = {}
    blocks = [_block(root) for root in roots]
    for root, block in zip(roots, blocks):
        for method in METHODS:
            for run in _runs(root, f"campaign/{task}", task, method):
                runs.setdefault(_campaign_method(run, method), {}).setdefault(_seed(run), []).append(
                    (block, _json(run)))
    if len({block for by_seed in runs.values() for ran in by_seed.values() for block, _ in ran}) < 2:
        return []
    seeds = sorted({seed for by_seed in runs.values() for seed in by_seed})
    scores = {m: {s: {w: _score(ran[0][1], w) for w in ("best", "final")} for s, ran in by_seed.items()}
              for m, by_seed in runs.items()}
    lines = ["| method | score | " + " | ".join(f"seed {s}" for s in seeds) + " | seeds | mean ± std |",
             "| --- | --- |" + " --- |" * (len(seeds) + 2)]
    for method, by_seed in runs.items():
        for which in ("best", "final"):
            cells = [f"{scores[method][s][which]:.2f} ({by_seed[s][0][0]})" if s in by_seed else "–" for s in seeds]
            values = [scores[method][s][which] for s in sorted(by_seed)]
            spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
            lines.append(f"| {method} | {'best-on-dev' if which == 'best' else 'final'} | {' | '.join(cells)} | "
                         f"{len(values)} | {statistics.mean(values):.2f}{spread} |")
    lines += ["", "| A − B | score | seeds | mean ± std | 95% CI | better / equal / worse |",
              "| --- | --- | --- | --- | --- | --- |"]
    methods = list(runs)
    for i, a in enumerate(methods):
        for b in methods[:i]:
            shared = sorted(set(scores[a]) & set(scores[b]))
            for which in ("best", "final") if shared else ():
                lines.append(_difference_row(f"{a} − {b}", which,
                                             [scores[a][s][which] - scores[b][s][which] for s in shared]))
    check = ["", "| machine-independent run | seed | " + " | ".join(blocks) + " | equal |",
             "| --- | --- |" + " --- |" * (len(roots) + 1)]
    teachers = {}
    for root, block in zip(roots, blocks):
        found = {r: _json(r) for r in glob.glob(f"{root}/teachers/{task}/*/eval_results.json")}
        if found:
            run = max(found, key=lambda r: _score(found[r], "best"))
            teachers[block] = (
                os.path.basename(os.path.dirname(run)), _score(found[run], "best"), found[run]["best"]["step"])
    if len(teachers) > 1:
        cells = [f"{teachers[b][0]}: {teachers[b][1]:.2f} ({teachers[b][2]})" if b in teachers else "–"
                 for b in blocks]
        check.append(f"| selected teacher | – | {' | '.join(cells)} | "
                     f"{'yes' if len(set(teachers.values())) == 1 else 'no'} |")
    for method in MACHINE_INDEPENDENT:
        for seed, ran in sorted(runs.get(method, {}).items()):
            if len(ran) > 1:
                pairs = {b: (_score(r, "best"), _score(r, "final")) for b, r in ran}
                cells = [f"{pairs[b][0]:.2f} / {pairs[b][1]:.2f}" if b in pairs else "–"
                         for b in blocks]
                check.append(f"| {method} | {seed} | {' | '.join(cells)} | "
                             f"{'yes' if len(set(pairs.values())) == 1 else 'no'} |")
    return lines + (check if len(check) > 3 else [])


def padding_table(root: str) -> list[str]:
    """SST runs without --group_by_length (the padding stage) beside the campaign's length-grouped runs, per seed,
    then per method the paired-by-seed difference ungrouped − grouped (x100) and the mean wall-time ratio."""
    lines = ["| method | seed | grouped best / final | grouped wall min | ungrouped best / final | ungrouped wall min | "
             "ungrouped / grouped wall |", "| --- | --- | --- | --- | --- | --- | --- |"]
    summary = ["", "| method | seeds | ungrouped − grouped best-on-dev | 95% CI | final | 95% CI | "
               "mean wall ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for method in ("kd", "mate-kd"):
        grouped = {_seed(r): r for r in _runs(root, "campaign/SST-2", "SST-2", method)}
        diffs: dict[str, list[float]] = {"best": [], "final": []}
        ratios = []
        for run in _runs(root, "padding/SST-2", "SST-2", method):
            seed = _seed(run)
            if seed not in grouped:
                continue
            cells = []
            pair = [_json(r) for r in (grouped[seed], run)]
            for r, results in zip((grouped[seed], run), pair):
                wall = _json(os.path.join(os.path.dirname(r), "compare_run.json"))["wall_s"]
                cells.append((f"{_score(results, 'best'):.2f} / {_score(results, 'final'):.2f}", wall))
            for which in diffs:
                diffs[which].append(_score(pair[1], which) - _score(pair[0], which))
            ratios.append(cells[1][1] / cells[0][1])
            lines.append(f"| {method} | {seed} | {cells[0][0]} | {cells[0][1] / 60:.0f} | {cells[1][0]} | "
                         f"{cells[1][1] / 60:.0f} | {ratios[-1]:.2f} |")
        if ratios:
            cells = []
            for which in ("best", "final"):
                d = paired_difference(diffs[which])
                cells.append(f"{d['mean']:+.2f} ({d['wins']} / {d['ties']} / {d['losses']}) | {_ci(d)}")
            summary.append(f"| {method} | {len(ratios)} | {' | '.join(cells)} | {statistics.mean(ratios):.2f} |")
    return lines + summary


def collapse_table(root: str) -> list[str]:
    """Per mate-kd run, how far the adversarial updates moved the generator (RUN/generator_drift.json, written by
    `run_cpu_campaign.sh drift` before sync): the collapse columns show a generator that puts one token everywhere."""
    records = sorted(glob.glob(f"{root}/*/*/runs/*/*/seed*/generator_drift.json"))
    if not records:
        return []
    lines = ["| runs | method | seed | generator lr | generator updates | relative weight change | "
             "mean KL(end ‖ start) | top-1 changed | distinct top-1 tokens | commonest top-1 token |",
             "| --- |" + " --- |" * 9]
    start = _json(records[0])["start_generator"]
    lines.append(f"| start | | | | 0 | 0 | 0 | 0 | {start['distinct_top1']} | "
                 f"{start['commonest_top1']!r} {100 * start['commonest_top1_share']:.1f}% |")
    for path in records:
        r, run = _json(path), os.path.dirname(path)
        campaign = os.path.relpath(run, root).split("/runs/")[0]
        method = os.path.basename(os.path.dirname(run))
        lines.append(f"| {campaign} | {method} | {_seed(path)} | {r['generator_learning_rate']:g} | "
                     f"{r['generator_updates']} | {r['relative_weight_change']:.2e} | {r['mean_kl_end_start']:.2e} | "
                     f"{100 * r['top1_changed']:.1f}% | {r['distinct_top1']} | "
                     f"{r['commonest_top1']!r} {100 * r['commonest_top1_share']:.1f}% |")
    return lines


def wall_table(root: str, campaign_of: dict[str, str]) -> list[str]:
    lines = ["| task | method | runs | median wall min | student updates | generator updates |",
             "| --- | --- | --- | --- | --- | --- |"]
    for task in TASKS:
        for method in METHODS:
            runs = _runs(root, campaign_of.get(task, f"campaign/{task}"), task, method)
            walls = [_json(os.path.join(os.path.dirname(r), "compare_run.json")).get("wall_s") for r in runs]
            walls = [w for w in walls if w]
            if runs:
                progress = _json(runs[0])["progress"]
                lines.append(f"| {task} | {method} | {len(runs)} | "
                             f"{statistics.median(walls) / 60:.0f} | {progress['student_updates']} | "
                             f"{progress['generator_updates']} |")
    return lines


def _seed_runs(root: str, task: str, campaign: str, seed: int) -> list[tuple[str, str]]:
    """(run dir, label) of every finished run of one seed: the campaign's methods and the generator-lr sweep's
    mate-kd runs. Beside a sweep's runs every mate-kd label says its rate."""
    sweeps = _sweep_campaigns(root, task)
    runs = [(f"{root}/{campaign}/runs/{task}/{m}/seed{seed}", m) for m in METHODS]
    runs += [(f"{root}/{sweep}/runs/{task}/mate-kd/seed{seed}", "mate-kd") for sweep in sweeps]
    runs = [(d, label) for d, label in runs if os.path.isfile(f"{d}/eval_results.json")]
    return [(d, f"mate-kd (generator lr {_generator_lr(f'{d}/eval_results.json')})" if sweeps and label == "mate-kd"
             else label) for d, label in runs]


def adversary_figures(root: str, figures: str, campaign_of: dict[str, str]) -> list[str]:
    """One figure per task: the runs of its first seed that has two to compare (seed 1 where the block ran it; a
    follow-up block may start at seed 2), the generator-lr sweep's among them."""
    written = []
    for task in TASKS:
        campaign = campaign_of.get(task, f"campaign/{task}")
        seeds = sorted({_seed(r) for where in [campaign, *_sweep_campaigns(root, task)] for m in METHODS
                        for r in _runs(root, where, task, m)})
        for seed in seeds:
            runs = _seed_runs(root, task, campaign, seed)
            if len(runs) > 1:
                written.append(plot_runs([d for d, _ in runs], f"{figures}/paper_runs_{task}.png",
                                         labels=[label for _, label in runs],
                                         title=f"{task}, seed {seed}: " + ", ".join(label for _, label in runs)))
                break
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, help="One block: docs/results/paper/BLOCK, or the pilot's.")
    parser.add_argument("--figures", required=True, help="Where the figures go, e.g. docs/figures/BLOCK.")
    parser.add_argument("--pool", nargs="+", default=[], metavar="BLOCK",
                        help="Other blocks whose mate-kd − kd pairs join this block's, seed by seed (this block first).")
    args = parser.parse_args()
    for block in [args.results, *args.pool]:
        if not os.path.isdir(block):
            parser.error(f"{block} is not a directory: give a block's results, e.g. docs/results/paper/block2-xeon")
    root, campaign_of = args.results, {}
    if os.path.isfile(f"{root}/machine.json"):
        machine = _json(f"{root}/machine.json")
        print(f"Block built on {machine['cpu']} (torch {machine['torch']}, {machine['torch_cpu_capability']}), "
              f"code {machine['mate_kd_commit'][:7]}, {machine['built']}\n")
    print("## Teachers\n", *teacher_table(root), sep="\n")
    if os.path.isfile(f"{root}/generator/mlm_results.json"):
        print("\n## Generator\n", *generator_figure(root, args.figures), sep="\n")
    for task in TASKS:
        if _sweep_campaigns(root, task):
            print(f"\n## Generator-lr sweep ({task})\n", *glr_table(root, task), sep="\n")
    for task in TASKS:
        if args.pool and (pooled := pooled_table([root, *args.pool], task)):
            print(f"\n## mate-kd − kd pooled over blocks ({task})\n", *pooled, sep="\n")
    for task in TASKS:
        if args.pool and (table := over_blocks_table([root, *args.pool], task)):
            print(f"\n## Campaign over blocks ({task})\n", *table, sep="\n")
    print("\n## Adversary probe\n", *adversary_table(root), sep="\n")
    if glob.glob(f"{root}/padding/SST-2/runs/SST-2/*/seed*/eval_results.json"):
        print("\n## Padding check (SST)\n", *padding_table(root), sep="\n")
    if collapse := collapse_table(root):
        print("\n## Generator drift and collapse (per mate-kd run)\n", *collapse, sep="\n")
    print("\n## Wall times\n", *wall_table(root, campaign_of), sep="\n")
    for path in adversary_figures(root, args.figures, campaign_of):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
