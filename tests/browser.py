"""Headless Chromium for the explorer tests: the distribution's browser, driven by
Playwright's Python API. No browser is ever downloaded.

:func:`chromium_executable` finds ``chromium`` (Debian's package) or, where it is
missing and we may, installs it with ``apt-get install chromium chromium-driver``
(bounded in time, once per machine, under a file lock); otherwise the tests skip,
saying why. :func:`launch` starts it with the flags that work in a container.
``python tests/browser.py`` does the finding and installing on its own (the
Makefile's test set-up) and never fails.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

APT_TIMEOUT_S = 900
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "explorer-screenshots"


def _find() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _can_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    try:
        return subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _install() -> str:
    """apt-get install chromium; returns why it could not, or ""."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    sudo: list[str] = []
    if os.geteuid() != 0:  # a CI runner is often a user with password-less sudo
        if not _can_sudo():
            return "not root and no password-less sudo, so apt-get cannot install it (apt-get install chromium chromium-driver)"
        sudo = ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = (sudo + ["apt-get", "update", "-q"],
             sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"])
    for cmd in steps:
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` took longer than {APT_TIMEOUT_S}s"
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-300:]}"
    return ""


def find_or_install() -> tuple[str | None, str]:
    """(path of Chromium, "") or (None, why it could not be installed)."""
    path = _find()
    if path:
        return path, ""
    lock = Path(tempfile.gettempdir()) / "branchnet-chromium-install.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one installer at a time; the others find it installed
        path = _find()
        if path is None:
            why = _install()
            path = _find()
            if path is None:
                return None, why or "apt-get installed no chromium"
    return path, ""


def chromium_executable() -> str:
    """The path of the distribution's Chromium, installing it when missing; skips the test otherwise."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the explorer tests need the playwright package (pip install -e '.[test]')")
    path, why = find_or_install()
    if path is None:
        pytest.skip(f"Chromium is not installed and could not be: {why}")
    return path


def launch(playwright, executable: str):
    """A headless Chromium with a fresh profile (Playwright makes a temporary one)."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=FLAGS, timeout=60_000)


def screenshot_dir(name: str) -> Path:
    """build/explorer-screenshots/NAME, emptied."""
    path = SCREENSHOTS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":  # `make test` runs this first, so an install shows its progress outside pytest
    found, reason = find_or_install()
    print(f"explorer tests: Chromium {found}" if found else f"explorer tests will skip: Chromium is not installed and could not be: {reason}")
