"""``bids-fcd demo OUT``: a phantom cohort, the participant level and the group level, end to end."""

from __future__ import annotations

import logging
from pathlib import Path

from bids_fcd.config import RunConfig, SamplerConfig
from bids_fcd.phantom.generator import write_cohort
from bids_fcd.workflows.group import run_group_level
from bids_fcd.workflows.participant import run_participant_level

log = logging.getLogger(__name__)


def run_demo(args, sampler: SamplerConfig) -> int:  # noqa: ANN001
    """OUT/bids (phantom), OUT/derivatives (outputs), OUT/work (cache). Returns the exit code."""
    out = Path(args.out)
    bids, derivs, work = out / "bids", out / "derivatives", out / "work"
    if not (bids / "dataset_description.json").exists():
        write_cohort(bids, args.n_fcd, args.n_hc, args.phantom_seed, args.size)
    else:
        log.info("demo: reusing the phantom in %s", bids)
    cfg = RunConfig(bids_dir=str(bids), output_dir=str(derivs), analysis_level="participant", work_dir=str(work),
                    model=args.model, device=args.device, sampler=sampler)
    code = run_participant_level(cfg)
    group = run_group_level(RunConfig(**{**cfg.__dict__, "analysis_level": "group"}))
    log.info("demo: outputs in %s (group summary: %s)", derivs, derivs / "group_summary.tsv")
    return code or group
