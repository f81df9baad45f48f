"""Run `mate_kd.loop.train` under torchrun and record, per process, a checksum of the trained weights.

Written by rank 0 to $DDP_REPORT: {"world_size", "student": [per-rank sums], "generator": [...], "results"}.
"""

import json
import os
import sys

import torch.distributed as dist

from mate_kd import loop
from mate_kd.config import parse_args

runs = []
real_build_run = loop.build_run


def recording_build_run(args):
    run = real_build_run(args)
    runs.append(run)
    return run


loop.build_run = recording_build_run
results = loop.train(parse_args(sys.argv[1:]))
objective = runs[0].objective


def checksum(model):
    return float(sum(p.double().sum() for p in model.parameters())) if model is not None else None


mine = {"student": checksum(objective.bare_student), "generator": checksum(objective.bare_generator)}
gathered = [None] * dist.get_world_size()
dist.all_gather_object(gathered, mine)
if dist.get_rank() == 0:
    with open(os.environ["DDP_REPORT"], "w") as f:
        json.dump({"world_size": dist.get_world_size(), "student": [g["student"] for g in gathered],
                   "generator": [g["generator"] for g in gathered], "results": results}, f)
