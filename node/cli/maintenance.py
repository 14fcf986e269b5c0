"""``branchnet store ...`` and ``branchnet signer ...``: maintaining a stopped node's files.

* ``store rebuild`` — rebuild the state table by replaying the verified blocks
  (the recovery a damaged store asks for);
* ``store backup --out FILE`` — a consistent copy of the database, also while
  the node runs (SQLite's online backup API; node/store/backup.py);
* ``store restore FILE`` — put a backup of this chain in place of the database;
* ``signer show`` — what the consensus WAL says this validator signed last;
* ``signer reset --resume-height H`` — for a validator whose WAL is missing or
  damaged: a new WAL that signs nothing below height H (CometBFT's
  ``double_sign_check_height`` in spirit). A damaged file is kept aside.

All but ``store backup`` refuse to run while a node runs on the home.
"""

from __future__ import annotations

import os
import time
from typing import Any
from pathlib import Path

import click

from protocol.errors import ProtocolError

from .chain import load_genesis_file
from .common import CliError, ConfigProblem, cli_context, console, home_option, json_option, kv_table, print_json, progress_bar


@click.group()
def store() -> None:
    """Maintain the node's local database."""


@store.command("rebuild")
@home_option
@json_option
def store_rebuild(as_json: bool) -> None:
    """Rebuild the state table by replaying and re-verifying every stored block.

    The recovery the node asks for when its store is damaged. Stop the node first.
    """
    from ..errors import StorageDamaged

    home, genesis, db = open_stopped_store()
    done = 0

    def progress(height: int, _total: int) -> None:
        nonlocal done
        done = height
        bar.update(task, completed=height)

    try:
        with progress_bar() as bar:
            task = bar.add_task("rebuilding", total=db.height)
            state = db.rebuild_state(progress=progress)
    except StorageDamaged as exc:
        raise CliError(str(exc)) from None
    except ProtocolError as exc:  # a stored block that does not even decode
        raise CliError(f"store {home.db} is damaged: block {done + 1} does not decode ({exc})") from None
    finally:
        db.close()
    doc = {"height": state.height, "state_root": state.state_root.hex()}
    if as_json:
        print_json(doc)
    else:
        click.echo(f"rebuilt state at height {state.height}; state root {doc['state_root']}")


@store.command("backup")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Backup file to write.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@home_option
@json_option
def store_backup(out: Path, force: bool, as_json: bool) -> None:
    """Copy the node's database to FILE, consistent as of one commit (the node may run).

    The copy holds blocks, certificates, records, state, pending records and
    peers, not the key, config or consensus WAL: back those up with the home's
    other files (the key once; the WAL is never restored from a backup).
    """
    from ..store import WrongChain
    from ..store.backup import BackupError, backup

    home = cli_context().home
    genesis = load_genesis_file(home.genesis)
    if out.exists() and not force:
        raise ConfigProblem(f"{out} already exists (use --force to overwrite)")
    try:
        info = backup(home.db, out, genesis)
    except (BackupError, WrongChain) as exc:
        raise CliError(str(exc)) from None
    doc = {"file": str(info.path), "height": info.height, "chain_id": info.chain_id,
           "genesis_hash": info.genesis_hash.hex(), "bytes": info.size}
    if as_json:
        print_json(doc)
    else:
        click.echo(f"backed up {home.db} at height {info.height} (chain {info.chain_id}) to {info.path} ({info.size} bytes)")


@store.command("restore")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@home_option
@json_option
def store_restore(file: Path, as_json: bool) -> None:
    """Replace the stopped node's database with a backup of the same chain.

    Refuses while a node runs on the home, and refuses a backup of another
    genesis. The replaced database is kept aside (node.db.before-restore-TIME).
    The consensus WAL is left as it is, so a validator still signs nothing it
    may have signed after the backup; the node resumes at the backup's height
    and catches up from its peers.
    """
    from ..store import WrongChain
    from ..store.backup import BackupError, restore

    home = cli_context().home
    _refuse_if_running(home.pid_file)
    genesis = load_genesis_file(home.genesis)
    try:
        info, kept = restore(file, home.db, genesis)
    except WrongChain as exc:
        raise ConfigProblem(str(exc)) from None
    except BackupError as exc:
        raise CliError(str(exc)) from None
    doc = {"file": str(file), "database": str(home.db), "height": info.height, "chain_id": info.chain_id,
           "genesis_hash": info.genesis_hash.hex(), "previous_database_kept": str(kept) if kept else None}
    if as_json:
        print_json(doc)
        return
    click.echo(f"restored {home.db} from {file}: height {info.height}, chain {info.chain_id}")
    if kept:
        click.echo(f"the previous database was kept as {kept} (delete it once the node runs well)")
    click.echo(f"start the node (branchnet run --home {home.path}): it resumes at height {info.height} and catches up")


@click.group()
def signer() -> None:
    """This validator's signer state (the consensus WAL)."""


@signer.command("show")
@home_option
@json_option
def signer_show(as_json: bool) -> None:
    """What this validator signed last, and the height it resumes signing at."""
    from ..consensus.wal import ConsensusWAL
    from ..errors import StorageDamaged

    home = cli_context().home
    try:
        wal = ConsensusWAL(home.consensus_wal, home=home.path)
        contents = wal.load()
        wal.close()
    except StorageDamaged as exc:
        raise CliError(str(exc)) from None
    s = contents.signer
    doc = {"file": str(wal.path), "height": s.height, "round": s.round, "step": s.step,
           "locked_round": s.lock_round, "locked_block": s.lock_hash.hex() or None,
           "resume_height": contents.resume_height, "blocks_kept": len(contents.blocks)}
    if as_json:
        print_json(doc)
    else:
        console().print(kv_table([(k.replace("_", " "), str(v)) for k, v in doc.items()], title="signer state"))


@signer.command("reset")
@click.option("--resume-height", type=click.IntRange(1), required=True,
              help="Sign nothing below this height: the network's current height + 2 or more.")
@home_option
@json_option
def signer_reset(resume_height: int, as_json: bool) -> None:
    """Start a new consensus WAL for a validator whose WAL is missing or damaged.

    The validator then signs nothing below RESUME_HEIGHT, so it cannot contradict
    a signature it gave before the loss as long as RESUME_HEIGHT is above every
    height it may have signed at: take the network's current height + 2. A
    readable WAL is only replaced when RESUME_HEIGHT is above what it signed.
    """
    from ..consensus.wal import ConsensusWAL
    from ..errors import StorageDamaged

    home = cli_context().home
    _refuse_if_running(home.pid_file)
    wal = ConsensusWAL(home.consensus_wal, home=home.path)
    kept_aside = None
    try:
        signed = wal.load().signer
        wal.close()
    except StorageDamaged:
        if wal.exists():
            kept_aside = wal.path.with_name(f"{wal.path.name}.damaged-{int(time.time())}")
            os.replace(wal.path, kept_aside)
    else:
        if resume_height <= signed.height + 1:
            raise CliError(f"{wal.path} is readable and this validator signed at height {signed.height}: "
                           f"--resume-height must be above {signed.height + 1} (or keep the WAL as it is)")
    home.data.mkdir(parents=True, exist_ok=True, mode=0o700)
    ConsensusWAL(home.consensus_wal, home=home.path).create(resume_height=resume_height)
    doc = {"file": str(home.consensus_wal), "resume_height": resume_height, "damaged_file_kept": str(kept_aside) if kept_aside else None}
    if as_json:
        print_json(doc)
        return
    click.echo(f"new signer state in {home.consensus_wal}: this validator signs nothing below height {resume_height}")
    if kept_aside:
        click.echo(f"the damaged WAL was kept as {kept_aside}")


def open_stopped_store() -> tuple[Any, Any, Any]:
    """(home, genesis, Store) of a node that is not running, for maintenance commands;
    refuses with one line while the node runs, without a database, or for another chain."""
    from ..store import Store, WrongChain

    home = cli_context().home
    _refuse_if_running(home.pid_file)
    genesis = load_genesis_file(home.genesis)
    if not home.db.exists():
        raise ConfigProblem(f"{home.db}: no such database")
    try:
        return home, genesis, Store(home.db, genesis)
    except WrongChain as exc:
        raise ConfigProblem(str(exc)) from None


def _refuse_if_running(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return
    raise ConfigProblem(f"a node (pid {pid}) is running on this home; stop it first")


