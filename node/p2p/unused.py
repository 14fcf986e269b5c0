"""What py-libp2p imports for features a node never runs, left out of the daemon.

``import libp2p`` (0.8.1, pinned) runs the package's ``__init__``, which imports every
transport and service the package ships, with their dependencies: QUIC and WebTransport
(``aioquic``, ``pylsqpack``) and AutoTLS's ACME client (``httpx``, ``requests``), and mDNS
discovery (``zeroconf``). A node speaks TCP + PSK + Noise + Yamux only (DESIGN.md), and
uses mDNS only if its config says so, so that code never runs in it, yet it costs every
node process about 17 MB of RSS and 270 modules (docs/PERFORMANCE.md, "What a node
imports").

``leave_out()`` puts a finder first on ``sys.meta_path`` that answers those packages with
placeholder modules. Importing them, and naming what they define (``from aioquic.quic.connection
import QuicConnection``, a base class, an ``except`` clause, a default argument), works as
libp2p's module-level code needs; *using* anything from them (calling it, making an
instance) raises ``ImportError`` naming the package, so a code path that would need one
fails loudly. The daemon calls it before anything imports libp2p; tools and tests that
import ``node`` are unaffected (the API's test client needs the real ``httpx``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

# Top-level packages imported only by libp2p's QUIC/WebTransport transports and its AutoTLS
# client (libp2p/transport/quic, transport/webtransport, security/tls/autotls). Checked by
# tests/test_p2p_unused.py against the installed libp2p.
UNUSED = ("aioquic", "pylsqpack", "httpx", "requests")
# Used only for mDNS discovery (node/p2p/mdns.py; libp2p/discovery/mdns): left out too
# where ``[p2p] mdns`` is off, the default.
MDNS = ("zeroconf",)


class NotLoaded(ImportError):
    """Raised when something from a left-out package is used."""


class _PlaceholderType(type):
    """The metaclass of placeholder classes: any attribute is another placeholder, and
    calling one (a function, a class) raises ``NotLoaded``."""

    def __getattr__(cls, name: str):
        return _attribute(cls, name, f"{cls.__qualname__}.{name}", cls.__module__)

    def __call__(cls, *args, **kwargs):
        raise NotLoaded(f"{cls.__module__}.{cls.__qualname__}: {cls.__module__.split('.')[0]} is not "
                        "loaded in a branchnet node (node/p2p/unused.py)")

    def __getitem__(cls, item):  # a generic alias in a module-level annotation
        return cls


def _attribute(owner: object, name: str, qualname: str, module: str) -> type:
    """A missing attribute of a placeholder module or class: a new placeholder, kept on
    ``owner`` so the same one comes back every time. Dunder names stay missing."""
    if name.startswith("__"):
        raise AttributeError(name)
    value = _placeholder(qualname, module)
    setattr(owner, name, value)
    return value


def _placeholder(qualname: str, module: str) -> type:
    # An Exception subclass, so that ``except placeholder:`` is valid Python (and never matches).
    cls = _PlaceholderType(qualname.rsplit(".", 1)[-1], (Exception,), {"__module__": module})
    cls.__qualname__ = qualname
    return cls


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name: str):
        return _attribute(self, name, name, self.__name__)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, packages: tuple[str, ...]):
        self.packages = frozenset(packages)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.packages:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []  # a package: its submodules come here too
        return module

    def exec_module(self, module) -> None:
        return None


def leave_out(packages: tuple[str, ...] = UNUSED) -> bool:
    """Answer ``packages`` with placeholders from now on, in this process. Returns False
    (and changes nothing) if one of them is already loaded or the finder is in place."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return False
    if any(name.partition(".")[0] in packages for name in sys.modules):
        return False
    sys.meta_path.insert(0, _Finder(packages))
    return True


def left_out() -> frozenset[str]:
    """The packages this process answers with placeholders (empty if none)."""
    return next((f.packages for f in sys.meta_path if isinstance(f, _Finder)), frozenset())
