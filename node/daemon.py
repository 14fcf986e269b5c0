"""``branchnet run``: the node in the foreground, as a daemon would run it.

* Structured log lines (``text`` or ``json``), libp2p's own logging routed into ours.
* SIGINT/SIGTERM stop the node cleanly: tasks cancelled, store closed, peers
  saved; a second signal exits at once. A restart resumes at the last committed
  height (the store and the signer state are durable).
* A PID file in the home guards against two nodes on one home.
* When the branch's key rotation commits (node/keyring.py) the node stops and
  starts again in this process with the new key: its libp2p identity changes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import trio

from .config import Config, Home
from .errors import ConfigError, FatalError
from .malloc import use_one_arena
from .p2p.unused import MDNS, UNUSED, leave_out

log = logging.getLogger("branchnet.daemon")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(level: str = "info", fmt: str = "text", stream=None) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in filter(None, os.environ.get("BRANCHNET_DEBUG_LOGGERS", "").split(",")):
        logging.getLogger(name.strip()).setLevel(logging.DEBUG)  # e.g. branchnet.consensus
    # libp2p's records reach this handler through node.p2p.liblog (installed with
    # the host): one line each, its expected noise at DEBUG.
    logging.getLogger("libp2p").setLevel(logging.WARNING if level != "debug" else logging.INFO)


class PidFile:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip())
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, PermissionError):
                pass  # stale
            else:
                raise ConfigError(f"another node (pid {pid}) is running on this home ({self.path}); stop it first")
        self.path.write_text(f"{os.getpid()}\n")
        return self

    def __exit__(self, *exc):
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass


def known_failure(exc: BaseException, types: tuple[type, ...]) -> BaseException | None:
    """``exc`` or the first exception of ``types`` inside it: trio's nurseries wrap what a
    task raises (a ChainHalted deep in block sync, say) in ExceptionGroups."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = known_failure(inner, types)
            if found is not None:
                return found
    return None


async def run_node(home: Home, config: Config) -> None:
    """Run the node until a signal or its halt height. A node whose key rotation committed
    stops and is started again here, from its home, with the new key (node/keyring.py)."""
    from .node import BranchNode

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        while True:
            node = BranchNode(home, config=config)
            stopped = trio.Event()
            async with trio.open_nursery() as nursery:

                async def run_then_stop() -> None:
                    await node.run()  # returns when cancelled: a signal, the halt height, a key rotation
                    stopped.set()

                nursery.start_soon(run_then_stop)

                async def stop_on_signal() -> None:
                    async for signum in signals:
                        log.info("received %s: stopping (height %d)", signal.Signals(signum).name, node.chain.height)
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(stop_on_signal)
                await stopped.wait()
                nursery.cancel_scope.cancel()
            if not node.restart_requested.is_set():
                break
            log.info("key rotation committed: starting the node again with its new key")
    log.info("stopped cleanly at height %d", node.chain.height)


def main(home_path: str) -> int:
    home = Home(Path(home_path))
    if not home.config.exists():  # no home here: a usage error
        print(f"error: {home.config}: not found (run `branchnet init --home {home.path}` first)", file=sys.stderr)
        return 2
    try:
        config = home.load_config()
    except ConfigError as exc:  # damaged or invalid: the node cannot start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    setup_logging(config.log.level, config.log.format)
    use_one_arena()  # before any thread starts (node/malloc.py)
    if not leave_out(UNUSED if config.p2p.mdns else UNUSED + MDNS):  # before anything imports libp2p (node/p2p/unused.py)
        log.debug("libp2p's optional packages are loaded already: not left out (node/p2p/unused.py)")
    t0 = time.monotonic()
    try:
        with PidFile(home.pid_file):
            profile_dir = os.environ.get("BRANCHNET_PROFILE")
            if profile_dir:  # diagnostics: a cProfile of the whole run, written on exit
                import cProfile

                profiler = cProfile.Profile()
                try:
                    profiler.runcall(trio.run, run_node, home, config)
                finally:
                    profiler.dump_stats(str(Path(profile_dir) / f"{home.path.name}.prof"))
            else:
                trio.run(run_node, home, config)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # startup failures: one clear line, not a traceback
        known = known_failure(exc, (FatalError,))
        if known is not None:  # one line on stderr (systemd's journal keeps it)
            print(f"error: {known}", file=sys.stderr)
            return 1
        raise
    log.info("ran for %.1f s", time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--home":
        print("usage: python -m node.daemon --home DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[2]))
