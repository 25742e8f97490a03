#!/usr/bin/env python
"""Calibrate a model's cluster settings on validation participants (see bids_fcd/workflows/calibrate.py).

usage: python benchmarks/calibrate.py MODEL_DIR BIDS_DIR WORK_DIR [LABEL ...]
"""

import logging
import sys
from pathlib import Path

from bids_fcd.config import SamplerConfig
from bids_fcd.workflows.calibrate import calibrate

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model, bids, work, *labels = sys.argv[1:]
    calibrate(Path(model), Path(bids), Path(work), SamplerConfig(), labels=labels or None)
