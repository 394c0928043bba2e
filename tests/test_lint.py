"""The code passes pyflakes and pycodestyle (through ruff), with the 120-character lines of setup.cfg."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: pyflakes (F) and pycodestyle errors and warnings (E, W); --isolated: no configuration file is read.
RUFF = ["ruff", "check", "--isolated", "--select", "E,W,F", "--line-length", "120", "--output-format", "concise"]


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", *RUFF, "apftools", "bench", "tests"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
