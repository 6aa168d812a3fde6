"""What every command shares: global options, output (human or --json), error handling."""

from __future__ import annotations

import functools
import json
import os
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeGuard, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ledger.errors import InvalidInputError, LedgerError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.writer import LedgerWriter

# Piped into a file or another program, tables keep whole rows (names, transaction
# hashes) instead of wrapping at rich's default 80 columns.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
console = Console(soft_wrap=True, highlight=False, width=_WIDTH)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
AccountOption = Annotated[
    str | None,
    typer.Option("--account", "-a", help="Who signs: keystore name or node:N (default: settings)."),
]


@dataclass
class GlobalOptions:
    """Options given before the command (`provenance --rpc-url ... batch register ...`)."""

    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> Settings:
        from ledger.config import Settings

        return Settings.from_env(**self.overrides)


OPTIONS = GlobalOptions()


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: object) -> str:
    """`text` with every control, format (zero-width, bidi) and line-separator character
    shown as an escape (`\\n`, `\\x1b`, `\\u202e`): text from the chain or a user can then
    neither forge an output line, nor move the cursor, nor reorder what the terminal shows."""
    out = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(char)
            out.append(_SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"))
        else:
            out.append(char)
    return "".join(out)


def safe(text: object) -> str:
    """`text` (from the chain or a user) ready to put inside rich markup: control characters
    made visible (:func:`visible`), and brackets escaped so `[/]` or `[red]` print literally."""
    return escape(visible(text))


def cell(text: object) -> Text:
    """A table cell showing `text` literally (no markup, no emoji codes, controls visible)."""
    return Text(visible(text))


def say(line: str) -> None:
    """Print one line for a person. The whole line is literal text: values from the chain
    or a user in it are never read as markup or emoji codes, and control characters in them
    are made visible, so they cannot crash the command after it sent its transaction."""
    console.print(visible(line), markup=False, emoji=False)


def warn(message: str) -> None:
    """Print a warning on stderr (literal text, controls visible)."""
    err_console.print(Text.assemble(("warning:", "bold yellow"), " ", visible(message)))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as an error and exit with `code`. The message often quotes the chain
    (organisation names) or the user: it is printed literally, controls made visible."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", visible(message)))
    raise typer.Exit(code)


P = ParamSpec("P")
R = TypeVar("R")


def _is_validation_error(exc: Exception) -> TypeGuard[ValidationError]:
    """Whether `exc` is pydantic's ValidationError. pydantic is imported only by commands
    that build models (not by `--help`), and an exception can only be its error once it is
    loaded: so it is looked up, never imported, here."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def _is_transport_error(exc: Exception) -> bool:
    """Whether `exc` is a lost connection or timeout of the HTTP client web3 uses (raised
    as it is from the bulk path's threads). Looked up, never imported, as pydantic is."""
    requests = sys.modules.get("requests")
    return requests is not None and isinstance(exc, requests.exceptions.RequestException)


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the client's errors into one clear line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except LedgerError as exc:
            fail(str(exc))
        except Exception as exc:
            if _is_transport_error(exc):
                fail(
                    f"the chain stopped answering ({type(exc).__name__}: {exc}); is it running? What the command "
                    "reported done is kept; a `batch import` can simply be run again and carries on where it stopped"
                )
            if not _is_validation_error(exc):
                raise
            fail("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))
        raise AssertionError("unreachable")

    return wrapper


def check_output_path(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """`path` if a file can be written there: its folder exists and is writable, it is not
    itself a folder, and it ends in one of `suffixes` (when given). Called before a command
    does any work (above all before it writes to the chain), so a typo in an output path
    costs nothing."""
    if path.is_dir():
        raise InvalidInputError(
            f"{option} {path} is a folder: give a file name inside it, e.g. {path / ('output' + (suffixes[0] if suffixes else ''))}"
        )
    if suffixes and path.suffix.lower() not in suffixes:
        raise InvalidInputError(f"{option} {path} must end in {' or '.join(suffixes)}")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InvalidInputError(f"{option} {path}: the folder {folder} {what}; create it first or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidInputError(f"{option} {path}: no permission to write there; choose another path")
    return path


def write_output(path: Path, data: bytes | str, option: str) -> None:
    """Write a command's output file, turning an OS error (disk full, a folder removed
    meanwhile) into one sentence instead of a traceback."""
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {option} {path}: {exc.strerror or exc}") from exc


def connection() -> LedgerConnection:
    """A checked connection with the current settings."""
    from ledger.connection import LedgerConnection

    return LedgerConnection.open(OPTIONS.settings())


def writer(account: str | None) -> LedgerWriter:
    """A writer signing as `account` (or the settings' default signer)."""
    from ledger.signers import resolve_signer
    from ledger.writer import LedgerWriter

    conn = connection()
    return LedgerWriter(conn, resolve_signer(conn.settings, conn.w3, account))


def address_of(conn: LedgerConnection, who: str) -> str:
    """Resolve an address, `node:N` or keystore name to an address."""
    from ledger.signers import resolve_address

    return resolve_address(conn.settings, conn.w3, who)


def parse_batch_id(gtin: str, lot: str) -> bytes:
    """The batch id of GTIN + lot, or of a 0x batch id passed as GTIN with an empty lot."""
    from ledger.identifiers import batch_id

    if gtin.startswith("0x") and len(gtin) == 66:
        return bytes.fromhex(gtin[2:])
    return batch_id(gtin, lot)


def parse_time(text: str | None) -> int:
    """Unix seconds from an ISO date/time (UTC when no zone), unix seconds, or 0 for None."""
    if not text:
        return 0
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def show_time(seconds: int) -> str:
    """ISO UTC time of unix `seconds` (or 'open' for 0)."""
    return "open" if seconds == 0 else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def to_jsonable(value: Any) -> Any:
    """Models, bytes and containers as plain JSON values."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "as_dict"):  # a read-model record (ledger.records)
        return to_jsonable(value.as_dict())
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def emit(as_json: bool, data: dict[str, Any], human: Callable[[], object]) -> None:
    """Print `data` as JSON, or call `human` to print for a person."""
    if as_json:
        print(json.dumps(to_jsonable(data), indent=2))
    else:
        human()


def print_fields(rows: list[tuple[str, Any]]) -> None:
    """Aligned 'label   value' lines; values are printed literally (see :func:`say`)."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        if value is not None:
            say(f"{label.ljust(width)}  {value}")
