#!/usr/bin/env python
"""Detection benchmark: method vs ablations vs baselines on a held-out phantom; prints one table.

Same as `bids-fcd benchmark OUT [options]`; see BENCHMARKS.md for the recorded runs.
"""

import sys

from bids_fcd.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
