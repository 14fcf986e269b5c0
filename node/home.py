"""Creating a node's home directory: keys, config, network key, API token."""

from __future__ import annotations

import secrets
from pathlib import Path

from protocol.keys import PrivateKey

from .config import CONFIG_TEMPLATE, Home
from .consensus.wal import ConsensusWAL
from .errors import ConfigError
from .fsutil import write_private_atomic
from .keyfile import save_key
from .p2p.psk import format_key_file, parse_key_file


class HomeExists(Exception):
    pass


class NetworkKeyError(ConfigError):
    """The network key file is missing, unreadable or malformed (the message names the file)."""


def init_home(path: Path, *, moniker: str, mode: str = "validator", p2p_listen: str = "/ip4/127.0.0.1/tcp/26656",
              api_listen: str = "127.0.0.1:26657", psk_hex: str | None = None) -> tuple[Home, PrivateKey]:
    """Create HOME with a fresh key (0600), config.toml, api_token (0600) and — if given — the network key.

    Refuses to touch an existing key. The genesis file is added later
    (``branchnet genesis ...``) since the whole consortium builds it together.
    """
    home = Home(Path(path))
    if home.key.exists():
        raise HomeExists(f"{home.key} already exists; refusing to overwrite a node key")
    home.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.data.mkdir(exist_ok=True, mode=0o700)
    key = PrivateKey.generate()
    save_key(home.key, key)
    ConsensusWAL(home.consensus_wal, home=home.path).create()  # a new key has signed nothing
    if not home.config.exists():
        home.config.write_text(CONFIG_TEMPLATE.format(moniker=moniker, mode=mode, listen=p2p_listen, api_listen=api_listen))
    if not home.api_token.exists():
        write_private_atomic(home.api_token, (secrets.token_hex(32) + "\n").encode())
    if psk_hex is not None:
        write_psk(home.path / "network.psk", psk_hex)
    return home, key


def new_psk() -> str:
    """A fresh random network key, as 64 hex characters."""
    return secrets.token_hex(32)


def write_psk(path: Path, psk_hex: str) -> None:
    """Write the network key file (0600) in the standard libp2p PSK v1 format.

    Raises ``ValueError`` unless ``psk_hex`` is 64 hex characters.
    """
    if type(psk_hex) is not str or len(psk_hex) != 64:
        raise ValueError("network key must be 64 hex characters")
    try:
        key = bytes.fromhex(psk_hex)
    except ValueError:
        raise ValueError("network key must be 64 hex characters") from None
    write_private_atomic(Path(path), format_key_file(key).encode("ascii"))


def read_psk(path: Path) -> str:
    """The network key in ``path`` as 64 lowercase hex characters.

    Reads the standard libp2p key file (``/key/swarm/psk/1.0.0/``, ``/base16/``,
    the hex key) and the older one-line hex form. Raises ``NetworkKeyError`` (a
    ``ConfigError``) with a one-line message naming the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NetworkKeyError(f"{path}: network key not found (copy the consortium's network.psk here)") from None
    except IsADirectoryError:
        raise NetworkKeyError(f"{path}: is a directory, not a network key file") from None
    except OSError as exc:
        raise NetworkKeyError(f"{path}: cannot read the network key ({exc.strerror or exc})") from None
    try:
        return parse_key_file(data).hex()
    except ValueError as exc:
        raise NetworkKeyError(f"{path}: network key file {exc}") from None
