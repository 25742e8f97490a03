"""``python -m bids_fcd`` (also used by ``torchrun -m bids_fcd train ...``)."""

import sys

from bids_fcd.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
