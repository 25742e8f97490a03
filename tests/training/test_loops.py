"""The diffusion loops' losses: the healthy-only ε-loss ignores lesion voxels, the paper's does not."""

import torch

from bids_fcd.training.loops import diffusion_epoch, healthy_weight


class _Probe(torch.nn.Module):
    """A 'UNet' whose ε prediction is a learnable image: the gradient shows which pixels the loss sees."""

    def __init__(self, h: int, w: int) -> None:
        super().__init__()
        self.img = torch.nn.Parameter(torch.zeros(1, 1, h, w))

    def forward(self, x, timesteps, class_labels):  # noqa: ARG002 - the UNet's signature
        return self.img.expand(x.shape[0], 1, -1, -1)


def _one_step(healthy_only: bool) -> torch.Tensor:
    h = w = 16
    x = torch.zeros(2, 2, h, w)
    lesion = torch.zeros(2, 1, h, w)
    lesion[:, :, 6:9, 6:9] = 1.0
    probe = _Probe(h, w)
    opt = torch.optim.SGD(probe.parameters(), lr=1.0)
    grads = []
    opt.step = lambda: grads.append(probe.img.grad.detach().clone())  # keep the gradient, do not step
    loader = [(x, lesion, torch.zeros(2, dtype=torch.long))]
    diffusion_epoch(probe, None, opt, loader, torch.linspace(0.99, 0.01, 10), torch.device("cpu"),
                    torch.Generator().manual_seed(0), lambda _: None, healthy_only=healthy_only)
    return grads[0][0, 0]


def test_healthy_weight_grows_the_lesion_by_two_pixels():
    lesion = torch.zeros(1, 1, 15, 15)
    lesion[0, 0, 7, 7] = 1.0
    keep = healthy_weight(lesion)
    assert keep[0, 0, 5:10, 5:10].eq(0).all()
    assert keep.sum() == 15 * 15 - 25


def test_healthy_only_loss_ignores_lesion_voxels():
    g_healthy, g_all = _one_step(True), _one_step(False)
    grown = slice(4, 11)
    assert g_healthy[grown, grown].abs().max() == 0       # lesion + 2 px: no gradient at all
    assert g_healthy[0:3, 0:3].abs().min() > 0            # healthy pixels are learnt
    assert g_all[grown, grown].abs().min() > 0            # the paper's loss sees the lesion too
