"""``[consensus] halt_height``: a coordinated stop for an upgrade, on real processes.

Four validator processes with the same halt height each commit exactly that
height, log one line saying so, and exit 0 by themselves. Restarted with the
halt height removed (the "upgrade"), they go on from there with no fork. A node
restarted with a halt height it already reached stops again at once.
"""

from __future__ import annotations

import pytest

from cluster import ProcessNetwork, make_homes
from node.config import Config
from node.errors import ConfigError
from node.testnet import set_config
from waiting import wait_until_blocking

pytestmark = pytest.mark.slow

WAIT = 120  # seconds, for any one condition: four processes on a busy 2-core machine are slow, not wrong
HALT = 5


def test_every_node_stops_cleanly_after_the_halt_height_then_resumes(tmp_path) -> None:
    homes = make_homes(tmp_path, 4, fixed_ports=True, realtime=True)
    for home in homes:
        set_config(home, "consensus", "halt_height", HALT)
    net = ProcessNetwork(homes)
    try:
        net.start_all()
        procs = dict(net.procs)
        wait_until_blocking(lambda: all(p.poll() is not None for p in procs.values()), WAIT,
                            f"every node to stop at halt height {HALT}", interval=0.3,
                            detail=lambda: f"heights {[net.height(i) for i in range(4)]}, "
                                           f"exited {[p.poll() for p in procs.values()]}")
        for i, proc in procs.items():
            log = net.log(i)
            assert proc.returncode == 0, log[-2000:]
            assert net.height(i) == HALT, log[-2000:]
            assert log.count(f"halt height {HALT} reached") == 1, log[-2000:]
            assert f"stopped cleanly at height {HALT}" in log
            assert "Traceback" not in log, log[-3000:]
        net.procs.clear()
        for h in range(1, HALT + 1):
            assert len({net.block_hash(i, h) for i in range(4)}) == 1, f"fork at height {h}"

        # restarted with the same halt height: stops again at once (still exit 0)
        net.start(0)
        proc = net.procs.pop(0)
        assert proc.wait(timeout=WAIT) == 0
        assert net.log(0).count(f"halt height {HALT} reached") == 2 and net.height(0) == HALT

        # the upgrade is done: halt height removed, the network goes on
        for home in homes:
            set_config(home, "consensus", "halt_height", 0)
        net.start_all()
        wait_until_blocking(lambda: min(net.height(i) for i in range(4)) >= HALT + 2, WAIT, "blocks after the halt",
                            interval=0.3, detail=lambda: f"heights {[net.height(i) for i in range(4)]}")
        for i in range(4):
            assert net.stop(i) == 0
        top = min(net.height(i) for i in range(4))
        for h in range(1, top + 1):
            assert len({net.block_hash(i, h) for i in range(4)}) == 1, f"fork at height {h}"
    finally:
        net.stop_all()


def test_halt_height_is_checked_in_config() -> None:
    base = '[node]\nmoniker = "a"\nmode = "validator"\n[p2p]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n[api]\nlisten = "127.0.0.1:0"\n'
    assert Config.from_toml(base).consensus.halt_height == 0
    assert Config.from_toml(base + "[consensus]\nhalt_height = 100\n").consensus.halt_height == 100
    for bad in ("-1", '"100"', "1.5"):
        with pytest.raises(ConfigError, match="halt_height"):
            Config.from_toml(base + f"[consensus]\nhalt_height = {bad}\n")
