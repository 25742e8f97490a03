"""Network builders: the T1w-conditioned diffusion UNet, the noisy-image lobe classifier, the
noise schedule. All from MONAI; this module only maps :class:`NetConfig` onto their arguments.
"""

from __future__ import annotations

import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.nets.diffusion_model_unet import DiffusionModelEncoder
from monai.networks.schedulers import DDIMScheduler

from bids_fcd.config import NetConfig


def build_unet(net: NetConfig) -> DiffusionModelUNet:
    """ε_θ(x_t ‖ T1w, t, c): input (B, in_channels, H, W), output (B, 1, H, W).

    Channel 0 of the input is the noisy FLAIR x_t, channel 1 (when ``in_channels == 2``) the
    clean T1w. The class c (a lobe index, 0 = healthy) is a learned embedding added to the time
    embedding (``num_class_embeds``). For ``net.kind == "inpaint"`` the input has one more channel,
    the hole mask, and x_t is pasted into the clean FLAIR outside the holes
    (:func:`bids_fcd.sampling.patches.inpaint_input`); its output is x̂_0 when
    ``net.prediction_type == "sample"``.
    """
    return DiffusionModelUNet(
        spatial_dims=2,
        in_channels=net.unet_in_channels,
        out_channels=1,
        channels=net.unet_channels,
        attention_levels=net.unet_attention,
        num_res_blocks=net.unet_res_blocks,
        num_head_channels=net.unet_head_channels,
        norm_num_groups=net.norm_num_groups,
        num_class_embeds=net.num_classes,
    )


def build_classifier(net: NetConfig) -> DiffusionModelEncoder:
    """C(c | x_t, t): noisy FLAIR (B, 1, H, W) and t (B,) → logits (B, 6) over ``LOBES``."""
    return DiffusionModelEncoder(
        spatial_dims=2,
        in_channels=1,
        out_channels=net.num_classes,
        input_shape=net.grid.shape,
        channels=net.classifier_channels,
        attention_levels=net.classifier_attention,
        num_res_blocks=net.classifier_res_blocks,
        num_head_channels=net.classifier_channels[-1],
        norm_num_groups=min(net.norm_num_groups, net.classifier_channels[0]),
    )


def build_scheduler(net: NetConfig) -> DDIMScheduler:
    """DDIM over T = ``num_train_timesteps`` with linear β from ``beta_start`` to ``beta_end``.

    ``alphas_cumprod`` are ᾱ_t. Samples are not clipped (the anomaly depends on exact values).
    """
    return DDIMScheduler(
        num_train_timesteps=net.num_train_timesteps,
        schedule="linear_beta",
        beta_start=net.beta_start,
        beta_end=net.beta_end,
        clip_sample=False,
        set_alpha_to_one=False,
    )


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class WholeSliceEpsilon(torch.nn.Module):
    """An inpainting UNet seen as the paper's ε_θ(x_t ‖ T1w, t, c) on whole slices.

    The hole is the whole slice (mask channel = 1, which the inpainting model is also trained on),
    and an x̂_0 output is turned into ε̂ = (x_t − √ᾱ_t x̂_0) / √(1 − ᾱ_t), so the stochastic and
    deterministic encodings (and classifier guidance) run on an inpainting model unchanged.
    Input (B, C, H, W), output (B, 1, H, W).
    """

    def __init__(self, unet: torch.nn.Module, net: NetConfig, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.unet, self.sample = unet, net.prediction_type == "sample"
        self.register_buffer("acp", alphas_cumprod.detach().clone().float())

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:, :1])
        out = self.unet(torch.cat([x, ones], dim=1), timesteps=timesteps, class_labels=class_labels)
        if not self.sample:
            return out
        acp: torch.Tensor = self.acp  # type: ignore[assignment]
        a = acp.to(x.device)[timesteps].view(-1, 1, 1, 1)
        return (x[:, :1] - a.sqrt() * out.float()) / (1.0 - a).sqrt()


def epsilon_unet(unet: torch.nn.Module, net: NetConfig) -> torch.nn.Module:
    """ε_θ for the whole-slice encodings: the UNet itself (``ddpm``) or a :class:`WholeSliceEpsilon` view."""
    if net.kind == "ddpm":
        return unet
    return WholeSliceEpsilon(unet, net, build_scheduler(net).alphas_cumprod).eval()
