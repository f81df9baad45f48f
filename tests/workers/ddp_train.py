"""Run `mate_kd.loop.train` under torchrun and record, per process, a checksum of the trained weights and the
first random numbers it draws.

Written by rank 0 to $DDP_REPORT: {"world_size", "student": [per-rank sums], "generator": [...], "results",
"draws": [per rank: the mask and the Gumbel-softmax samples its first batch would draw on one shared input]}.
"""

import json
import os
import sys

import torch
import torch.distributed as dist

from mate_kd import loop
from mate_kd.config import parse_args
from mate_kd.perturb import choose_mask, straight_through_sample
from threads import gloo_threads  # beside this script, which torchrun puts first on sys.path

runs, draws = [], []
real_build_run = loop.build_run


def recording_build_run(args):
    run = real_build_run(args)
    runs.append(run)
    # Under a forked RNG, so training draws exactly what it would draw without this.
    with torch.random.fork_rng(devices=[]):
        ids = torch.full((4, 32), 1000)
        mask = choose_mask(ids, torch.ones_like(ids), run.objective.special_ids.cpu(), args.mask_prob)
        samples = straight_through_sample(torch.zeros(16, 64), 1.0).argmax(-1)
    draws.append({"mask": mask.int().tolist(), "gumbel": samples.tolist()})
    return run


loop.build_run = recording_build_run
results = loop.train(parse_args(sys.argv[1:]))
objective = runs[0].objective


def checksum(model):
    return float(sum(p.detach().double().sum() for p in model.parameters())) if model is not None else None


mine = {"student": checksum(objective.bare_student), "generator": checksum(objective.bare_generator),
        "draws": draws[0]}
gathered = [None] * dist.get_world_size()
dist.all_gather_object(gathered, mine)
if dist.get_rank() == 0:
    with open(os.environ["DDP_REPORT"], "w") as f:
        json.dump({"world_size": dist.get_world_size(), "student": [g["student"] for g in gathered],
                   "generator": [g["generator"] for g in gathered], "results": results,
                   "draws": [g["draws"] for g in gathered]}, f)
# The DDP-wrapped models hold the process group: while they live, destroy_process_group leaves gloo's threads
# running into interpreter shutdown, where one that frees a tensor waits for the GIL and aborts the process
# (SIGABRT, "terminate called without an active exception"; about 1 run in 20 on two busy cores). Drop them
# first, as mate_kd.cli does by returning from train, so that destroying the group joins its threads.
del runs, objective
dist.destroy_process_group()
if gloo_threads():
    sys.exit(f"gloo threads outlived destroy_process_group: {gloo_threads()}")
