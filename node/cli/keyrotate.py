"""``branchnet keys rotate``: this node's branch moves to a new key (node/keyring.py).

1. a new key is generated and written to ``HOME/node_key.pending.json``
   (temporary file, fsync, rename, fsync of the directory; mode 0600); a pending
   key already there (a rotation interrupted before) is used again instead;
2. ``POST /v1/keys/rotate`` makes the node submit the ``branch.key`` record
   signed by the key in force (it answers 503 ``key_rotation`` while records
   signed with that key are still pending: this command retries until
   ``--timeout``);
3. with ``--wait-commit`` (default) it waits until the record is committed and
   the node has switched: ``GET /v1/status`` shows the new key in force and no
   rotation pending. The node restarts in place to take its new libp2p
   identity, so the API may be briefly unreachable; that is waited out.

The old key stays in the home as ``node_key.retired-H.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import click

from protocol.keys import PrivateKey

from .common import (CliError, ConfigProblem, NodeRefused, NodeUnreachable, cli_context, home_option, json_option,
                     node_option, print_json)
from .records import POLL_INTERVAL_S, wait_options


def _until(deadline: float, what: str, attempt: Callable[[], Any], *, restarts: bool = True) -> Any:
    """``attempt()`` until it returns non-None, riding out 503 answers and, with
    ``restarts``, an unreachable node (it restarts in place when the rotation commits),
    until ``deadline``."""
    last = ""
    while True:
        try:
            result = attempt()
            if result is not None:
                return result
        except NodeUnreachable as exc:
            if not restarts:
                raise CliError(f"{exc}; the new key stays pending: run `branchnet keys rotate` again once the node "
                               "runs", exit_code=exc.exit_code) from None
            last = str(exc)
        except NodeRefused as exc:
            if exc.status != 503:
                raise
            last = str(exc)
        if time.monotonic() >= deadline:
            raise CliError(f"timed out waiting for {what}" + (f" (last answer: {last})" if last else "")
                           + "; the rotation goes on in the node: `branchnet keys show` lists the new key as pending "
                             "until the node has switched, and `branchnet keys rotate` run while it does follows the "
                             "same rotation")
        time.sleep(POLL_INTERVAL_S)


def _discard_pending(path: Path) -> None:
    """Remove a pending key this run wrote and the node refused (never announced)."""
    from ..fsutil import fsync_path

    try:
        path.unlink()
        fsync_path(path.parent)
    except OSError:
        pass  # left behind: the next run resumes with it, and the node says no again


@click.command("rotate")
@wait_options
@home_option
@node_option
@json_option
def keys_rotate(wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Move this branch to a new key, keeping its branch id.

    Generates the key (HOME/node_key.pending.json), has the node announce it in a
    branch.key record signed by the current key, and waits until the node signs with
    it. Safe to run again after an interruption: it resumes the pending rotation.
    """
    from ..keyfile import KeyFileError
    from ..keyring import NodeKeys
    from ..peerid import peer_id_of

    ctx = cli_context()
    home = ctx.home
    say: Callable[[str], None] = (lambda _msg: None) if as_json else click.echo
    try:
        keys = NodeKeys(home)
    except (KeyFileError, OSError) as exc:
        raise ConfigProblem(str(exc)) from None
    old = keys.current.public_key.hex()
    created = keys.pending is None
    if not created:
        new_key = keys.pending
        say(f"resuming the pending rotation to key {new_key.public_key.hex()} ({home.pending_key})")
    else:
        new_key = PrivateKey.generate()
        try:
            keys.write_pending(new_key)
        except (KeyFileError, OSError) as exc:
            raise CliError(f"cannot write {home.pending_key}: {exc}") from None
        say(f"new key {new_key.public_key.hex()} written to {home.pending_key}")
    new = new_key.public_key.hex()
    deadline = time.monotonic() + timeout
    result: dict[str, Any] = {"branch_id": keys.branch_id.hex(), "old_public_key": old, "public_key": new,
                              "peer_id": peer_id_of(new_key.public_key.raw), "hash": None, "height": None,
                              "status": "pending"}
    with ctx.client() as api:
        announced: list[bool] = []

        def announce() -> dict[str, Any]:
            try:
                return api.post("/v1/keys/rotate", {"public_key": new})
            except NodeRefused as exc:
                if exc.status == 503 and not announced:
                    announced.append(True)
                    say(f"waiting: {exc}")
                raise

        try:
            answer = _until(deadline, "the node to accept the rotation", announce, restarts=False)
        except NodeRefused as exc:  # the node said no for good: nothing was announced
            if created:
                _discard_pending(home.pending_key)
                raise CliError(f"{exc}; the new key was discarded") from None
            raise
        result["hash"] = answer.get("hash")
        result["status"] = answer.get("status")
        if answer.get("status") == "committed":
            say("the registry holds this key already")
        else:
            say(f"{'submitted' if answer.get('status') == 'submitted' else 'already submitted'}: "
                f"branch.key record {result['hash']} signed by key {old}")
        if wait_commit and result["hash"]:
            def committed() -> dict[str, Any] | None:
                doc = api.get(f"/v1/records/{result['hash']}", allow_404=True)
                if isinstance(doc, dict) and doc.get("status") == "rejected":
                    raise CliError(f"the branch.key record was rejected: {doc.get('reason')}; the node keeps the "
                                   f"current key (the pending key stays in {home.pending_key})")
                return doc if isinstance(doc, dict) and doc.get("height") is not None else None

            result["height"] = _until(deadline, "the branch.key record to commit", committed).get("height")
            say(f"committed at height {result['height']}: records are signed with the new key from that block on")
        if wait_commit:
            def switched() -> dict[str, Any] | None:
                doc = api.get("/v1/status")
                return doc if doc.get("public_key") == new and not doc.get("key_rotation") else None

            status = _until(deadline, "the node to switch to the new key", switched)
            result["status"] = "committed"
            result["peer_id"] = status.get("peer_id", result["peer_id"])
            say(f"the node signs with the new key; its peer id is now {result['peer_id']}")
            retired = home.retired_key(result["height"]) if result["height"] else None
            if retired is None or not retired.exists():  # promoted later than the commit (the node was down)
                retired = home.path / "node_key.retired-HEIGHT.json"
            say(f"the old key is kept as {retired}; other branches may update their [p2p] peers with "
                f"`branchnet keys show --json` of this node")
    if as_json:
        print_json(result)


@click.command("install")
@click.argument("key_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--branch", "branch_hex", help="The branch id (40 hex digits): needed only when HOME has no key file "
                                             "left (the old key was lost with it).")
@home_option
@json_option
def keys_install(key_file: Path, branch_hex: str | None, as_json: bool) -> None:
    """Install the key a passed rotate-key proposal gave this branch (its old key lost or leaked).

    Stop the node first. The key must be the one the chain holds for the branch in
    this node's store (its last committed block); the old key, if any, is kept as
    HOME/node_key.retired-H.json (H: the height the registry changed), the new one
    becomes HOME/node_key.json. Start the node afterwards: it signs and connects
    with the new key.
    """
    from ..keyfile import KeyFileError, load_branch_key, save_key
    from ..keyring import NodeKeys, _changed_at
    from .maintenance import open_stopped_store

    home, _genesis, db = open_stopped_store()
    try:
        state = db.load_state()
    finally:
        db.close()
    try:
        new = load_branch_key(key_file).key
        keys = NodeKeys(home) if home.key.exists() else None
    except (KeyFileError, OSError) as exc:
        raise ConfigProblem(str(exc)) from None
    if keys is not None:
        branch_id = keys.branch_id
        if branch_hex is not None and branch_hex.lower() != branch_id.hex():
            raise click.BadParameter(f"HOME's key file is of branch {branch_id.hex()}", param_hint="--branch")
    else:
        try:
            branch_id = bytes.fromhex(branch_hex or "")
        except ValueError:
            branch_id = b""
        if len(branch_id) != 20:
            raise click.UsageError(f"{home.key} does not exist: name the branch with --branch BRANCH_ID (40 hex digits)")
    member = state.members.get(branch_id)
    if member is None:
        raise CliError(f"branch {branch_id.hex()} is not a member at height {state.height} of this node's store")
    on_chain = member.raw
    if new.public_key.raw != on_chain:
        raise CliError(f"{key_file} holds key {new.public_key.hex()}, but at height {state.height} (this node's last "
                       f"block) the chain holds key {on_chain.hex()} for branch {branch_id.hex()}. If a rotate-key "
                       f"proposal for this key passed later, this store is behind: the other nodes refuse the old "
                       f"peer id, so ask another branch to allow it for a while (branchnet observers allow PEER_ID), "
                       f"let the node sync, stop it and run this again")
    height = _changed_at(state, branch_id)
    doc = {"branch_id": branch_id.hex(), "public_key": new.public_key.hex(), "height": state.height, "retired": None}
    try:
        if keys is None:
            save_key(home.key, new, branch_id=branch_id)
        elif keys.current.public_key.raw == on_chain:
            doc["status"] = "already_installed"
        else:
            if keys.pending is not None and keys.pending.public_key != new.public_key:
                raise CliError(f"{home.pending_key} holds another key ({keys.pending.public_key.hex()}) from a rotation "
                               f"the chain did not take; move it out of the home and run this again")
            keys.write_pending(new)
            keys.promote(height)  # node_key.json -> node_key.retired-H.json, the new key -> node_key.json
            doc["retired"] = str(home.retired_key(height))
    except (KeyFileError, OSError) as exc:
        raise CliError(f"cannot install the key in {home.path}: {exc}") from None
    doc.setdefault("status", "installed")
    if as_json:
        print_json(doc)
        return
    if doc["status"] == "already_installed":
        click.echo(f"{home.key} already holds key {doc['public_key']}, the chain's key for branch {doc['branch_id']}")
        return
    click.echo(f"installed key {doc['public_key']} for branch {doc['branch_id']} as {home.key} (the chain's key at "
               f"height {state.height})" + (f"; the old key is kept as {doc['retired']}" if doc["retired"] else ""))
    click.echo(f"start the node: branchnet run --home {home.path}")
