"""``branchnet config add-peer``: fill in ``[p2p] peers`` without editing TOML by hand.

Takes dialable addresses (``/ip4/IP/tcp/PORT/p2p/PEER_ID``) or identity files
(``branchnet keys show --json`` of another branch). This node's own address is
skipped, so every branch can be given the same list of files. The config is
re-validated after the change and restored if it no longer loads. A running
node reads its peers at start: restart it to dial the new ones (it also learns
peers that dial it).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from .common import ConfigProblem, cli_context, home_option, json_option, print_json


@click.group("config")
def config_group() -> None:
    """Change this node's config.toml from the command line."""


def _addresses(item: str) -> list[str]:
    if item.startswith(("/ip4/", "/ip6/", "/dns")):
        return [item]
    from .genesis import read_identity

    card = read_identity(Path(item))
    addrs = card.get("addresses")
    if not isinstance(addrs, list) or not addrs or not all(isinstance(a, str) for a in addrs):
        raise ConfigProblem(f"{item}: the identity file has no addresses (`branchnet keys show --json` "
                            f"of a node with a config.toml writes them)")
    unresolved = [a for a in addrs if "THIS_HOST_IP" in a or "PORT_CHOSEN_AT_START" in a]
    if unresolved:
        raise ConfigProblem(f"{item}: {unresolved[0]} is not dialable (the node listens on a wildcard address "
                            f"or port 0); give its address as /ip4/IP/tcp/PORT/p2p/PEER_ID instead")
    return addrs


@config_group.command("add-peer")
@click.argument("peers", nargs=-1, required=True, metavar="ADDRESS_OR_IDENTITY_FILE...")
@home_option
@json_option
def config_add_peer(peers: tuple[str, ...], as_json: bool) -> None:
    """Add persistent peers to [p2p] peers (addresses or `keys show --json` files).

    \b
    Examples:
      branchnet config add-peer /ip4/10.1.2.3/tcp/26656/p2p/12D3KooW...
      branchnet config add-peer *.branch.json      (this node's own file is skipped)
    """
    from ..keyfile import KeyFileError, load_key
    from ..peerid import peer_id_of
    from ..testnet import set_config

    home = cli_context().home
    try:
        config = home.load_config()
        own = peer_id_of(load_key(home.key).public_key.raw)
    except (ConfigError, KeyFileError) as exc:
        raise ConfigProblem(str(exc)) from None
    current = list(config.p2p.peers)
    added = []
    for item in peers:
        for addr in _addresses(item):
            if "/p2p/" not in addr:
                raise click.BadParameter(f"{addr!r} needs a /p2p/PEER_ID suffix", param_hint="ADDRESS")
            if addr.rsplit("/p2p/", 1)[1] == own or addr in current:
                continue
            current.append(addr)
            added.append(addr)
    if added:
        before = home.config.read_text()
        set_config(home, "p2p", "peers", current)
        try:
            home.load_config()
        except ConfigError as exc:
            home.config.write_text(before)
            raise ConfigProblem(f"not changed: {exc}") from None
    if as_json:
        print_json({"added": added, "peers": current})
        return
    for addr in added:
        click.echo(f"added peer {addr}")
    click.echo(f"{home.config}: {len(current)} peer(s)" + (" (restart a running node to dial the new ones)" if added else ", none new"))
