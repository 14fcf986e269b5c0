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


class HomeExists(Exception):
    pass


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
    return secrets.token_hex(32)


def write_psk(path: Path, psk_hex: str) -> None:
    bytes.fromhex(psk_hex)
    if len(psk_hex) != 64:
        raise ValueError("network key must be 64 hex characters")
    write_private_atomic(Path(path), (psk_hex + "\n").encode())


def read_psk(path: Path) -> str:
    """The network key in ``path`` (64 hex characters). Raises ConfigError naming the file."""
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"{path}: network key not found (copy the consortium's network.psk here)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the network key ({exc})") from None
    try:
        if len(text) != 64:
            raise ValueError
        bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{path}: network key must be 64 hex characters") from None
    return text
