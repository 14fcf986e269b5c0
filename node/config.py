"""Node configuration: ``HOME/config.toml`` and the layout of a node's home directory.

Every key is checked on load; an unknown key, a wrong type or an impossible
value raises :class:`ConfigError` naming the key, so a typo never silently
falls back to a default. The keys ``branchnet init`` writes for this node
(:data:`REQUIRED`: its name, role and addresses) must be present: an empty or
truncated file is refused instead of quietly moving the node to defaults.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_TEMPLATE = """\
# branchnet node configuration. Every key is optional; shown are the defaults
# (except where `branchnet init` filled in a value for this node).

[node]
# A human-readable name for logs and the status API.
moniker = "{moniker}"
# "validator" signs proposals and votes (the key must be in genesis);
# "observer" syncs, verifies and serves queries without voting.
mode = "{mode}"

[p2p]
# libp2p multiaddrs to listen on. Use 0.0.0.0 only on a trusted branch LAN.
listen = ["{listen}"]
# Persistent peers, redialled with backoff: "/ip4/IP/tcp/PORT/p2p/PEER_ID".
peers = []
# The consortium's network key (a libp2p PSK v1 key file), relative to this home.
psk_file = "network.psk"
# Peer ids allowed besides the genesis validators (observers, auditors).
allow_peers = []
# Find peers of this network on the local link by mDNS (a branch LAN). Off by default:
# it multicasts on the interfaces of the listen addresses (all of them for 0.0.0.0).
mdns = false
# A peer that keeps sending invalid input (malformed messages, bad signatures) is
# disconnected and refused for this many seconds.
ban_seconds = 600
# Validators send each other consensus messages on direct links (host:port, TCP):
# the PSK and Noise as on libp2p, without its stream multiplexer (half the CPU per
# vote). "auto": the first listen address's IP, a free port (peers learn it over
# libp2p); set a fixed port where a firewall sits between branches; "off": consensus
# goes over libp2p only (also the fallback whenever a link is down).
link_listen = "auto"

[api]
# Serve the HTTP API (status, queries, record submission, proofs, metrics).
enabled = true
# host:port of the HTTP API. Keep 127.0.0.1 unless a reverse proxy fronts it.
listen = "{api_listen}"
# Require the bearer token (HOME/api_token) for reads too, not only writes.
auth_reads = false
# Serve the web explorer at /explorer/ (read-only: it reads the API above and
# verifies what it shows in the browser against the genesis file).
explorer = true

[metrics]
# A separate listener serving only GET /metrics (Prometheus text format), for a
# scraper that should not reach the API. Off unless set; metrics are always at
# the API's /metrics too.
# listen = "127.0.0.1:26660"

[consensus]
# Most records in one block this node proposes: a local cap under the chain
# parameter of the same name (genesis "params", default 10000), which every
# validator enforces on every block. It may not exceed the genesis value (the node
# refuses to start); if governance lowers the chain's value below it, the lower applies.
max_block_records = 5000
# A proposer waits up to this long for records before proposing a block.
block_interval_ms = 100
# On an idle network, an empty block is made at most this often (a heartbeat).
empty_block_interval_ms = 5000
# Stop cleanly after committing this height (exit code 0): a coordinated upgrade
# sets the same height on every node, upgrades, then raises or removes it. 0: never.
halt_height = 0

[mempool]
# Most records waiting for a block; a submission beyond it is refused (mempool_full).
max_records = 50000
# Most bytes of records waiting (64 MiB); a submission beyond it is refused (mempool_full).
max_bytes = 67108864
# Finality the node keeps its clients' records within: it refuses new submissions
# (503, Retry-After) while the backlog is longer than the finality of its recently
# committed records says can clear in time.
finality_target_ms = 2000

[log]
# How much to log: debug | info | warning | error.
level = "info"
# "text" for humans, "json" for log collectors (one object per line).
format = "text"
"""


REQUIRED = {"node": ("moniker", "mode"), "p2p": ("listen",), "api": ("listen",)}
_PEER_ID = re.compile(r"^(12D3KooW[1-9A-HJ-NP-Za-km-z]{44}|Qm[1-9A-HJ-NP-Za-km-z]{44})$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _recover(source: str) -> str:
    return (f"restore {source} from your backup, or create a fresh home with `branchnet init --home NEW_DIR` "
            f"and copy its config.toml here with this node's settings")


@dataclass(frozen=True)
class NodeSection:
    moniker: str = "branchnet-node"
    mode: str = "validator"


@dataclass(frozen=True)
class P2PSection:
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    peers: tuple[str, ...] = ()
    psk_file: str = "network.psk"
    allow_peers: tuple[str, ...] = ()
    mdns: bool = False
    ban_seconds: int = 600
    link_listen: str = "auto"

    def link_address(self) -> tuple[str, int] | None:
        """(host, port) of the consensus-link listener, or None for "off" (see the template)."""
        if self.link_listen == "off":
            return None
        if self.link_listen == "auto":
            for addr in self.listen:
                parts = addr.split("/")
                if len(parts) > 4 and parts[1] in ("ip4", "ip6") and parts[3] == "tcp":
                    return parts[2], 0
            return None
        host, _, port = self.link_listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ApiSection:
    enabled: bool = True
    listen: str = "127.0.0.1:0"
    auth_reads: bool = False
    explorer: bool = True


@dataclass(frozen=True)
class MetricsSection:
    listen: str = ""  # host:port of a metrics-only listener; "": off


@dataclass(frozen=True)
class ConsensusSection:
    max_block_records: int = 5000
    block_interval_ms: int = 100
    empty_block_interval_ms: int = 5000
    halt_height: int = 0  # stop after committing this height; 0: never


@dataclass(frozen=True)
class MempoolSection:
    max_records: int = 50_000
    max_bytes: int = 64 << 20
    finality_target_ms: int = 2000


@dataclass(frozen=True)
class LogSection:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class Config:
    node: NodeSection = field(default_factory=NodeSection)
    p2p: P2PSection = field(default_factory=P2PSection)
    api: ApiSection = field(default_factory=ApiSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    log: LogSection = field(default_factory=LogSection)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "config.toml") -> "Config":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc}); {_recover(source)}") from None
        if not doc:
            raise ConfigError(f"{source} is empty (no settings in it); {_recover(source)}")
        missing = [f"[{section}] {key}" for section, keys in REQUIRED.items() for key in keys
                   if key not in doc.get(section, {}) or not isinstance(doc.get(section), dict)]
        if missing:
            raise ConfigError(f"{source} lacks {', '.join(missing)} (truncated?); {_recover(source)}")
        sections = {f.name: f.type for f in fields(cls)}
        unknown = set(doc) - set(sections)
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) [{', '.join(sorted(unknown))}]")
        built = {}
        for f in fields(cls):
            section_cls = f.default_factory  # type: ignore[misc]
            built[f.name] = _section(section_cls, doc.get(f.name, {}), f"{source} [{f.name}]")
        config = cls(**built)
        config.check(source)
        return config

    def check(self, source: str) -> None:
        if self.node.mode not in ("validator", "observer"):
            raise ConfigError(f'{source} [node] mode: must be "validator" or "observer"')
        if self.log.level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"{source} [log] level: must be debug, info, warning or error")
        if self.log.format not in ("text", "json"):
            raise ConfigError(f'{source} [log] format: must be "text" or "json"')
        link = self.p2p.link_listen if self.p2p.link_listen not in ("auto", "off") else None
        for key, listen in (("[api] listen", self.api.listen), ("[metrics] listen", self.metrics.listen or None),
                            ("[p2p] link_listen", link)):
            if listen is None:
                continue
            host, sep, port = listen.rpartition(":")
            if not sep or not host or not port.isdigit() or int(port) > 65535:
                also = '"auto", "off" or ' if key == "[p2p] link_listen" else ""
                raise ConfigError(f"{source} {key}: must be {also}host:port, got {listen!r}")
            if not _valid_host(host.strip("[]")):
                raise ConfigError(f"{source} {key}: {host!r} is neither an IP address nor a host name")
        for peer in self.p2p.allow_peers:
            if not _PEER_ID.match(peer):
                raise ConfigError(f"{source} [p2p] allow_peers: {peer!r} is not a libp2p peer id (12D3KooW... or Qm...; "
                                  f"`branchnet keys show` prints a node's)")
        for name in ("max_block_records", "block_interval_ms", "empty_block_interval_ms"):
            if getattr(self.consensus, name) < 1:
                raise ConfigError(f"{source} [consensus] {name}: must be positive")
        for addr in self.p2p.listen + self.p2p.peers:
            if not addr.startswith("/"):
                raise ConfigError(f"{source} [p2p]: {addr!r} is not a multiaddr (starts with /ip4/ or /ip6/)")
        for addr in self.p2p.peers:
            if "/p2p/" not in addr:
                raise ConfigError(f"{source} [p2p] peers: {addr!r} needs a /p2p/PEER_ID suffix")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):  # looks like an IPv4 address but is not one (256.1.1.1)
        return False
    return bool(_HOSTNAME.match(host))


def _section(section_cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: must be a table")
    known = {f.name: f for f in fields(section_cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    out = {}
    for name, value in values.items():
        default = known[name].default
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where} {name}: must be a list of strings")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where} {name}: must be true or false")
        elif isinstance(default, int):
            if type(value) is not int or value < 0:
                raise ConfigError(f"{where} {name}: must be a non-negative integer")
        elif isinstance(default, str):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where} {name}: must be a non-empty string")
        out[name] = value
    return section_cls(**out)


@dataclass(frozen=True)
class Home:
    """Where a node keeps its files. ``path`` may be given as a string."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def key(self) -> Path:
        return self.path / "node_key.json"

    @property
    def pending_key(self) -> Path:
        """The branch's next key while a rotation waits to commit (node/keyring.py)."""
        return self.path / "node_key.pending.json"

    def retired_key(self, height: int) -> Path:
        """The key a rotation committed at ``height`` replaced."""
        return self.path / f"node_key.retired-{height}.json"

    @property
    def genesis(self) -> Path:
        return self.path / "genesis.json"

    @property
    def api_token(self) -> Path:
        return self.path / "api_token"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def db(self) -> Path:
        return self.data / "node.db"

    @property
    def consensus_wal(self) -> Path:
        return self.data / "consensus.wal"

    @property
    def legacy_signer_state(self) -> Path:
        """Where the signer state lived before the consensus WAL (read once to migrate)."""
        return self.data / "signer_state.json"

    @property
    def pid_file(self) -> Path:
        return self.path / "node.pid"

    def psk(self, config: Config) -> Path:
        p = Path(config.p2p.psk_file)
        return p if p.is_absolute() else self.path / p

    def load_config(self) -> Config:
        try:
            text = self.config.read_text()
        except FileNotFoundError:
            raise ConfigError(f"{self.config}: not found (run `branchnet init --home {self.path}` first)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.config}: cannot read ({exc})") from None
        return Config.from_toml(text, source=str(self.config))
