"""Write tests/data/expected_outputs.txt from the registry of outputs (bids_fcd.bids.derivatives.OUTPUTS).

The stored list is what the end-to-end test and scripts/docker-smoke.sh compare a real run with: the
tiny phantom's three participants, ``res-RES`` standing for the model grid's label. Run it after
adding an output to the registry: ``python scripts/expected-outputs.py``.
"""

from pathlib import Path

from bids_fcd.workflows.outputs import run_files

PARTICIPANTS = [("00001", None), ("00002", None), ("00003", None)]
TARGET = Path(__file__).resolve().parents[1] / "tests" / "data" / "expected_outputs.txt"

if __name__ == "__main__":
    TARGET.write_text("\n".join(run_files(PARTICIPANTS, "RES")) + "\n")
