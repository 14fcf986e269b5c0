"""``branchnet rollback``: undo the last committed block of a stopped node.

Like ``cometbft rollback --hard``: for recovering from a bad upgrade, where a
new binary committed a block it should not have, or computed a wrong state
from it. The store goes back to height h-1: block h, its records, evidence and
validator-set change are removed and the state is rebuilt by replaying blocks
1..h-1 with their certificates (``Store.rollback_last_block``; the same replay
as ``store rebuild``). The node then takes block h again from its peers, or
decides height h again with them.

What the signer signed is never contradicted. A validator whose consensus WAL
says it signed at height h or later may not simply be put back below h: it
would take part in heights it already voted at, against its own votes. Then the
rollback is refused, with the command that first moves its signer mark above
everything it signed (``signer reset --resume-height S+2``: it signs nothing
below that height and takes the blocks in between from its peers). A WAL whose
resume height is already above its last signature, an observer (no WAL) and a
validator that did not sign at h roll back at once. Pending records and the
signed-sequence marks stay as they are.
"""

from __future__ import annotations

import click

from protocol.errors import ProtocolError

from .common import CliError, home_option, json_option, print_json, progress_bar
from .maintenance import open_stopped_store


def signer_conflict(home, height: int) -> str | None:
    """Why rolling back ``height`` would contradict the signer, or None. Raises CliError
    for a damaged WAL (its message names the recovery)."""
    from ..consensus.wal import ConsensusWAL
    from ..errors import StorageDamaged

    wal = ConsensusWAL(home.consensus_wal, home=home.path)
    if not wal.exists():
        return None  # an observer, or a validator that will not sign without its WAL anyway
    try:
        contents = wal.load()
    except StorageDamaged as exc:
        raise CliError(str(exc)) from None
    finally:
        wal.close()
    signed = contents.signer
    if signed.round < 0 or signed.height < height or contents.resume_height > signed.height:
        return None
    return (f"this validator signed at height {signed.height} (round {signed.round}), at or above height {height}, "
            f"so rolling back block {height} could make it sign against its own votes; first move its signer mark "
            f"above them (it then signs nothing below height {signed.height + 2} and takes the blocks up to there "
            f"from its peers): branchnet signer reset --home {home.path} --resume-height {signed.height + 2}; "
            f"then run branchnet rollback --home {home.path} again")


@click.command("rollback")
@home_option
@json_option
def rollback(as_json: bool) -> None:
    """Remove the last committed block and its effects (state back to height h-1).

    For recovering from a bad upgrade, like `cometbft rollback --hard`. Stop the
    node first. Refused for a validator that signed at height h or later, with the
    command that makes it safe. The node takes block h again from its peers.
    """
    from ..errors import StorageDamaged

    home, genesis, db = open_stopped_store()
    try:
        height = db.check_heights()
        if height == 0:
            raise CliError(f"{home.db} holds no block: nothing to roll back")
        conflict = signer_conflict(home, height)
        if conflict is not None:
            raise CliError(f"refusing to roll back: {conflict}")
        with progress_bar() as bar:
            task = bar.add_task(f"replaying blocks 1..{height - 1}", total=max(1, height - 1))
            removed, state = db.rollback_last_block(progress=lambda h, _total: bar.update(task, completed=h))
    except StorageDamaged as exc:
        raise CliError(str(exc)) from None
    except ProtocolError as exc:
        raise CliError(f"store {home.db} is damaged: a block does not decode ({exc}); "
                       f"run branchnet store rebuild --home {home.path}") from None
    finally:
        db.close()
    doc = {"removed_height": height, "removed_block": removed.block.hash.hex(), "height": state.height,
           "state_root": state.state_root.hex()}
    if as_json:
        print_json(doc)
        return
    click.echo(f"rolled back block {height} ({doc['removed_block']}): the store is at height {state.height}, "
               f"state root {doc['state_root']}")
    click.echo(f"start the node (branchnet run --home {home.path}): it takes height {height} again from its peers")
