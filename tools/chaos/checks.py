"""The checks of a run, as pure functions over what was collected.

Each takes plain data (block bytes per node, acknowledgements, record rows,
log text) and returns the findings, so tests can feed them fabricated input
and watch them fail (tests/test_chaos.py).

* :func:`find_forks` — the stored block bytes must be identical at every height
  two or more nodes hold.
* :func:`find_reused_seqs` — a branch key must never sign two different records
  with one (branch, subject, seq), among acknowledged and committed records.
* :func:`classify_unconfirmed` — every acknowledged record must be committed on
  every node; the rest are sorted by what became of them.
* :func:`scan_log` — tracebacks, equivocation warnings and ERROR lines in a node.log.
* :func:`percentile` — nearest-rank percentiles for the recovery figures.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from typing import Iterable, Mapping

from .clients import Ack


def find_forks(blocks_by_node: Mapping[int, Mapping[int, bytes]]) -> tuple[list[dict], int]:
    """Heights where nodes hold different block bytes, and how many heights were
    compared (held by at least two nodes). Each fork: {"height", "variants":
    {sha256 prefix: [nodes]}}."""
    holders: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for node, blocks in blocks_by_node.items():
        for height, raw in blocks.items():
            holders[height][hashlib.sha256(raw).hexdigest()[:16]].append(node)
    forks, compared = [], 0
    for height in sorted(holders):
        variants = holders[height]
        if sum(len(nodes) for nodes in variants.values()) < 2:
            continue
        compared += 1
        if len(variants) > 1:
            forks.append({"height": height, "variants": {h: sorted(n) for h, n in variants.items()}})
    return forks, compared


def find_reused_seqs(acks: Iterable[Ack], committed: Iterable[tuple[int, str, str, str, int]]) -> list[dict]:
    """(branch, subject, seq) signed for two or more different records.

    ``committed``: (node, record hash, branch hex, subject, seq) rows from the
    nodes' databases. Each finding lists every record with the nodes that
    acknowledged it and the nodes that committed it."""
    acked_by: dict[str, set[int]] = defaultdict(set)
    committed_on: dict[str, set[int]] = defaultdict(set)
    by_slot: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for a in acks:
        acked_by[a.hash].add(a.node)
        by_slot[(a.branch, a.subject, a.seq)].add(a.hash)
    for node, record_hash, branch, subject, seq in committed:
        committed_on[record_hash].add(node)
        by_slot[(branch, subject, seq)].add(record_hash)
    out = []
    for (branch, subject, seq), hashes in sorted(by_slot.items()):
        if len(hashes) > 1:
            out.append({"branch": branch, "subject": subject, "seq": seq,
                        "records": [{"hash": h, "acked_by": sorted(acked_by[h]), "committed_on": sorted(committed_on[h])}
                                    for h in sorted(hashes)]})
    return out


def classify_unconfirmed(acks: Iterable[Ack], committed_by_node: Mapping[int, set[str]],
                         chain_slots: Mapping[tuple[str, str, int], str],
                         pending_on: Mapping[str, list[int]]) -> dict[str, list[dict]]:
    """Acknowledged records not committed on every node, by what became of them:

    * ``lost`` — committed on no node: ``superseded`` (the chain holds another
      record at its (branch, subject, seq)), ``pending`` (some mempool still has
      it, yet it did not commit in time), ``forgotten`` (no node knows it), or
      ``unasked`` (the mempools were not asked about it: too many to ask).
    * ``partial`` — committed on some nodes but not all (a node that did not catch up).

    ``chain_slots``: (branch, subject, seq) -> hash of the committed record there;
    ``pending_on``: record hash -> nodes answering "pending" for it, for the hashes asked about."""
    nodes = list(committed_by_node)
    lost, partial = [], []
    for a in acks:
        on = [n for n in nodes if a.hash in committed_by_node[n]]
        if len(on) == len(nodes):
            continue
        doc = a.to_json()
        if on:
            doc["committed_on"] = on
            partial.append(doc)
            continue
        holder = chain_slots.get((a.branch, a.subject, a.seq))
        if holder is not None and holder != a.hash:
            doc["fate"], doc["superseded_by"] = "superseded", holder
        elif a.hash not in pending_on:
            doc["fate"] = "unasked"
        elif pending_on[a.hash]:
            doc["fate"], doc["pending_on"] = "pending", pending_on[a.hash]
        else:
            doc["fate"] = "forgotten"
        lost.append(doc)
    return {"lost": lost, "partial": partial}


_TRACEBACK = "Traceback (most recent call last):"
_LEVEL = re.compile(r"^\S+ \S+ (ERROR|CRITICAL)\s+(\S+): (.*)$")
_VOLATILE = re.compile(r"\b[0-9a-f]{8,}\b|\b\d+(\.\d+)?\b")


def scan_log(text: str) -> dict:
    """Tracebacks (with the exception line that ends each), equivocation warnings,
    and ERROR/CRITICAL lines grouped by their message with numbers and hashes blanked."""
    lines = text.splitlines()
    tracebacks, exceptions = 0, []
    equivocations, errors = [], Counter()
    for i, line in enumerate(lines):
        if _TRACEBACK in line:
            tracebacks += 1
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            if j < len(lines):
                exceptions.append(lines[j][:300])
        elif "equivocation by " in line:  # node/consensus/driver.py's warning on RecordEvidence
            equivocations.append(line[:300])
        m = _LEVEL.match(line)
        if m:
            errors[f"{m.group(2)}: {_VOLATILE.sub('#', m.group(3))[:200]}"] += 1
    return {"tracebacks": tracebacks, "exceptions": exceptions, "equivocations": equivocations, "errors": dict(errors)}


_UP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO\s+branchnet\.node: node .* up at height")


def startup_times(text: str, start_mark: str) -> list[float]:
    """Seconds from each ``start_mark <epoch>`` line to the node's "up at height" line
    after it (process start, imports, store, libp2p, API): a restart's fixed cost."""
    import time as _time

    out, started = [], None
    for line in text.splitlines():
        if line.startswith(start_mark):
            try:
                started = float(line[len(start_mark):].strip())
            except ValueError:
                started = None
            continue
        m = _UP_LINE.match(line)
        if m and started is not None:
            up = _time.mktime(_time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
            out.append(round(up - started, 3))
            started = None
    return out


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
