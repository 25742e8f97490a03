"""Two gloo processes on CPU train a few steps; both ranks must end with identical weights."""

import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from bids_fcd.nets.networks import build_scheduler, build_unet
from bids_fcd.training import ddp
from bids_fcd.training.datasets import LesionSlices, SliceDataset, SubjectSlices
from bids_fcd.training.loops import diffusion_epoch, make_loader
from bids_fcd.training.presets import PRESETS

NET = PRESETS["tiny"].net


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    info = ddp.setup(torch.device("cpu"))
    rng = np.random.default_rng(0)
    stack = rng.uniform(-1, 1, (12, 2, *NET.grid.shape)).astype(np.float32)
    ds = SliceDataset([SubjectSlices("01", stack, np.ones((12, *NET.grid.shape), bool), None, "n/a")])
    torch.manual_seed(0)
    unet = build_unet(NET)
    model = DDP(unet)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader, sampler = make_loader(LesionSlices(ds), torch.ones(len(ds)), 3, seed=0, info=info)
    gen = torch.Generator().manual_seed(100 + rank)   # different noise per rank
    sampler.set_epoch(0)
    diffusion_epoch(model, None, opt, loader, build_scheduler(NET).alphas_cumprod, torch.device("cpu"), gen,
                    lambda _: None)
    torch.save(unet.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    ddp.teardown(info)


def test_two_gloo_ranks_hold_identical_weights(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = build_unet(NET).state_dict()
    changed = 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
        changed += int(not torch.equal(a[k], init[k]))
    assert changed > 0, "training must have changed the weights"
    assert not dist.is_initialized()
