"""The README's Quick start, executed as written: from nothing to a 4-branch network
answering a verified proof, then an auditor's observer admitted by governance.

Every ```sh block marked ``<!-- quickstart: NAME -->`` in README.md runs verbatim
in ``bash -euo pipefail`` with two substitutions only: a temporary directory for
the install path ``/var/lib/branchnet``, and free loopback ports for the README's
266xx ports (so a port in use elsewhere cannot fail the test). A branch's shell
is its settings line (one line of the ``settings`` block) followed by the block;
all branches share one working directory, as the README's hand-over files do.
``branchnet`` is this virtualenv's (on PATH, as ``. .venv/bin/activate`` does).

Real processes on 127.0.0.1. The test waits (bounded, on conditions) only where
the README says to wait for something: nodes up, a record replicated, the
proposal in force, the observer caught up. Nodes are stopped with the README's
``stop`` block, then any still running are killed by the pid in their home's
``node.pid`` (checked to be a node of this test's home first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from node.testnet import free_ports
from waiting import wait_until_blocking

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None,
                       reason="the README's Quick start uses bash and jq (apt-get install jq)"),
]

README = Path(__file__).resolve().parent.parent / "README.md"
INSTALL_PATH = "/var/lib/branchnet"
BLOCK = re.compile(r"<!-- quickstart: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)
PORT = re.compile(r"\b266\d\d\b")
START_TIMEOUT_S = 90  # generous: a busy 2-core machine is slow, not wrong
STEP_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


def readme_blocks(root: Path) -> dict[str, str]:
    text = README.read_text()
    ports = sorted(set(PORT.findall(text)))
    mapping = dict(zip(ports, map(str, free_ports(len(ports)))))
    text = text.replace(INSTALL_PATH, str(root / "var-lib-branchnet"))
    text = PORT.sub(lambda m: mapping[m.group(0)], text)
    return {name: body for name, body in BLOCK.findall(text)}


class Shell:
    """A branch operator's shell: its settings line, then a README block."""

    def __init__(self, workdir: Path, settings: str):
        self.workdir = workdir
        self.settings = settings
        env_line = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', settings))
        self.home = Path(env_line["BRANCHNET_HOME"])
        self.name = env_line["ID"]
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    "HOME": str(workdir)}
        self.env.pop("BRANCHNET_HOME", None)

    def run(self, block: str) -> str:
        script = f"{self.settings}\n{block}"
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.workdir, env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
        assert r.returncode == 0, f"{self.name}: block failed ({r.returncode}):\n{block}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}{self.log_tail()}"
        return r.stdout

    def log_tail(self) -> str:
        log = self.home / "node.log"
        return f"\n{self.name} node.log:\n{log.read_text()[-2000:]}" if log.exists() else ""

    def api(self, path: str) -> httpx.Response:
        return httpx.get(f"http://{_api_listen(self.home)}{path}", timeout=5)

    def height(self) -> int:
        try:
            return int(self.api("/health").json()["height"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1

    def pid(self) -> int | None:
        """The node's pid from HOME/node.pid, if that process runs with this home."""
        try:
            pid = int((self.home / "node.pid").read_text().strip())
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if f"BRANCHNET_HOME={self.home}".encode() in environ else None


def _api_listen(home: Path) -> str:
    from node.config import Home

    return Home(home).load_config().api.listen


def wait_exit(pid: int, timeout: float) -> bool:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    try:
        wait_until_blocking(gone, timeout, f"pid {pid} to exit", interval=0.1)
        return True
    except AssertionError:
        return False


def test_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks(tmp_path)
    expected = {"settings", "first", "next", "genesis", "start", "check", "publish", "query", "auditor-settings",
                "auditor-init", "auditor-propose", "auditor-vote", "auditor-start", "auditor-verify", "stop"}
    assert expected <= set(blocks), f"README lacks quickstart blocks {expected - set(blocks)}"
    workdir = tmp_path / "exchange"
    workdir.mkdir()
    branches = [Shell(workdir, line) for line in blocks["settings"].strip().splitlines()]
    auditor = Shell(workdir, blocks["auditor-settings"].strip())
    assert len(branches) == 4
    first, others = branches[0], branches[1:]
    try:
        first.run(blocks["first"])
        for b in others:
            b.run(blocks["next"])
        genesis_hash = re.search(r"genesis hash: ([0-9a-f]{64})", first.run(blocks["genesis"])).group(1)
        for b in branches:
            b.run(blocks["start"])

        def all_committing() -> bool:
            return all(b.height() >= 1 for b in branches)

        wait_until_blocking(all_committing, START_TIMEOUT_S, "every branch to commit height 1", interval=0.3,
                            detail=lambda: [b.height() for b in branches] + [b.log_tail()[-600:] for b in branches])
        out = first.run(blocks["check"])
        assert "height" in out and "Haidian Branch" in out
        card = json.loads((workdir / "lujiazui.branch.json").read_text())
        assert genesis_hash in out and "bank-branches" in out and card["addresses"][0] in out  # status: what to compare
        assert f"(genesis {genesis_hash})" in (first.home / "node.log").read_text()  # and the start-up line

        out = first.run(blocks["publish"])
        assert "fx-exchange" in out and "proof OK" in out
        published = json.loads((workdir / "fx-exchange.json").read_text())
        assert published["status"] == "committed"

        xuhui = branches[2]
        wait_until_blocking(lambda: xuhui.height() >= published["height"], START_TIMEOUT_S, "xuhui to hold the record")
        assert "fx-exchange" in xuhui.run(blocks["query"])

        auditor.run(blocks["auditor-init"])
        first.run(blocks["auditor-propose"])
        for b in branches[:3]:  # 30 of 40: more than two thirds
            b.run(blocks["auditor-vote"])
        audit_id = json.loads((workdir / "audit.observer.json").read_text())["branch_id"]

        def admitted() -> bool:  # in force on the validators the auditor dials
            return all(b.api(f"/v1/branches/{audit_id}").status_code == 200 for b in branches[:2])

        wait_until_blocking(admitted, START_TIMEOUT_S, "the auditor admitted by governance", interval=0.3)
        auditor.run(blocks["auditor-start"])
        wait_until_blocking(lambda: auditor.height() >= published["height"], START_TIMEOUT_S,
                            "the auditor's observer to catch up", interval=0.3, detail=auditor.log_tail)
        out = auditor.run(blocks["auditor-verify"])
        assert "proof OK" in out and "observer" in out

        for shell in [*branches, auditor]:
            pid = shell.pid()
            shell.run(blocks["stop"])
            assert pid is not None and wait_exit(pid, STOP_TIMEOUT_S), f"{shell.name} did not stop{shell.log_tail()}"
            assert "stopped cleanly" in (shell.home / "node.log").read_text()
    finally:
        for shell in [*branches, auditor]:
            pid = shell.pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                if not wait_exit(pid, STOP_TIMEOUT_S):
                    os.kill(pid, signal.SIGKILL)
                    wait_exit(pid, STOP_TIMEOUT_S)
