"""Training presets: ``tiny`` (tests), ``default`` (2 mm grid, trains on 2 CPU cores), ``fine`` (the default's
networks on a 1.5 mm grid, for small lesions; the shipped model's and the CLI default), ``large`` (the same grid
and classifier, a 6.5× larger diffusion UNet for ≥ 100 training brains), ``inpaint`` (the patched
encoding's masked diffusion model, 2 mm grid), ``inpaint-tiny`` (tests), ``paper``."""

from __future__ import annotations

import dataclasses

from bids_fcd.config import GridConfig, NetConfig, TrainConfig

#: The CPU presets' grid: 96×80 axial at 2 mm, 66 slices from z = −50 to 80 mm (MNI152NLin2009aSym).
GRID_2MM = GridConfig(shape=(96, 80), spacing_mm=2.0, center_mm=(0.0, -18.0), z_min_mm=-50.0, z_max_mm=80.0)
#: The same box at 1.5 mm: 128×108 axial (the width rounded up to a multiple of 4 for the UNet's two
#: downsamplings), 87 slices from z = −50 to 79 mm; 2.4× the default grid's voxels.
GRID_1P5MM = GridConfig(shape=(128, 108), spacing_mm=1.5, center_mm=(0.0, -18.0), z_min_mm=-50.0, z_max_mm=79.0)

PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(
        preset="tiny", epochs=2, batch_size=8, lr=1e-3, classifier_lr=1e-3, ema_decay=0.9,
        net=NetConfig(unet_channels=(16, 32), unet_attention=(False, False), unet_head_channels=16,
                      norm_num_groups=8, classifier_channels=(8, 16), classifier_attention=(False, False),
                      grid=GridConfig(shape=(32, 32), spacing_mm=6.0, center_mm=(0.0, -18.0),
                                      z_min_mm=-48.0, z_max_mm=78.0)),
    ),
    "default": TrainConfig(
        preset="default", epochs=12, batch_size=16, lr=5e-4, classifier_lr=5e-4,
        ema_decay=0.995, classifier_max_t=500,
        net=NetConfig(unet_channels=(16, 32, 64), unet_attention=(False, False, False), unet_head_channels=32,
                      norm_num_groups=16, classifier_channels=(16, 32, 64), classifier_attention=(False, False, False),
                      grid=GRID_2MM),
    ),
    # a four-level UNet (4.1 M parameters, receptive field over the whole 96×80 slice) for
    # BIDS participants plus ``--phantom-brains``; the classifier is the default's size so that
    # ``--classifier-from phantom-default`` can reuse it. About 2.2× the default's training time per slice
    # and 2.5× its sampling time on 2 CPU cores; measured, not the default (BENCHMARKS.md, Capacity).
    "large": TrainConfig(
        preset="large", epochs=8, batch_size=16, lr=5e-4, classifier_lr=5e-4,
        ema_decay=0.995, classifier_max_t=500,
        net=NetConfig(unet_channels=(32, 64, 128, 128), unet_attention=(False, False, False, False),
                      unet_head_channels=32, norm_num_groups=16, classifier_channels=(16, 32, 64),
                      classifier_attention=(False, False, False),
                      grid=GRID_2MM),
    ),
    # the masked (patched) diffusion model: x̂_0-prediction, healthy-only loss, trained on
    # domain-randomised phantom brains (``--phantom-brains``) as well as BIDS participants
    "inpaint": TrainConfig(
        preset="inpaint", epochs=4, batch_size=16, lr=1e-3, classifier_lr=5e-4,
        ema_decay=0.995, classifier_max_t=500,
        net=NetConfig(unet_channels=(16, 32, 64), unet_attention=(False, False, False), unet_head_channels=32,
                      norm_num_groups=16, classifier_channels=(16, 32, 64), classifier_attention=(False, False, False),
                      kind="inpaint", prediction_type="sample",
                      grid=GRID_2MM),
    ),
    "inpaint-tiny": TrainConfig(
        preset="inpaint-tiny", epochs=2, batch_size=8, lr=1e-3, classifier_lr=1e-3, ema_decay=0.9,
        net=NetConfig(unet_channels=(16, 32), unet_attention=(False, False), unet_head_channels=16,
                      norm_num_groups=8, classifier_channels=(8, 16), classifier_attention=(False, False),
                      kind="inpaint", prediction_type="sample",
                      grid=GridConfig(shape=(32, 32), spacing_mm=6.0, center_mm=(0.0, -18.0),
                                      z_min_mm=-48.0, z_max_mm=78.0)),
    ),
    "paper": TrainConfig(
        preset="paper", epochs=100, batch_size=12, lr=5e-5, classifier_lr=1e-4,
        ema_decay=0.9999, classifier_max_t=1000,
        net=NetConfig(unet_channels=(96, 96, 192, 192, 384, 384), unet_attention=(False, False, False, True, True, True),
                      unet_res_blocks=2, unet_head_channels=64, norm_num_groups=32,
                      classifier_channels=(32, 64, 128, 256), classifier_attention=(False, False, True, True),
                      grid=GridConfig(shape=(256, 256), spacing_mm=0.75, center_mm=(0.0, -18.0),
                                      z_min_mm=-51.0, z_max_mm=81.0)),
    ),
}
# the small lesions (≤ 264 mm³, 5-33 voxels at 2 mm) lie under the 2 mm model's noise floor; the
# default's recipe and networks on a 1.5 mm grid (preprocessing then works at 1.5 mm too; the classifier's head
# grows with the slice, 7.5 M parameters). Training about 2.1× the default's time per epoch, sampling about 3×
# per participant. The shipped model's preset and `bids-fcd train`'s default since 2026-12-06 (BENCHMARKS.md, top section).
PRESETS["fine"] = dataclasses.replace(
    PRESETS["default"], preset="fine", net=dataclasses.replace(PRESETS["default"].net, grid=GRID_1P5MM))
# the fine preset with a classifier of four levels (a 16× smaller slice before its dense head): 2.1 M parameters
# (8 MB) instead of 7.5 M (30 MB), so that a model directory stays under 30 MB; the real-anatomy model's preset
# (benchmarks/build_real_anatomy_model.sh)
PRESETS["fine-compact"] = dataclasses.replace(
    PRESETS["fine"], preset="fine-compact",
    net=dataclasses.replace(PRESETS["fine"].net, classifier_channels=(16, 32, 64, 64),
                            classifier_attention=(False, False, False, False)))
