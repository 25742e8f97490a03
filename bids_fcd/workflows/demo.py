"""``bids-fcd demo OUT``: a phantom cohort, the participant level and the group level, end to end."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from bids_fcd.commands import DemoConfig, config_file
from bids_fcd.config import RunConfig, to_dict
from bids_fcd.io import write_json
from bids_fcd.phantom.generator import write_cohort
from bids_fcd.workflows.group import run_group_level
from bids_fcd.workflows.participant import run_participant_level

log = logging.getLogger(__name__)


def run_demo(cfg: DemoConfig) -> int:
    """OUT/bids (phantom), OUT/derivatives (outputs), OUT/work (cache), OUT/demo_config.json. Returns the exit code."""
    out = Path(cfg.out)
    bids, derivs, work = out / "bids", out / "derivatives", out / "work"
    if not (bids / "dataset_description.json").exists():
        write_cohort(bids, cfg.n_fcd, cfg.n_hc, cfg.phantom_seed, cfg.size)
    else:
        log.info("demo: reusing the phantom in %s", bids)
    write_json(out / config_file("demo"), {"run": to_dict(cfg)})
    run = RunConfig(bids_dir=str(bids), output_dir=str(derivs), analysis_level="participant", work_dir=str(work),
                    model=cfg.model, device=cfg.device, sampler=cfg.sampler, env=cfg.env)
    code = run_participant_level(run)
    group = run_group_level(dataclasses.replace(run, analysis_level="group"))
    log.info("demo: outputs in %s (group summary: %s)", derivs, derivs / "group_summary.tsv")
    return code or group
