"""CI means it: under CI=true a missing Chromium fails the run (the Makefile's ``chromium``
step and the test session both), instead of letting the browser tests skip into a green CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")


def without_chromium(tmp_path: Path, ci: bool) -> dict[str, str]:
    """An environment whose PATH finds neither chromium nor apt-get (an empty folder)."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    return env | {"PATH": str(empty)} | ({"CI": "true"} if ci else {})


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@pytest.mark.parametrize("ci", [True, False])
def test_make_fails_without_chromium_only_under_ci(tmp_path: Path, ci: bool) -> None:
    result = subprocess.run([MAKE, "--no-print-directory", "-C", str(ROOT), "chromium"], env=without_chromium(tmp_path, ci),
                            capture_output=True, text=True, timeout=60)
    if ci:
        assert result.returncode != 0 and "CI=true needs the browser tests" in result.stderr
    else:
        assert result.returncode == 0 and "browser tests will be skipped" in result.stdout


@pytest.mark.parametrize("ci", [True, False])
def test_the_test_session_refuses_to_start_without_chromium_under_ci(tmp_path: Path, ci: bool) -> None:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", __file__]
    result = subprocess.run(command, env=without_chromium(tmp_path, ci), capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    refused = "CI=true but Debian's chromium is not installed" in result.stdout + result.stderr
    assert (result.returncode, refused) == ((1, True) if ci else (0, False)), result.stdout + result.stderr
