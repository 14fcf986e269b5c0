"""A local devnet of N branches as separate processes on 127.0.0.1.

    python -m tools.devnet up --validators 4 [--observers 8] --dir DIR     create (if new) and start
    python -m tools.devnet status --dir DIR           heights side by side
    python -m tools.devnet down --dir DIR             stop every node by its pid

``up`` creates keys, one genesis, a network key and configs with free ports
(each node lists the others as persistent peers), starts ``python -m
node.daemon --home DIR/branch-NN`` for each, records the pids in
DIR/devnet.json and waits until every node answers /health. Logs go to
DIR/branch-NN/node.log. Only pids recorded in devnet.json are ever signalled.
A recorded pid counts as a live node only if its process is running: a zombie
(a node killed but not reaped, as under a PID 1 that does not reap) is dead
(:func:`process_state`), so ``up`` starts that node again and ``status`` says so.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from node.config import Home
from tools.netsetup import create_network, join_home

STATE_FILE = "devnet.json"


def _homes(base: Path) -> list[Home]:
    return [Home(p) for p in sorted(base.glob("branch-*")) + sorted(base.glob("observer-*")) if (p / "config.toml").exists()]


def api_url(home: Home) -> str:
    return f"http://{home.load_config().api.listen}"


def process_state(pid: int) -> str:
    """"running" (or stopped, but there), "zombie" (exited, not reaped by its parent)
    or "gone". A zombie still answers ``kill(pid, 0)``, so that alone cannot tell:
    where PID 1 does not reap orphans, a node killed with -9 stays one for good.
    Our own child is reaped here with waitpid; for anyone else's, the state letter
    in /proc/<pid>/stat says (Z or X: dead)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child (or already reaped)
    else:
        return "gone" if reaped == pid else "running"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # exists, someone else's
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]  # after "pid (comm)": comm may hold spaces and ")"
    except FileNotFoundError:
        return "gone"
    except (OSError, IndexError):
        return "running"  # no /proc to ask: trust kill(pid, 0)
    return "zombie" if state in (b"Z", b"X") else "running"


def _alive(pid: int) -> bool:
    """A running node daemon: not a zombie, and not another program that got the pid since."""
    if process_state(pid) != "running":
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"node.daemon" in f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to ask


def up(base: Path, n: int, *, observers: int = 0, chain_id: str = "branchnet-devnet", wait: float = 60.0,
       consensus: dict | None = None, quiet: bool = False, members: int = 0) -> list[Home]:
    """Start ``n`` validators and ``observers`` observers (created on first use; each
    observer links to two validators, validators to every validator)."""
    base.mkdir(parents=True, exist_ok=True)
    homes = _homes(base)
    if not homes:
        homes = create_network(base, n, chain_id=chain_id, observers=observers, spare_members=members,
                               consensus=consensus or {"block_interval_ms": 100, "empty_block_interval_ms": 3000})
    state = _load_state(base)
    for home in homes:
        name = home.path.name
        pid = state.get(name)
        if pid and _alive(pid):
            continue
        log = open(home.path / "node.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "node.daemon", "--home", str(home.path)], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        log.close()
        state[name] = proc.pid
    (base / STATE_FILE).write_text(json.dumps(state, indent=2))
    deadline = time.monotonic() + wait
    pending = list(homes)
    while pending and time.monotonic() < deadline:
        for home in list(pending):
            try:
                if httpx.get(api_url(home) + "/health", timeout=1).status_code == 200:
                    pending.remove(home)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        raise SystemExit(f"error: {', '.join(h.path.name for h in pending)} did not come up within {wait:.0f}s; see their node.log")
    if not quiet:
        print(f"devnet of {len(homes)} branches up in {base}")
        for home in homes:
            print(f"  {home.path.name}: api {api_url(home)}  pid {state[home.path.name]}")
    return homes


def join(base: Path, name: str, *, wait: float = 60.0) -> tuple[Home, str]:
    """Create and start a branch that is not in genesis (``branch-NN`` after the others):
    it follows the network once governance admits it (PROTOCOL.md §15), and signs once
    it is given power. Returns its home and public key (hex)."""
    network = _homes(base)
    home, public_key = join_home(base, name, network)
    up(base, len(network), wait=wait, quiet=True)  # starts every home not running: the new one
    return home, public_key


def _load_state(base: Path) -> dict[str, int]:
    try:
        return json.loads((base / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def down(base: Path, *, timeout: float = 20.0, quiet: bool = False) -> None:
    state = _load_state(base)
    for name, pid in state.items():
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, pid in state.items():
        while _alive(pid) and time.monotonic() < deadline:  # _alive reaps our own children
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            if not quiet:
                print(f"{name} (pid {pid}) did not stop in {timeout:.0f}s; killed")
    (base / STATE_FILE).write_text("{}")
    if not quiet:
        print(f"devnet in {base} stopped")


def status(base: Path) -> list[dict]:
    """One row per node: what its API says, and its process ("running", "zombie",
    "gone", or "-" when devnet.json names no pid)."""
    rows = []
    state = _load_state(base)
    for home in _homes(base):
        pid = state.get(home.path.name)
        process = process_state(pid) if pid else "-"
        try:
            s = httpx.get(api_url(home) + "/v1/status", timeout=2).json()
            rows.append({"node": home.path.name, "height": s["height"], "peers": s["peers"], "mempool": s["mempool"],
                         "last_block": s["last_block_hash"][:12], "role": s["role"], "pid": pid, "process": process})
        except (httpx.HTTPError, ValueError, KeyError):
            rows.append({"node": home.path.name, "height": None, "peers": None, "mempool": None, "last_block": "down", "role": "",
                         "pid": pid, "process": process})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.devnet", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="create (if needed) and start the devnet")
    p_up.add_argument("--validators", "--nodes", dest="validators", type=int, default=4)
    p_up.add_argument("--observers", type=int, default=0, help="observer nodes (each links to two validators)")
    p_up.add_argument("--members", type=int, default=0,
                      help="genesis members that run no node (homes member-NN: identities for tools.adversary)")
    p_up.add_argument("--dir", type=Path, default=Path("devnet"))
    for name in ("down", "status"):
        sub.add_parser(name).add_argument("--dir", type=Path, default=Path("devnet"))
    args = ap.parse_args(argv)
    if args.cmd == "up":
        up(args.dir, args.validators, observers=args.observers, members=args.members)
    elif args.cmd == "down":
        down(args.dir)
    else:
        rows = status(args.dir)
        print(f"{'node':<12} {'role':<10} {'height':>7} {'peers':>6} {'mempool':>8}  {'pid':>7} {'process':<8} last block")
        for r in rows:
            print(f"{r['node']:<12} {r['role']:<10} {str(r['height']):>7} {str(r['peers']):>6} {str(r['mempool']):>8}  "
                  f"{str(r['pid'] or '-'):>7} {r['process']:<8} {r['last_block']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
