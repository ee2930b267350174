"""`ywm env | head`: a reader that goes away early ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_closed_pipe_is_not_a_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YWM_", "DATABASE_URL"))}
    read_end, write_end = os.pipe()
    os.close(read_end)   # like `head` that has read its lines and exited: every write fails
    try:
        done = subprocess.run([sys.executable, "-m", "ywmessaging", "env"], stdout=write_end,
                              stderr=subprocess.PIPE, env=env, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 0
