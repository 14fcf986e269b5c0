"""Where the nodes' packets go: one network namespace per node, or plain loopback.

:class:`Namespaces` (needs root and ``ip``; nothing is created in the caller's
own namespace)::

    hub namespace  bnchaos<pid>h:  bridges br0..br<n-1>, ports p0..p<n-1>
    node i         bnchaos<pid>n<i>: eth0 = 10.99.0.<i+1>/24 (veth peer of p<i>), lo

Every node's p2p port is on its eth0; its HTTP API stays on 127.0.0.1 inside
its own namespace, and this process reaches it with a socket created in that
namespace (``setns(2)`` on the calling thread, then back), so clients keep
talking to a node that is cut off from its peers. A partition moves the hub
ports of each group onto a bridge of their own; healing puts every port back on
br0. Existing TCP connections see a real partition: packets vanish, nothing
is reset. :meth:`Namespaces.close` deletes every namespace (the veths and
bridges go with them); it is idempotent and safe to call from a ``finally``.

:class:`Loopback` is the fallback: every node on 127.0.0.1 with ports from the
OS; no partitions (``partition_unavailable`` says why).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import socket
import subprocess
from contextlib import contextmanager
from typing import Iterator

from tools.netsetup import free_ports

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"
PREFIX = "bnchaos"
P2P_PORT = 26656
API_PORT = 26657
SUBNET = "10.99.0"

_libc = ctypes.CDLL(None, use_errno=True)


class TopologyError(Exception):
    """An ``ip`` command failed while building or changing the namespaces."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise TopologyError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


class Loopback:
    """All nodes on 127.0.0.1 in this namespace. No partitions."""

    kind = "loopback"

    def __init__(self, nodes: int, reason: str):
        self.nodes = nodes
        self.partition_unavailable: str | None = reason
        self._ports = free_ports(2 * nodes)

    def p2p_listen(self, i: int) -> str:
        return f"/ip4/127.0.0.1/tcp/{self._ports[2 * i]}"

    def api_listen(self, i: int) -> str:
        return f"127.0.0.1:{self._ports[2 * i + 1]}"

    def command(self, i: int, argv: list[str]) -> list[str]:
        return argv

    def connect(self, i: int, address: tuple[str, int], timeout: float) -> socket.socket:
        return socket.create_connection(address, timeout=timeout)

    def partition(self, groups) -> None:
        raise TopologyError(self.partition_unavailable or "no partitions on loopback")

    def heal(self) -> None:
        pass

    def close(self) -> None:
        pass


class Namespaces:
    """One namespace per node plus a hub namespace with the bridges (see the module doc)."""

    kind = "netns"
    partition_unavailable: str | None = None

    def __init__(self, nodes: int, tag: str | None = None):
        self.nodes = nodes
        self.tag = tag or f"{PREFIX}{os.getpid()}"
        self.hub = f"{self.tag}h"
        self.names = [f"{self.tag}n{i}" for i in range(nodes)]
        self._created: list[str] = []
        self._fds: dict[int, int] = {}
        self._root_fd: int | None = None
        self.split: tuple[tuple[int, ...], ...] = ()
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        for name in [self.hub, *self.names]:
            _ip("netns", "add", name)
            self._created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        for b in range(self.nodes):
            _ip("-n", self.hub, "link", "add", "name", f"br{b}", "type", "bridge")
            _ip("-n", self.hub, "link", "set", f"br{b}", "up")
        for i, name in enumerate(self.names):
            _ip("-n", self.hub, "link", "add", "name", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
        self._root_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        for i, name in enumerate(self.names):
            self._fds[i] = os.open(f"{NETNS_DIR}/{name}", os.O_RDONLY)

    # ------------------------------------------------------------ addresses
    def p2p_listen(self, i: int) -> str:
        return f"/ip4/{SUBNET}.{i + 1}/tcp/{P2P_PORT}"

    def api_listen(self, i: int) -> str:
        return f"127.0.0.1:{API_PORT}"

    def command(self, i: int, argv: list[str]) -> list[str]:
        """``argv`` run inside node ``i``'s namespace (``ip netns exec`` execs: same pid)."""
        return ["ip", "netns", "exec", self.names[i], *argv]

    def connect(self, i: int, address: tuple[str, int], timeout: float) -> socket.socket:
        """A TCP connection to ``address`` inside node ``i``'s namespace. The socket is
        created there (this thread visits the namespace for the ``socket()`` call only)."""
        with self._inside(i):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    @contextmanager
    def _inside(self, i: int) -> Iterator[None]:
        _setns(self._fds[i])  # this thread only (setns(2) on a multithreaded process)
        try:
            yield
        finally:
            _setns(self._root_fd)

    # ------------------------------------------------------------ faults
    def partition(self, groups) -> None:
        """Each group on a bridge of its own (group 0 stays on br0)."""
        for b, group in enumerate(groups):
            for i in group:
                _ip("-n", self.hub, "link", "set", f"p{i}", "master", f"br{b}")
        self.split = tuple(tuple(g) for g in groups)

    def heal(self) -> None:
        for i in range(self.nodes):
            _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
        self.split = ()

    def close(self) -> None:
        for fd in list(self._fds.values()) + ([self._root_fd] if self._root_fd is not None else []):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
        self._root_fd = None
        for name in reversed(self._created):
            _ip("netns", "del", name, check=False)
        self._created.clear()


def namespaces_unavailable() -> str | None:
    """Why per-node namespaces cannot be built here, or None if they can."""
    if shutil.which("ip") is None:
        return "ip(8) (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, or partitions are skipped)"
    probe = f"{PREFIX}probe{os.getpid()}"
    proc = _ip("netns", "add", probe, check=False)
    if proc.returncode != 0:
        return f"cannot create a network namespace: {proc.stderr.strip()}"
    try:
        veth = _ip("-n", probe, "link", "add", "name", "probe0", "type", "veth", "peer", "name", "probe1", check=False)
        if veth.returncode != 0:
            return f"cannot create veth pairs: {veth.stderr.strip()}"
        bridge = _ip("-n", probe, "link", "add", "name", "probebr", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"cannot create a bridge: {bridge.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def remove_stale() -> list[str]:
    """Delete namespaces an earlier run of this tool left behind (its pid is gone:
    killed with SIGKILL, so no ``finally`` ran). Only names of this tool's own pattern."""
    proc = _ip("netns", "list", check=False)
    removed = []
    for line in proc.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{PREFIX}(?:probe)?(\d+)(?:h|n\d+)?", name)
        if m and not _pid_alive(int(m.group(1))):
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in (b"Z", b"X")


def open_topology(nodes: int, mode: str = "auto") -> Loopback | Namespaces:
    """``mode``: "netns" (fail if unavailable), "loopback", or "auto" (netns if possible)."""
    if mode == "loopback":
        return Loopback(nodes, "--net loopback was asked for")
    why = namespaces_unavailable()
    if why is None:
        remove_stale()
        return Namespaces(nodes)
    if mode == "netns":
        raise TopologyError(why)
    return Loopback(nodes, why)
