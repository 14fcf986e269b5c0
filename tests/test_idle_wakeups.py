"""An idle node sleeps: no timer per peer, and none for work that is not there.

On this machine a wake-up from sleep costs ~300 µs of CPU whatever it then does; at an
idle validator of 16 + 48 the timers of its peer keepers, link dialer, consensus re-sender,
record re-gossip, the stale timeouts of decided heights and libp2p's per-connection sweeps
were half its wake-ups (docs/PERFORMANCE.md, "Timers, not messages"). These tests count
the wake-ups a task takes on its own clock, under trio's MockClock (autojump): after the
clock jumps, every task stepped in that batch was woken by a deadline of its own.
"""

from __future__ import annotations

import collections

import trio

from cluster import FAST_PARAMS, running_nodes
from factories import validator_keys
from node.p2p.errors import PeerUnavailable
from node.p2p.host import peer_id_of
from node.p2p.link import RECHECK_INTERVAL, ConsensusLinks
from node.p2p.memory import MemoryHub
from node.p2p.peers import PeerBook, PeerManager
from tools.netsetup import create_network, set_config
from waiting import wait_heights


class ClockWakes(trio.abc.Instrument):
    """Counts, per task (``Class.method``), the steps run in the batch after a clock jump."""

    def __init__(self) -> None:
        self.by_task: collections.Counter[str] = collections.Counter()
        self._last: float | None = None
        self._jumped = False

    def after_io_wait(self, timeout: float) -> None:
        now = trio.current_time()
        self._jumped = self._last is not None and now != self._last
        self._last = now

    def before_task_step(self, task) -> None:
        if self._jumped:
            self.by_task[".".join(task.name.rsplit(".", 2)[-2:])] += 1

    def of(self, suffix: str) -> int:
        return sum(n for name, n in self.by_task.items() if name.endswith(suffix))


async def test_an_idle_validator_wakes_on_its_own_clock_about_twice_a_height(tmp_path, autojump_clock):
    # Four validators, the node's default heartbeat (a block every 5 s while idle). Per node
    # and height, before: the re-sender 5 (every second, to find the chain idle), record
    # re-gossip 3.4 (every 1.5 s, for no record), the timer task 2 (timeouts of a decided
    # height), sync 1 (at a quiet mark that every commit had moved on). Now: the gate's
    # heartbeat, status logging (every 10 s), the peer book's save (every 30 s), sync's
    # periodic look (every 30 s).
    homes = create_network(tmp_path, 4, consensus={"block_interval_ms": 30, "empty_block_interval_ms": 5000},
                           params=FAST_PARAMS)
    for home in homes:
        set_config(home, "api", "enabled", False)
    async with running_nodes(homes, hub=MemoryHub()) as nodes:
        await wait_heights(nodes, 3, 600, "three heights")
        wakes = ClockWakes()
        trio.lowlevel.add_instrument(wakes)
        try:
            start = nodes[0].chain.height
            await wait_heights(nodes, start + 10, 600, "ten idle heights")
        finally:
            trio.lowlevel.remove_instrument(wakes)
        per_node_height = 1 / (4 * (nodes[0].chain.height - start))
        own = {name: n * per_node_height for name, n in wakes.by_task.items()
               if not name.startswith("MemoryNetwork.")}  # the in-memory network's delivery delays
        for task in ("RecordIngest._regossip", "ConsensusDriver._timer_loop", "ConsensusOutbox._resend_loop"):
            assert wakes.of(task) == 0, (task, own)
        assert wakes.of("BlockSync.run") * per_node_height <= 0.25, own
        assert sum(own.values()) <= 2.5, own


class _Conn:
    def __init__(self) -> None:
        self.is_closed = False


class _FakeHost:
    """What PeerManager asks of a libp2p host: connections by peer, and notifees."""

    def __init__(self, peers: list[str]) -> None:
        self.conns = {peer: _Conn() for peer in peers}
        self.notifees: list = []

    def get_network(self) -> "_FakeHost":
        return self

    def register_notifee(self, notifee) -> None:
        self.notifees.append(notifee)

    def get_connections(self, peer_id) -> list[_Conn]:
        conn = self.conns.get(str(peer_id))
        return [conn] if conn is not None else []

    def get_connected_peers(self) -> list[str]:
        return [p for p, c in self.conns.items() if not c.is_closed]

    def get_id(self) -> str:
        return "me"


async def test_connected_peers_cost_their_keepers_no_timer(autojump_clock, monkeypatch):
    # Twenty connected persistent peers, five minutes: the keepers sleep until a peer's
    # connection closes; one task looks at them all every connected_recheck seconds (before:
    # each keeper woke every connected_recheck seconds, 240 wake-ups here).
    peers = [peer_id_of(k.public_key.raw) for k in validator_keys(20)]
    host = _FakeHost(peers)
    book = PeerBook()
    for peer in peers:
        book.add(f"/ip4/127.0.0.1/tcp/1/p2p/{peer}", persistent=True)
    redialed: list[tuple[str, float]] = []

    async def dial(host_, addr, stats, timeout):
        peer = addr.rsplit("/", 1)[1]
        redialed.append((peer, trio.current_time()))
        host.conns[peer] = _Conn()
        return peer

    monkeypatch.setattr("node.p2p.peers.dial", dial)
    manager = PeerManager(host, book, connection_stats=None, connected_recheck=5.0)
    wakes = ClockWakes()
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        trio.lowlevel.add_instrument(wakes)
        await trio.sleep(300)
        assert wakes.of("PeerManager._keep_connected") == 0, wakes.by_task
        assert wakes.of("PeerManager.run") <= 300 / 5 + 1, wakes.by_task
        assert manager.stats.connections == 20 and redialed == []
        # a connection that closes without libp2p's notice is found by the shared look
        host.conns[peers[3]].is_closed = True
        closed_at = trio.current_time()
        with trio.fail_after(60):
            while not redialed:
                await trio.sleep(0.5)
        assert redialed[0][0] == peers[3] and redialed[0][1] - closed_at <= 5.0 + 0.1
        # and one whose closing libp2p tells wakes its keeper at once
        host.conns[peers[5]].is_closed = True
        for notifee in host.notifees:
            await notifee.disconnected(host, type("C", (), {"muxed_conn": type("M", (), {"peer_id": peers[5]})})())
        await trio.sleep(0.1)  # the keeper's dial settles 50 ms
        assert [p for p, _ in redialed] == [peers[3], peers[5]]
        nursery.cancel_scope.cancel()
    trio.lowlevel.remove_instrument(wakes)


class _FakeNet:
    """What ConsensusLinks asks of the libp2p side; every link request fails."""

    def __init__(self, me: str, connected: list[str]) -> None:
        self.peer_id = me
        self.connected = connected
        self.requests: list[tuple[str, float]] = []

    def connected_peers(self) -> list[str]:
        return list(self.connected)

    def admits(self, peer: str) -> bool:
        return True

    async def request(self, peer, protocol, body, *, timeout=None, retry=True):
        self.requests.append((peer, trio.current_time()))
        raise PeerUnavailable(f"{peer} is not there")


async def test_the_link_keeper_wakes_on_changes_and_backoffs_not_every_second(autojump_clock):
    # A validator that owes no dial (its peer id sorts last): it looks every RECHECK_INTERVAL
    # seconds at most (before: every second). A new connection is looked at once, and a
    # failed dial is retried when its backoff ends, not at the next look.
    peers = sorted(peer_id_of(k.public_key.raw) for k in validator_keys(16))
    net = _FakeNet(peers[-1], peers[:-1])
    links = ConsensusLinks(None, net, serve=None, host="127.0.0.1")
    links.carry("/branchnet/test/consensus/2")
    links.set_peers(peers[:-1])
    wakes = ClockWakes()
    async with trio.open_nursery() as nursery:
        await nursery.start(links.run)
        trio.lowlevel.add_instrument(wakes)
        await trio.sleep(300)
        assert wakes.of("ConsensusLinks.run") <= 300 / (0.8 * RECHECK_INTERVAL) + 1, wakes.by_task
        assert net.requests == []
        # we now owe a dial: a peer that sorts after us connects
        newcomer = "zz" + peers[0]
        net.connected.append(newcomer)
        links.set_peers(peers[:-1] + [newcomer])
        links.connections_changed()
        connected_at = trio.current_time()
        with trio.fail_after(60):
            while len(net.requests) < 3:
                await trio.sleep(0.1)
        first, second, third = (t - connected_at for _, t in net.requests[:3])
        assert first < 0.01  # at once
        assert 0.8 * 2 <= second - first <= 1.2 * 2 + 0.2  # after the 2 s backoff, not a 10 s look
        assert 0.8 * 4 <= third - second <= 1.2 * 4 + 0.2
        nursery.cancel_scope.cancel()
    trio.lowlevel.remove_instrument(wakes)
