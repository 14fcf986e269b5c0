"""Shared plumbing of the ``branchnet`` CLI: exit codes, errors, options, output, node client.

Exit codes (documented in ``branchnet --help`` and docs/CLI.md):

* 0 ok
* 1 the operation failed: the node said no, a verification failed, a file's
  content is invalid
* 2 usage or configuration error: bad flag, missing or unreadable file/config
* 3 the node is unreachable

Every failure is raised as a :class:`CliError` subclass carrying its exit code;
``node.cli`` prints it as one ``error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from ..config import ConfigError, Home

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  operation failed (the node said no, verification failed)
  2  usage or configuration error
  3  node unreachable"""


class CliError(click.ClickException):
    """An operation failed (exit 1). Printed as ``error: <message>``."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class ConfigProblem(CliError):
    """Usage or configuration error (exit 2)."""

    exit_code = EXIT_USAGE


class NodeRefused(CliError):
    """The node answered an error (exit 1): ``status`` (HTTP) and ``code`` (the API's reason slug)."""

    def __init__(self, message: str, *, status: int, code: str):
        super().__init__(message)
        self.status, self.code = status, code


class NodeUnreachable(CliError):
    """The node's API cannot be reached (exit 3)."""

    exit_code = EXIT_UNREACHABLE


# ---------------------------------------------------------------- context and options


def default_home() -> Path:
    return Path(os.environ.get("BRANCHNET_HOME") or Path.home() / ".branchnet").expanduser()


@dataclass
class CliContext:
    home_path: Path | None = None  # None: default_home()
    node_url: str | None = None

    @property
    def home(self) -> Home:
        return Home(self.home_path if self.home_path is not None else default_home())

    def api_url(self) -> str:
        """The node's API base URL: --node, else HOME/config.toml [api] listen."""
        if self.node_url:
            url = self.node_url.rstrip("/")
            return url if "://" in url else f"http://{url}"
        home = self.home
        try:
            config = home.load_config()
        except ConfigError as exc:
            raise ConfigProblem(f"{exc} (or pass --node URL)") from None
        host, _, port = config.api.listen.rpartition(":")
        if port == "0":
            raise ConfigProblem(f"{home.config}: [api] listen uses port 0 (chosen at start); pass --node URL")
        if host in ("0.0.0.0", "", "::", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def api_token(self) -> str:
        path = self.home.api_token
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            raise ConfigProblem(f"{path}: API token not found (writes need the node's home: --home DIR)") from None
        except OSError as exc:
            raise ConfigProblem(f"{path}: cannot read the API token ({exc.strerror})") from None
        if not token:
            raise ConfigProblem(f"{path}: API token file is empty")
        return token

    def client(self, *, timeout: float = 10.0) -> "NodeClient":
        return NodeClient(self.api_url(), token_source=self.api_token, timeout=timeout)


def cli_context() -> CliContext:
    ctx = click.get_current_context()
    return ctx.ensure_object(CliContext)


def _set_home(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(CliContext).home_path = value


def _set_node(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliContext).node_url = value


HOME_HELP = "Node home directory (default: $BRANCHNET_HOME or ~/.branchnet)."
NODE_HELP = "Node API URL, e.g. http://127.0.0.1:26657 (default: [api] listen from HOME/config.toml)."


def home_option(f: Callable) -> Callable:
    """``--home DIR`` on a subcommand (also accepted before the subcommand)."""
    return click.option("--home", type=click.Path(path_type=Path, file_okay=False), expose_value=False,
                        is_eager=True, callback=_set_home, help=HOME_HELP)(f)


def node_option(f: Callable) -> Callable:
    return click.option("--node", metavar="URL", expose_value=False, is_eager=True, callback=_set_node, help=NODE_HELP)(f)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(f)


# ---------------------------------------------------------------- output


def print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=False))


def console(*, stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # pipes and logs: don't cut ids at 80 columns
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, width=width)


def kv_table(rows: list[tuple[str, Any]], title: str | None = None):
    from rich.table import Table

    table = Table(show_header=False, box=None, title=title, title_justify="left", pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, _cell(v))
    return table


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def progress_bar(*, stderr: bool = True):
    """A rich progress bar on stderr (so ``--json`` stdout stays one document); off when
    stderr is not a terminal (logs, CI, systemd)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    out = console(stderr=stderr)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=out, transient=False, disable=not out.is_terminal)


# ---------------------------------------------------------------- node client


class NodeClient:
    """A small synchronous client of the node's HTTP API (docs/CLI.md, node/api.py).

    Raises NodeUnreachable (connection refused, timeouts), CliError for an
    error answer (``{"error": {"code", "field", "message"}}``).
    """

    def __init__(self, base_url: str, *, token_source: Callable[[], str] | None = None, timeout: float = 10.0):
        import httpx

        self.base_url = base_url
        self._token_source = token_source
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "NodeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, path: str, params: dict[str, Any] | None = None, *, allow_404: bool = False) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        return self._request("GET", path, params=params, allow_404=allow_404)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        token = self._token_source() if self._token_source else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._request("POST", path, json=body, headers=headers)

    def _request(self, method: str, path: str, *, allow_404: bool = False, **kw: Any) -> Any:
        import httpx

        try:
            resp = self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NodeUnreachable(f"cannot reach the node at {self.base_url} ({_reason(exc)}); is `branchnet run` running?") from None
        except httpx.TimeoutException:
            raise NodeUnreachable(f"the node at {self.base_url} did not answer {method} {path} in time") from None
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"connection to the node at {self.base_url} failed ({_reason(exc)})") from None
        if resp.status_code == 404 and allow_404:
            return None
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if resp.status_code >= 400:
            raise NodeRefused(api_error_message(doc, resp.status_code, f"{method} {path}"), status=resp.status_code,
                              code=str((doc.get("error") or {}).get("code") or "") if isinstance(doc, dict)
                              and isinstance(doc.get("error"), dict) else "")
        if doc is None:
            raise CliError(f"{method} {path}: the node answered {resp.status_code} with a body that is not JSON")
        return doc


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split("] ", 1)[-1] if text else type(exc).__name__


def api_error_message(doc: Any, status: int, what: str) -> str:
    """``<message> (<code>, field <field>)`` from the API's error object."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or f"HTTP {status}")
        extra = [str(err["code"])] if err.get("code") else []
        if err.get("field"):
            extra.append(f"field {err['field']}")
        return f"{message} ({', '.join(extra)})" if extra else message
    if status in (401, 403):
        return f"{what}: the node refused the API token (HTTP {status}); is --home the node's home?"
    return f"{what}: the node answered HTTP {status}"


def fail(message: str) -> None:
    raise CliError(message)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
