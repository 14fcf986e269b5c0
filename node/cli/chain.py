"""``branchnet chain ...`` and ``branchnet proof ...``: reading, exporting and verifying the chain.

``chain blocks``/``chain show``/``proof get`` ask the node's API. ``chain verify``,
``chain export`` and ``proof verify`` are offline: they read the node's database
(read-only) or a file, and trust only a genesis file.
"""

from __future__ import annotations

import json
import shlex
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

from protocol.audit import VerificationFailed, replay
from protocol.errors import ProtocolError
from protocol.genesis import Genesis

from ..errors import StorageDamaged
from ..store import ChainReader

from .common import (
    CliError,
    ConfigProblem,
    cli_context,
    console,
    home_option,
    json_option,
    kv_table,
    node_option,
    print_json,
    progress_bar,
)
from .export import ExportError, read_export_blocks, read_export_header, write_export


def load_genesis_file(path: Path) -> Genesis:
    try:
        return Genesis.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigProblem(f"{path}: genesis file not found") from None
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot read ({exc.strerror})") from None
    except ProtocolError as exc:
        raise ConfigProblem(f"{path}: invalid genesis: {exc}") from None


@contextmanager
def chain_snapshot(genesis: Genesis) -> Iterator[ChainReader]:
    """HOME/data/node.db read-only, as one consistent snapshot (the node may be running)."""
    home = cli_context().home
    try:
        reader = ChainReader.open(home.db, genesis)
    except (FileNotFoundError, StorageDamaged) as exc:
        raise ConfigProblem(str(exc)) from None
    try:
        with reader.snapshot():
            yield reader
    finally:
        reader.close()


def _fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@click.group()
def chain() -> None:
    """Read, export and verify the chain."""


@chain.command("blocks")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--before", type=click.IntRange(1), help="Only blocks below this height (paging).")
@home_option
@node_option
@json_option
def chain_blocks(limit: int, before: int | None, as_json: bool) -> None:
    """List recent blocks, newest first."""
    with cli_context().client() as api:
        doc = api.get("/v1/blocks", {"limit": limit, "before": before})
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    table = Table("height", "time (UTC)", "records", "round", "proposer", "hash", box=None)
    for b in doc.get("blocks", []):
        table.add_row(str(b.get("height")), _fmt_time(b.get("time_ms")), str(b.get("num_records", "")),
                      str(b.get("round", "")), str(b.get("proposer", ""))[:12], str(b.get("hash", ""))[:16])
    out = console()
    out.print(table)
    if doc.get("next_before"):
        ctx = cli_context()
        where = (f" --node {shlex.quote(ctx.node_url)}" if ctx.node_url else
                 f" --home {shlex.quote(str(ctx.home_path))}" if ctx.home_path is not None else "")
        out.print(f"more: branchnet chain blocks{where} --before {doc['next_before']}")


@chain.command("show")
@click.argument("block_id", metavar="HEIGHT|HASH")
@home_option
@node_option
@json_option
def chain_show(block_id: str, as_json: bool) -> None:
    """Show one block: header, records, evidence and certificate."""
    if block_id.isdigit():
        path = f"/v1/blocks/{int(block_id)}"
    else:
        try:
            if len(bytes.fromhex(block_id)) != 32:
                raise ValueError
        except ValueError:
            raise click.BadParameter("must be a height or a 64-hex block hash", param_hint="HEIGHT|HASH") from None
        path = f"/v1/blocks/hash/{block_id.lower()}"
    with cli_context().client() as api:
        doc = api.get(path, allow_404=True)
    if doc is None:
        raise CliError(f"block {block_id} not found")
    if as_json:
        print_json(doc)
        return
    header = doc.get("header") or {}
    out = console()
    out.print(kv_table([(k, header.get(k) if k != "time_ms" else f"{header.get(k)} ({_fmt_time(header.get(k))})")
                        for k in header] + ([] if "hash" in header else [("hash", doc.get("hash"))]), title=f"block {header.get('height')}"))
    records = doc.get("records") or []
    out.print(f"\n{len(records)} record(s)")
    for r in records:
        if isinstance(r, dict):
            out.print(f"  {r.get('hash', '')[:16]}  {r.get('kind', '')}  {r.get('subject', '')}  seq {r.get('seq', '')}  branch {str(r.get('branch_id', ''))[:12]}")
        else:
            out.print(f"  {str(r)[:80]}")
    if doc.get("evidence"):
        out.print(f"{len(doc['evidence'])} evidence item(s)")


@chain.command("verify")
@click.option("--file", "export_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Verify an export file (branchnet chain export) instead of HOME's database.")
@click.option("--genesis", "genesis_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The genesis file you trust (required with --file; default HOME/genesis.json).")
@home_option
@json_option
def chain_verify(export_file: Path | None, genesis_path: Path | None, as_json: bool) -> None:
    """Re-check every block, certificate and state root from genesis, offline.

    Reads HOME/data/node.db read-only (the node may be running or stopped) or
    an export file. Exits 1 naming the first bad height.

    \b
    Examples:
      branchnet chain verify --home /var/lib/branchnet
      branchnet chain verify --file chain.bnx --genesis genesis.json
    """
    ctx = cli_context()
    if genesis_path is None:
        if export_file is not None:
            raise click.UsageError("--file needs --genesis FILE: the genesis you trust, not the one inside the export")
        genesis_path = ctx.home.genesis
    genesis = load_genesis_file(genesis_path)
    t0 = time.monotonic()
    with progress_bar() as bar:
        if export_file is not None:
            result = _verify_export(export_file, genesis, bar, as_json)
        else:
            with chain_snapshot(genesis) as db:
                height = db.height
                task = bar.add_task("verifying", total=height)
                result = _replay(genesis, db.iter_raw_blocks(1, height), 1, bar, task, source=str(db.path), as_json=as_json)
    elapsed = max(time.monotonic() - t0, 1e-9)
    doc = {
        "ok": True,
        "chain_id": genesis.chain_id,
        "from": result.height - result.blocks + 1,
        "height": result.height,
        "blocks": result.blocks,
        "records": result.records,
        "state_root": result.state_root.hex() if result.state_root else None,
        "last_block_hash": result.last_hash.hex(),
        "seconds": round(elapsed, 3),
        "blocks_per_s": round(result.blocks / elapsed, 1),
    }
    if as_json:
        print_json(doc)
        return
    click.echo(f"verified {result.blocks} block(s), {result.records} record(s) of chain {genesis.chain_id} "
               f"up to height {result.height} in {elapsed:.2f} s ({doc['blocks_per_s']} blocks/s)")
    if result.state_root is not None:
        click.echo(f"state root: {doc['state_root']}")
    else:
        click.echo(f"partial export from height {doc['from']}: certificates, roots and hash links checked; "
                   "state roots need an export from height 1")
    click.echo(f"last block hash: {doc['last_block_hash']}")


def _verify_export(path: Path, genesis: Genesis, bar: Any, as_json: bool):
    try:
        f = path.open("rb")
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot open ({exc.strerror})") from None
    with f:
        try:
            header = read_export_header(f)
        except ExportError as exc:
            raise CliError(f"{path}: {exc}") from None
        if header.genesis.hash != genesis.hash:
            raise CliError(f"{path}: the export's genesis (hash {header.genesis.hash.hex()[:16]}...) is not the genesis "
                           f"you trust (hash {genesis.hash.hex()[:16]}...)")
        task = bar.add_task("verifying", total=header.last - header.first + 1)
        return _replay(genesis, read_export_blocks(f, header), header.first, bar, task, source=str(path), as_json=as_json,
                       set_changes=header.set_changes)


def _replay(genesis: Genesis, blocks: Iterator, first: int, bar: Any, task: Any, *, source: str, as_json: bool,
            set_changes: tuple = ()):
    def progress(_h: int) -> None:
        bar.advance(task)

    try:
        return replay(genesis, blocks, first=first, progress=progress, set_changes=set_changes)
    except VerificationFailed as exc:
        bar.stop()
        if as_json:
            print_json({"ok": False, "height": exc.height, "error": exc.reason})
        raise CliError(f"verification failed at height {exc.height}: {exc.reason}") from None
    except ExportError as exc:
        bar.stop()
        raise CliError(f"{source}: {exc}") from None
    except StorageDamaged as exc:
        bar.stop()
        raise CliError(str(exc)) from None


@chain.command("export")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="File to write ('-' for stdout).")
@click.option("--from", "first", type=click.IntRange(1), default=1, show_default=True, help="First height.")
@click.option("--to", "last", type=click.IntRange(1), help="Last height (default: the current height).")
@home_option
def chain_export(out: Path, first: int, last: int | None) -> None:
    """Write blocks and certificates to a self-contained file for offline audit.

    Reads HOME/data/node.db read-only (safe while the node runs). The format is
    described in docs/CLI.md; check it with `branchnet chain verify --file`.
    """
    genesis = load_genesis_file(cli_context().home.genesis)
    with chain_snapshot(genesis) as db:
        height = db.height
        last = height if last is None else last
        if last > height:
            raise CliError(f"--to {last} is above the stored height {height}")
        if first > last:
            raise click.BadParameter(f"{first} is above --to {last}", param_hint="--from")
        to_stdout = str(out) == "-"
        tmp = out.with_name(f".{out.name}.partial")
        f = sys.stdout.buffer if to_stdout else tmp.open("wb")
        try:
            with progress_bar() as bar:
                task = bar.add_task("exporting", total=last - first + 1)
                changes = tuple(db.set_changes(below=last + 1)) if first > 1 else ()  # a partial export: the sets in force
                n = write_export(f, genesis, db.iter_raw_blocks(first, last), first, last, progress=lambda _h: bar.advance(task),
                                 set_changes=changes)
            f.flush()
            if not to_stdout:
                os.fsync(f.fileno())
                f.close()
                os.replace(tmp, out)
        except StorageDamaged as exc:
            raise CliError(str(exc)) from None
        finally:
            if not to_stdout:
                f.close()
                tmp.unlink(missing_ok=True)
    if not to_stdout:
        click.echo(f"exported blocks {first}..{last} ({n} block(s)) of chain {genesis.chain_id} to {out}")


# ---------------------------------------------------------------- proofs


@click.group()
def proof() -> None:
    """Get and verify Merkle proofs of records."""


@proof.command("get")
@click.argument("record_hash")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write the proof bundle here (default: stdout).")
@home_option
@node_option
def proof_get(record_hash: str, out: Path | None) -> None:
    """Fetch a record's inclusion proof bundle (record, header, certificate, path)."""
    _check_hash(record_hash, "RECORD_HASH")
    with cli_context().client() as api:
        doc = api.get(f"/v1/records/{record_hash.lower()}/proof", allow_404=True)
    if doc is None:
        raise CliError(f"record {record_hash} not found or not committed yet")
    text = json.dumps(doc, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote proof of record {record_hash[:16]}... (height {doc.get('height')}) to {out}", err=True)


@proof.command("verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--genesis", "genesis_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The genesis file you trust (its validator keys are the only trust anchor).")
@json_option
def proof_verify(file: Path, genesis_path: Path, as_json: bool) -> None:
    """Verify a proof bundle offline, trusting only the genesis file; print the record."""
    genesis = load_genesis_file(genesis_path)
    try:
        doc = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise ConfigProblem(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{file}: not a proof bundle ({exc})") from None
    try:
        from protocol.proofs import RecordProof, verify_record_proof
    except ImportError:
        raise CliError("proof verification is not available in this build (protocol/proofs.py is missing)") from None
    try:
        result = verify_record_proof(RecordProof.from_json(doc), genesis)
    except ProtocolError as exc:
        raise CliError(f"proof does not verify ({exc.reason}): {exc}") from None
    record = _record_view(result, doc)
    out = {"ok": True, "chain_id": genesis.chain_id, "height": doc.get("height"), "index": doc.get("index"),
           "record": record}
    if as_json:
        print_json(out)
        return
    click.echo(f"proof OK: record {record.get('hash', '')} is in block {doc.get('height')} of chain {genesis.chain_id}, "
               f"committed by more than 2/3 of the validators in force (genesis and its certified set changes)")
    from .parse import body_rows

    rows = [(k, v) for k, v in record.items() if k not in ("body", "signature")]
    rows += [(f"body.{k}", v) for k, v in body_rows(record.get("body") or {})]
    console().print(kv_table(rows))


def _record_view(result: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The verified record as JSON, whatever verify_record_proof returns (Record or a wrapper)."""
    for candidate in (result, getattr(result, "record", None)):
        if candidate is not None and hasattr(candidate, "to_json"):
            view = candidate.to_json()
            if isinstance(view, dict) and "kind" in view:
                return view
    from protocol.records import Record

    return Record.decode(bytes.fromhex(doc["record"])).to_json()


def _check_hash(value: str, hint: str) -> None:
    try:
        if len(bytes.fromhex(value)) != 32:
            raise ValueError
    except ValueError:
        raise click.BadParameter("must be 64 hex characters", param_hint=hint) from None
