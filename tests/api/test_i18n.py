"""The shopper's pages in English, Spanish, French and German (issue 13 item 6): complete
catalogues, pages with no English left in their interface, chosen by Accept-Language, by
`?lang=` and by the switcher in a real browser, and dates and numbers written the way each
language writes them. Programs (JSON) keep getting English."""

from __future__ import annotations

import html as html_module
import importlib.util
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from apisite import ROOT

from api.formats import date_text, percent, time_text
from api.i18n import LANGUAGES, accepted_languages, choose_language, use_language
from api.views import DEFAULT_WHAT_TO_DO, quantity_text
from ledger.demo import DEMO_BAG, DEMO_LOAF, FARM_COFFEE
from ledger.queries import ADMIN_NAME

JSON = {"Accept": "application/json"}
BAG = f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}"
LOAF = f"/01/{DEMO_LOAF[0]}/10/{DEMO_LOAF[1]}"
ESPERANZA = f"/01/{FARM_COFFEE['esperanza']}/10/ESP-2026-07"
TRANSLATED = [language for language in LANGUAGES if language != "en"]
#: What a browser of each language sends (the language is not always first, nor alone).
ACCEPT = {"es": "es-ES,es;q=0.9,en;q=0.6", "fr": "en;q=0.3, fr-CH, fr;q=0.9", "de": "de-AT,de;q=0.8"}


def _tool() -> Any:
    """tools/i18n.py, the catalogue tool `make i18n` runs (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "tools" / "i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- (1) the catalogues cover the sources ------------------------------------------------


def test_every_message_of_the_sources_is_translated_in_every_language():
    tool = _tool()
    source = tool.template()  # extracted now, from api/ as it is
    assert len(source) > 250, "extraction found too few messages: is babel.cfg read?"
    ids = {m.id for m in source}
    assert "No recall" in ids and "Recall: do not eat or sell this product." in ids  # templates
    assert "Grown and harvested" in ids and "Fair trade" in ids  # Python view code (N_ and _)
    for language in TRANSLATED:
        assert tool.problems(source, language) == [], f"catalogue {language}: run `make i18n` and translate"


def test_the_check_names_what_is_missing_untranslated_or_misformatted(tmp_path, monkeypatch):
    """The completeness check itself fails on each kind of gap (a catalogue copied aside)."""
    from babel.messages.catalog import Catalog

    tool = _tool()
    source = Catalog()
    for message in ("Kept", "Lot %(lot)s", "New one", "Half", "Plain"):
        source.add(message)
    catalog = Catalog(locale="de")
    catalog.add("Kept", "Behalten")
    catalog.add("Lot %(lot)s", "Charge %(lot)")  # a placeholder broken in translation
    catalog.add("Half", "Halb", flags=["fuzzy"])
    catalog.add("Plain", "<b>Fett</b>")  # templates print translations unescaped: no markup of its own
    path = tmp_path / "de" / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True)
    from babel.messages.pofile import write_po

    with path.open("wb") as po:
        write_po(po, catalog)
    monkeypatch.setattr(tool, "catalogue_path", lambda language: tmp_path / language / "LC_MESSAGES" / "messages.po")
    found = "\n".join(tool.problems(source, "de"))
    assert "'New one' is missing" in found and "'Half' is marked fuzzy" in found
    assert "'Lot %(lot)s': placeholders" in found and "'Plain': markup in" in found and "Kept" not in found


# -- (2) no English left on the pages ---------------------------------------------------

#: Keys of the page's JSON whose strings come from the chain or documents, not from us.
DATA_KEYS = {
    "product", "origin", "name", "supplier_name", "supplier", "who", "where", "places", "reason", "review_reason",
    "recalled_by", "reviewed_by", "issuer_name", "issuer", "revoked_by_name", "revocation_reason", "contact", "lot",
    "gtin", "by", "holder", "address", "country", "notice_url", "url", "tx_hash", "batch_id", "contract", "sha256",
}  # fmt: skip


def _data_strings(value: Any, key: str | None = None) -> Iterator[str]:
    """Every string under a data key of the page's JSON (recursively)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _data_strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _data_strings(v, key)
    elif isinstance(value, str) and key in DATA_KEYS and value:
        yield value


@pytest.fixture(scope="module")
def data_strings(client) -> list[str]:
    """Text the pages show that came from the chain or documents (names, products,
    places, reasons, a recall document's own notice): English or not, it is no UI string.
    The recall notice's headline and advice count only when a document wrote them."""
    found: set[str] = set()
    for path in (BAG, LOAF, ESPERANZA):
        view = client.get(path, headers=JSON).json()
        found |= set(_data_strings(view))
        for recall in view["recalled"]:
            if not recall["headline"].startswith("Recall of "):
                found.add(recall["headline"])
            if recall["what_to_do"] != DEFAULT_WHAT_TO_DO:
                found.add(recall["what_to_do"])
    found |= {a["name"] for a in client.get("/api/v1/actors", params={"limit": 500}).json()["items"] if a.get("name")}
    # What shoppers and makers wrote in the feedback log (other test modules post English there).
    for entry in client.get("/api/v1/feedback/log").json()["entries"]:
        content = entry.get("content") or {}
        found |= {content[key] for key in ("text", "reason") if isinstance(content.get(key), str) and content[key]}
    found.discard(ADMIN_NAME)  # the read model's English word for an admin: the pages translate it
    return sorted(found, key=len, reverse=True)  # longest first: a name inside a longer one goes with it


def visible_text(page: str) -> str:
    """What a person reads or hears: the text outside tags (no style block), plus the
    labels screen readers announce (aria-label), whitespace collapsed."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    labels = " ".join(re.findall(r'aria-label="([^"]*)"', page))
    # Only ASCII white space: the narrow no-break space of "12 000 kg" is part of the number.
    return html_module.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page) + " " + labels))


#: Words English uses everywhere and Spanish, French and German never do.
ENGLISH_WORDS = ("the", "and", "with", "this", "from", "were", "have", "which", "been", "into", "your")

#: A printf placeholder of a message: what sits between the words to look for.
_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")


def english_fragments(language: str) -> dict[str, str]:
    """The English words of every message `language` does not write the same way, as
    fragments between placeholders (fragment -> its message): a fragment on a page in
    `language` is interface text left in English. A message the catalogue translates as
    itself ("GTIN") is skipped; one it lacks or leaves empty is looked for. Fragments the
    translation contains ("lot" in French) or of fewer than three letters are not."""
    tool = _tool()
    catalogue = tool.read_catalogue(language)
    fragments = {}
    for message in tool.template():
        ids = list(message.id) if isinstance(message.id, tuple) else [message.id]
        if not ids[0]:
            continue
        entry = catalogue.get(message.id, context=message.context)
        strings = [] if entry is None or entry.fuzzy else [entry.string] if isinstance(entry.string, str) else list(entry.string)
        translated = " ".join(s for s in strings if s)
        for english in ids:
            if english == translated:
                continue
            for fragment in _PLACEHOLDER.split(english):
                fragment = fragment.strip(" .,:;()–-")
                if len(re.sub(r"\W", "", fragment)) >= 3 and fragment not in translated:
                    fragments[fragment] = english
    return fragments


def untranslated(page: str, language: str, data: list[str]) -> list[str]:
    """The English interface fragments found on `page` (a page in `language`), with the
    message each belongs to, once data strings are taken out of its text."""
    text = visible_text(page)
    for value in data:
        text = text.replace(value, " | ")
    found = [
        f"{fragment!r} (from {english!r})"
        for fragment, english in english_fragments(language).items()
        if re.search(r"(?<!\w)" + re.escape(fragment) + r"(?!\w)", text)
    ]
    # Text a template forgot to wrap is in no catalogue: English's commonest words give it away.
    found += [f"{word!r} (not in a catalogue)" for word in ENGLISH_WORDS if re.search(rf"(?<!\w){word}(?!\w)", text, re.I)]
    return sorted(found)


@pytest.fixture(scope="module")
def proof_path(client) -> str:
    """The proof page of the coffee bag's registration."""
    batch_id = client.get(BAG, headers=JSON).json()["batch_id"]
    return "/proof/" + client.get(f"/api/v1/batches/{batch_id}/history").json()["events"][0]["tx_hash"]


def pages(proof: str) -> dict[str, int]:
    """The pages checked in every language, with the status each answers."""
    return {BAG: 200, LOAF: 200, proof: 200, f"/01/{DEMO_BAG[0]}/10/NO-SUCH-LOT": 404, "/no/such/page": 404}


@pytest.mark.parametrize("chosen_by", ["accept-language", "switcher"])
@pytest.mark.parametrize("language", TRANSLATED)
def test_each_language_renders_the_pages_with_no_english_interface_text(
    live_server, data_strings, proof_path, language, chosen_by
):
    for path, status in pages(proof_path).items():
        if chosen_by == "switcher":  # a browser saying English, overruled by the switcher's ?lang=
            url, headers = f"{live_server}{path}?lang={language}", {"Accept-Language": "en-GB,en;q=0.9"}
        else:
            url, headers = f"{live_server}{path}", {"Accept-Language": ACCEPT[language]}
        # A fresh client per page: no cookie carries the language from one page to the next.
        response = httpx.get(url, headers=headers)
        assert response.status_code == status, url
        assert f'<html lang="{language}">' in response.text, url
        assert response.headers["content-language"] == language
        assert "Accept-Language" in response.headers["vary"]
        assert untranslated(response.text, language, data_strings) == [], f"English left on {path} in {language}"


def test_english_is_the_default_and_the_english_page_is_caught_by_the_check(live_server, data_strings):
    """With no language asked for (or one not offered), pages stay English, and the check
    above does see English on them (it is not blind)."""
    for accept in (None, "pt-BR,pt;q=0.9", "*"):
        response = httpx.get(live_server + BAG, headers={"Accept-Language": accept} if accept else {})
        assert '<html lang="en">' in response.text and "No recall" in response.text
    found = untranslated(httpx.get(live_server + BAG).text, "de", data_strings)
    assert any("No recall" in f for f in found) and any("Journey" in f for f in found)
    assert "'the' (not in a catalogue)" in found  # text no template wrapped would be caught too


# -- choosing the language ---------------------------------------------------------------


def test_accept_language_is_read_by_its_q_values():
    assert accepted_languages("fr;q=0.5, de, en;q=0.1, es;q=0") == ["de", "fr", "en"]
    assert choose_language(None, None, "fr;q=0.5, de-CH, en;q=0.1") == "de"
    assert choose_language(None, None, "pt-BR, es-MX;q=0.8") == "es"  # a region's variant of an offered language
    assert choose_language(None, None, "es;q=0, pt") == "en"  # q=0 refuses
    assert choose_language(None, None, "q=junk;;,") == "en" and choose_language(None, None, None) == "en"
    assert choose_language("FR", "de", "es") == "fr"  # the switcher, then the remembered choice, then the browser
    assert choose_language("xx", "de", "es") == "de" and choose_language(None, "zz", "es") == "es"


def test_the_switcher_links_each_language_and_its_choice_is_remembered(live_server):
    response = httpx.get(f"{live_server}{BAG}?lang=fr", headers={"Accept-Language": "de"})
    nav = re.search(r'<nav class="languages" aria-label="Langue">(.*?)</nav>', response.text, re.S)
    assert nav is not None
    links = re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang="(\w+)"( aria-current="true")?>([^<]+)</a>', nav.group(1))
    assert [(href, lang, current != "", name) for href, lang, _, current, name in links] == [
        ("?lang=en", "en", False, "English"),
        ("?lang=es", "es", False, "Español"),
        ("?lang=fr", "fr", True, "Français"),
        ("?lang=de", "de", False, "Deutsch"),
    ]
    assert "lang=fr" in response.headers["set-cookie"] and "SameSite=Lax" in response.headers["set-cookie"]
    # The next page, opened without ?lang=, stays in the chosen language.
    proof = re.search(r'href="(/proof/0x[0-9a-f]+)"', response.text)
    assert proof is not None
    following = httpx.get(live_server + proof.group(1), headers={"Accept-Language": "de"}, cookies={"lang": "fr"})
    assert '<html lang="fr">' in following.text and "Ce que cette transaction a enregistré" in following.text


def test_programs_get_english_whatever_language_they_send(client):
    german = {"Accept-Language": "de", "Cookie": "lang=fr"}
    view = client.get(BAG, headers={**JSON, **german}).json()
    assert view["quantity_text"] == "2,000 pieces" and view["verdict"]["recall_headline"] == "No recall"
    assert {g["claim_name"] for g in view["claim_groups"]} >= {"Fair trade", "Organic"}
    assert client.get(BAG, params={"linkType": "gs1:certificationInfo", "lang": "de"}).json()["claims"][0]["claim_name"] in {
        "Fair trade",
        "Organic",
        "Deforestation-free",
    }
    problem = client.get("/api/v1/batches/0x" + "00" * 32, headers=german)
    assert problem.headers["content-type"].startswith("application/json") and "content-language" not in problem.headers
    client.cookies.clear()


def test_the_page_cache_keeps_one_page_per_language(client):
    """The same lot in two languages in a row, within one index version: each its own."""
    spanish = client.get(BAG, headers={"Accept-Language": "es"}).text
    german = client.get(BAG, headers={"Accept-Language": "de"}).text
    english = client.get(BAG).text
    assert "Sin retirada" in spanish and "Kein Rückruf" in german and "No recall" in english
    assert '<html lang="de">' in german and "Sin retirada" not in german


# -- (3) a real browser clicks the switcher -----------------------------------------------

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}


def test_a_shopper_switches_the_coffee_page_to_spanish_and_stays_in_it(browser, live_server, output_dir):
    context = browser.new_context(**PHONE, java_script_enabled=False, locale="en-GB")
    page = context.new_page()
    page.goto(live_server + BAG)
    assert page.locator("html").get_attribute("lang") == "en"
    switcher = page.get_by_role("navigation", name="Language")
    for link in switcher.get_by_role("link").all():  # every language a thumb can hit
        box = link.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44
    switcher.get_by_role("link", name="Español").click()
    page.wait_for_url("**?lang=es")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("#recall-state").inner_text().startswith("Sin retirada")
    assert page.get_by_role("heading", name="Recorrido").is_visible()
    current = page.get_by_role("navigation", name="Idioma").get_by_role("link", name="Español")
    assert current.get_attribute("aria-current") == "true"
    page.screenshot(path=output_dir / "coffee-bag-es.png", full_page=False)
    # A proof link opened next is Spanish too: the choice is remembered.
    page.locator('a[href^="/proof/"]').first.click()
    page.wait_for_url("**/proof/**")
    assert page.get_by_role("heading", level=1).inner_text() == "Qué registró esta transacción"
    context.close()


# -- (4) dates and numbers as each language writes them ------------------------------------

MONTHS = {
    "de": ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."],
    "fr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."],
}
NARROW_NBSP = "\u202f"


def test_dates_numbers_and_percentages_follow_the_language():
    moment = 1_795_356_180  # 2026-11-22 14:03 UTC
    expected = {
        "en": ("22 Nov 2026", "22 Nov 2026, 14:03 UTC", "12,000 kg", "82%", "2,000 pieces"),
        "es": ("22 nov 2026", "22 nov 2026, 14:03 UTC", "12.000 kg", "82\xa0%", "2.000 piezas"),
        "fr": ("22 nov. 2026", "22 nov. 2026, 14:03 UTC", f"12{NARROW_NBSP}000 kg", "82\xa0%", f"2{NARROW_NBSP}000 pièces"),
        "de": ("22. Nov. 2026", "22. Nov. 2026, 14:03 UTC", "12.000 kg", "82\xa0%", "2.000 Stück"),
    }
    for language, (day, time, amount, share, pieces) in expected.items():
        with use_language(language):
            assert (date_text(moment), time_text(moment), quantity_text(12_000, "KGM")) == (day, time, amount), language
            assert (percent(0.82), quantity_text(2_000, "H87")) == (share, pieces), language
            assert percent(0.004).startswith("<1") and date_text(None) == ""


@pytest.mark.parametrize("language", ["de", "fr"])
def test_the_farm_lot_page_writes_its_lot_size_and_date_in_the_language(client, language):
    view = client.get(ESPERANZA, headers=JSON).json()
    registered = datetime.fromtimestamp(view["registered_at"], UTC)
    month = MONTHS[language][registered.month - 1]
    day = f"{registered.day}. {month} {registered.year}" if language == "de" else f"{registered.day} {month} {registered.year}"
    size = "12.000 kg" if language == "de" else f"12{NARROW_NBSP}000 kg"
    text = visible_text(client.get(ESPERANZA, headers={"Accept-Language": language}).text)
    assert re.search(r"(Chargengröße|Taille du lot) " + re.escape(size), text), text[:2000]
    assert re.search(r"(Registriert|Enregistré) " + re.escape(day), text)
