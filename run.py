#!/usr/bin/env python
"""BIDS App entry point: a thin shim over :func:`bids_fcd.cli.main.main`."""

import sys

from bids_fcd.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
