"""Helpers shared by the sampler tests (and the analysis tests): seeded tiny networks."""

import torch

from bids_fcd.nets.networks import build_classifier, build_scheduler, build_unet
from bids_fcd.training.presets import PRESETS

NET = PRESETS["tiny"].net


def tiny_models():
    """Seeded tiny networks (UNet, classifier, scheduler) and a (2, 2, 32, 32) input; MONAI
    zero-initialises the UNet's last conv, so it gets seeded weights."""
    torch.manual_seed(0)
    u, c, s = build_unet(NET).eval(), build_classifier(NET).eval(), build_scheduler(NET)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in u.out.parameters():
            p.normal_(0, 0.05, generator=g)
    x = torch.rand(2, 2, 32, 32, generator=g) * 2 - 1
    return u, c, s, x
