"""Every example in the README and the documentation's pages runs as written, in order, on a fresh copy of the
shipped data.

``sh`` blocks and ``$`` lines of ``text`` blocks run as commands (``apftools``
through this checkout's ``python -m apftools``, and the :data:`HOSTS` where
installed; the install steps and the test command itself are skipped); the text printed after a ``$`` line must
match the README apart from the run time, word for word and each number
within :data:`TOLERANCE`.  ``python`` blocks run in the same folder.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
#: Other programs the README runs exports in (Debian packages that .ci/run installs; skipped where missing).
HOSTS = ("sox", "ffmpeg")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def examples(page="README.md"):
    """(kind, text, expected output or None) in the page's order."""
    for language, body in BLOCK.findall((ROOT / page).read_text()):
        if language == "sh":
            for line in body.splitlines():
                command = line.split("&&")[-1].strip()
                if command.startswith(("apftools ", *(f"{host} " for host in HOSTS))):
                    yield "command", command, None
        elif language == "text" and body.startswith("$ "):
            first, *printed = body.rstrip("\n").splitlines()
            yield "command", first[2:], printed
        elif language == "python":
            yield "python", body, None


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
#: How far a printed number may be from the README's: the same model within the reproducibility targets
#: (delays within 0.1 sample; deficits, worst bands, group delays and ring times printed to 0.01 or coarser).
TOLERANCE = 0.1


def assert_printed_like(printed, expected, command):
    """``printed`` lines equal ``expected`` but for the run time, and numbers within :data:`TOLERANCE`."""
    def split(lines):
        lines = [re.sub(r" in \d+(\.\d+)? s$", " in (time) s", line) for line in lines]
        return [NUMBER.sub("#", line) for line in lines], [float(x) for line in lines for x in NUMBER.findall(line)]

    (words, numbers), (expected_words, expected_numbers) = split(printed), split(expected)
    assert words == expected_words, command
    assert all(abs(a - b) <= TOLERANCE for a, b in zip(numbers, expected_numbers)), (command, numbers, expected_numbers)


@pytest.mark.parametrize("page", ["README.md", "docs/guide.md", "docs/testing.md"])
def test_the_examples_run_in_order(page, tmp_path, monkeypatch):
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    ran = []
    for kind, text, expected in examples(page):
        if kind == "command":
            program, *arguments = shlex.split(text)
            if program in HOSTS and shutil.which(program) is None:
                continue
            args = [sys.executable, "-m", "apftools", *arguments] if program == "apftools" else [program, *arguments]
            result = subprocess.run(args, capture_output=True, text=True, env=environment, timeout=300)
            assert result.returncode == 0, (text, result.stderr)
            if expected is not None:
                assert_printed_like(result.stdout.splitlines(), expected, text)
        else:
            exec(compile(text, page, "exec"), {"__name__": page})  # each block on its own, as a reader copies it
        ran.append(kind)
    assert ran
    if page == "README.md":
        assert sorted(os.listdir("out")) == ["aligned.wav", "model.json", "report.json", "report.png"]
