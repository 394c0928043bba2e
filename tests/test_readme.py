"""Every example in the README runs as written, in order, on a fresh copy of the shipped data.

``sh`` blocks and ``$`` lines of ``text`` blocks run as commands (``apftools``
through this checkout's ``python -m apftools``; the install steps and the
test command itself are skipped); the text printed after a ``$`` line must
match the README apart from the run time.  ``python`` blocks run in the same
folder.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def examples():
    """(kind, text, expected output or None) in README order."""
    for language, body in BLOCK.findall((ROOT / "README.md").read_text()):
        if language == "sh":
            for line in body.splitlines():
                command = line.split("&&")[-1].strip()
                if command.startswith("apftools "):
                    yield "command", command, None
        elif language == "text" and body.startswith("$ "):
            first, *printed = body.rstrip("\n").splitlines()
            yield "command", first[2:], printed
        elif language == "python":
            yield "python", body, None


def _without_time(lines):
    return [re.sub(r" in \d+(\.\d+)? s$", " in (time) s", line) for line in lines]


def test_the_readme_examples_run_in_order(tmp_path, monkeypatch):
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    ran = []
    for kind, text, expected in examples():
        if kind == "command":
            args = [sys.executable, "-m", "apftools", *shlex.split(text)[1:]]
            result = subprocess.run(args, capture_output=True, text=True, env=environment, timeout=300)
            assert result.returncode == 0, (text, result.stderr)
            if expected is not None:
                assert _without_time(result.stdout.splitlines()) == _without_time(expected), text
        else:
            exec(compile(text, "README.md", "exec"), {})
        ran.append(kind)
    assert ran.count("command") >= 5 and ran.count("python") >= 2
    assert sorted(os.listdir("out")) == ["aligned.wav", "model.json", "report.json", "report.png"]

