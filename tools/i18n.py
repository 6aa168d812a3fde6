"""The gettext catalogues of the shopper's pages (api/locale/<lang>/LC_MESSAGES/messages.po).

    python tools/i18n.py extract   # bring every catalogue up to the sources, keeping translations
    python tools/i18n.py check     # fail unless every message is translated in every language

`extract` reads api/ with the mapping in babel.cfg (Python: `_`, `ngettext`, `N_`;
templates: `_`, `ngettext`, `{% trans %}`), adds new messages untranslated and drops
those the sources no longer use. `check` is what tests/api/test_i18n.py asserts: every
message present, translated, not fuzzy, with the same %(name)s placeholders as the
English, and no bare `%` (templates format every message).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "api"
MAPPING = ROOT / "babel.cfg"
sys.path.insert(0, str(ROOT))

from api.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalogue_path  # noqa: E402 (the repository on the path first)

#: A printf conversion: %(name)s, %d, %%...; group 1 is the name, group 2 the conversion.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([a-zA-Z%])?")


def template() -> Catalog:
    """Every message the sources ask to translate, in source order."""
    with MAPPING.open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    catalog = Catalog(project="provenance-ledger", msgid_bugs_address=None, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        SOURCES, method_map, options_map, keywords=DEFAULT_KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        catalog.add(message, None, [(f"api/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def read_catalogue(language: str) -> Catalog:
    """The catalogue of `language` as it is on disk (an empty one if there is none yet)."""
    path = catalogue_path(language)
    if not path.is_file():
        return Catalog(locale=language, project="provenance-ledger", fuzzy=False)
    with path.open("rb") as po:
        return read_po(po, locale=language)


def extract() -> None:
    """Update every language's catalogue to the sources."""
    source = template()
    for language in LANGUAGES:
        if language == DEFAULT_LANGUAGE:
            continue
        catalog = read_catalogue(language)
        # No fuzzy guesses from similar messages: a new message waits for a real translation.
        catalog.update(source, no_fuzzy_matching=True)
        path = catalogue_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as po:
            # No line numbers: they would change the file on every unrelated edit.
            write_po(po, catalog, width=100, ignore_obsolete=True, include_lineno=False)
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages")


def placeholders(text: str) -> tuple[set[str], list[str]]:
    """The named placeholders of `text`, and anything else printf would read (bare `%`,
    unnamed conversions), which a template's formatting would trip over."""
    names, others = set(), []
    for match in PLACEHOLDER.finditer(text):
        name, conversion = match.group(1), match.group(2)
        if name and conversion:
            names.add(name)
        elif conversion != "%":
            others.append(match.group(0))
    return names, others


def _forms(message: Message) -> tuple[list[str], list[str]]:
    """The English forms of a message and its translated forms."""
    ids = list(message.id) if isinstance(message.id, tuple | list) else [message.id]
    strings = list(message.string) if isinstance(message.string, tuple | list) else [message.string or ""]
    return ids, strings


def problems(source: Catalog, language: str) -> list[str]:
    """What keeps the catalogue of `language` from covering `source` (empty: complete)."""
    catalog = read_catalogue(language)
    found = []
    for wanted in source:
        if not wanted.id:
            continue
        message = catalog.get(wanted.id, context=wanted.context)
        label = f"{language}: {wanted.id!r}"
        if message is None:
            found.append(f"{label} is missing (run `make i18n`)")
            continue
        ids, strings = _forms(message)
        expected = set().union(*(placeholders(i)[0] for i in ids))
        if message.fuzzy:
            found.append(f"{label} is marked fuzzy")
        for form in strings:
            names, others = placeholders(form)
            if not form.strip():
                found.append(f"{label} is not translated")
            elif names != expected:
                found.append(f"{label}: placeholders {sorted(names)} in {form!r}, expected {sorted(expected)}")
            elif others:
                found.append(f"{label}: stray {others} in {form!r} (write %% for a percent sign)")
            elif set(re.findall(r"[<>&]", form)) - set(re.findall(r"[<>&]", " ".join(ids))):
                # Templates print a translation as it is (only its placeholders' values are escaped).
                found.append(f"{label}: markup in {form!r} that the English has not")
    return found


def check() -> int:
    """Print what is missing or wrong in any catalogue; 0 when nothing is."""
    source = template()
    found = [p for language in LANGUAGES if language != DEFAULT_LANGUAGE for p in problems(source, language)]
    for problem in found:
        print(problem)
    print(f"{len(source)} messages, {len(LANGUAGES) - 1} languages: {len(found)} problems")
    return 1 if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["extract", "check"])
    args = parser.parse_args()
    if args.command == "extract":
        extract()
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
