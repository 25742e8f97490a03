"""``bids-fcd phantom OUT``: write the synthetic cohort and, in its ``code/`` folder, the command's config."""

from __future__ import annotations

import logging
from pathlib import Path

from bids_fcd.commands import PhantomConfig, config_file
from bids_fcd.config import to_dict
from bids_fcd.io import write_json
from bids_fcd.phantom.generator import write_cohort
from bids_fcd.phantom.real_anatomy import anatomy_files

log = logging.getLogger(__name__)


def run_phantom(cfg: PhantomConfig) -> int:
    """Write the cohort into ``cfg.out`` and ``cfg.out/code/phantom_config.json`` (BIDS keeps ``code/``
    for the code and settings that made a dataset; validators skip it). Returns the exit code."""
    out = Path(cfg.out)
    anatomies = tuple(str(p) for p in anatomy_files(Path(cfg.anatomy), cfg.anatomy_split)) if cfg.anatomy else ()
    write_cohort(out, cfg.n_fcd, cfg.n_hc, cfg.seed, cfg.size, cfg.lesions, cfg.lesion_profile, anatomies)
    write_json(out / "code" / config_file("phantom"), {"run": to_dict(cfg)})
    log.info("phantom written to %s", out)
    return 0
