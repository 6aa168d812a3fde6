"""What each claim type means to a shopper: its plain-language explainer per language and
the official site of its scheme.

The built-in claim types ship with their text (`ledger/data/claim_types.toml`); the
ledger's admin overrides any of it, or describes a claim type it defined, in the config
file's `[claim_types.NAME]` tables (`scheme_url`, `explainer.LANG`), which
`provenance claim describe` writes with tomlkit so the file keeps its comments and layout.
This is content, not interface text: it is never in the gettext catalogues.
"""

from __future__ import annotations

import re
import shutil
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit

from ledger.errors import ConfigurationError, InvalidInputError

DEFAULTS = Path(__file__).parent / "data" / "claim_types.toml"
#: The languages an explainer is written in (the pages' languages); English is the fallback.
EXPLAINER_LANGUAGES = ("en", "es", "fr", "de")
FALLBACK_LANGUAGE = "en"
#: A few sentences: the page shows it whole, folded under the claim.
MAX_EXPLAINER_CHARS = 1000
MAX_URL_CHARS = 500
#: A claim type as the contract holds it: a bytes32 of upper-case ASCII words.
_CLAIM = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")


@dataclass(frozen=True)
class ClaimType:
    """One claim type's explainer by language and its scheme's site (None: not set)."""

    claim: str
    explainer: dict[str, str] = field(default_factory=dict)
    scheme_url: str | None = None

    def explainer_in(self, language: str) -> str | None:
        """The explainer in `language`, else in English, else None."""
        return self.explainer.get(language) or self.explainer.get(FALLBACK_LANGUAGE)


def check_claim(claim: str) -> str:
    """A claim type's name, upper-cased: letters, digits and `_`, at most 32."""
    name = claim.strip().upper()
    if not _CLAIM.match(name):
        raise InvalidInputError(f"claim type {claim!r} must be letters, digits and _ (at most 32), e.g. FAIRTRADE")
    return name


def check_scheme_url(url: str) -> str:
    """A scheme's site: an https address with a host, nothing a page could run."""
    url = url.strip()
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or len(url) > MAX_URL_CHARS
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)
    ):
        raise InvalidInputError(f"scheme URL {url!r} must be an https:// address (at most {MAX_URL_CHARS} characters)")
    return url


def check_explainer(text: str, language: str) -> tuple[str, str]:
    """An explainer's text (plain text, 1 to MAX_EXPLAINER_CHARS) and its language."""
    if language not in EXPLAINER_LANGUAGES:
        raise InvalidInputError(f"language {language!r} is not one of the pages' languages: {', '.join(EXPLAINER_LANGUAGES)}")
    text = " ".join(text.split())
    if not text or len(text) > MAX_EXPLAINER_CHARS:
        raise InvalidInputError(f"the explainer must be 1 to {MAX_EXPLAINER_CHARS} characters, not {len(text)}")
    return text, language


def _claim_type(claim: str, table: Any, base: ClaimType | None, source: Path) -> ClaimType:
    """A claim type from a TOML table over `base` (the packaged one, if any)."""
    if not isinstance(table, dict):
        raise ConfigurationError(f"{source}: [claim_types.{claim}] must be a table")
    unknown = sorted(set(table) - {"scheme_url", "explainer"})
    if unknown:
        raise ConfigurationError(f"{source}: [claim_types.{claim}] has unknown keys: {', '.join(unknown)}")
    explainer = dict(base.explainer) if base else {}
    scheme_url = base.scheme_url if base else None
    try:
        if "scheme_url" in table:
            scheme_url = check_scheme_url(str(table["scheme_url"]))
        texts = table.get("explainer", {})
        if not isinstance(texts, dict):
            raise InvalidInputError('explainer must be a table of languages, e.g. explainer.en = "..."')
        for language, text in texts.items():
            checked, _ = check_explainer(str(text), language)
            explainer[language] = checked
    except InvalidInputError as exc:
        raise ConfigurationError(f"{source}: [claim_types.{claim}]: {exc}") from exc
    return ClaimType(claim, explainer, scheme_url)


def _tables(path: Path, nested: bool) -> dict[str, Any]:
    """The claim type tables of a TOML file: top-level ones (the packaged file) or those
    under `claim_types` (a config file); {} for a config file that does not exist."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if nested:
            return {}
        raise
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    tables = data.get("claim_types", {}) if nested else data
    if not isinstance(tables, dict):
        raise ConfigurationError(f"{path}: claim_types must be tables like [claim_types.FAIRTRADE]")
    return tables


def load_claim_types(config_file: Path | None) -> dict[str, ClaimType]:
    """The packaged claim types with the config file's overrides and additions."""
    types: dict[str, ClaimType] = {}
    for claim, table in _tables(DEFAULTS, nested=False).items():
        types[claim] = _claim_type(claim, table, None, DEFAULTS)
    if config_file is not None:
        for claim, table in _tables(config_file, nested=True).items():
            types[claim] = _claim_type(claim, table, types.get(claim), config_file)
    return types


_cache: dict[Path | None, tuple[tuple[int, int] | None, dict[str, ClaimType]]] = {}
_cache_lock = threading.Lock()


def _stamp(config_file: Path | None) -> tuple[int, int] | None:
    try:
        status = config_file.stat() if config_file else None
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size) if status else None


def claim_types(config_file: Path | None) -> dict[str, ClaimType]:
    """`load_claim_types`, read again only when the config file changed (page builds
    call it for every page)."""
    stamp = _stamp(config_file)
    with _cache_lock:
        cached = _cache.get(config_file)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    types = load_claim_types(config_file)
    with _cache_lock:
        _cache[config_file] = (stamp, types)
    return types


def describe_claim_type(
    config_file: Path, claim: str, text: str | None = None, language: str = FALLBACK_LANGUAGE, scheme_url: str | None = None
) -> ClaimType:
    """Write a claim type's explainer (in `language`) and/or scheme URL into the config
    file's `[claim_types.CLAIM]` table, keeping the rest of the file as it was; returns
    the claim type as pages will now show it."""
    claim = check_claim(claim)
    if text is None and scheme_url is None:
        raise InvalidInputError("say what to set: --text (with --lang) and/or --scheme-url")
    url = check_scheme_url(scheme_url) if scheme_url is not None else None
    explainer = check_explainer(text, language) if text is not None else None
    load_claim_types(config_file)  # a config file that is already broken is refused, not made worse
    document = tomlkit.parse(config_file.read_text(encoding="utf-8")) if config_file.exists() else tomlkit.document()
    tables = document.setdefault("claim_types", tomlkit.table(is_super_table=True))
    table = tables.setdefault(claim, tomlkit.table())
    if url is not None:
        table["scheme_url"] = url
    if explainer is not None:
        texts = table.setdefault("explainer", tomlkit.table())
        texts[explainer[1]] = explainer[0]
    config_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = config_file.with_name(config_file.name + ".tmp")
    temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
    if config_file.exists():
        shutil.copymode(config_file, temporary)  # a config file kept private stays private
    temporary.replace(config_file)  # a reader never sees half a file
    return load_claim_types(config_file)[claim]
