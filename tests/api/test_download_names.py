"""The names the auditor API gives its downloads, and the page's time formats."""

from __future__ import annotations

import pytest

from api.render import date_text, iso_time, time_text
from ledger.demo import DEMO_LOAF
from ledger.identifiers import batch_id, parse_gtin

LOAF = "0x" + batch_id(*DEMO_LOAF).hex()


@pytest.mark.parametrize(("path", "name"), [("epcis", "epcis-{gtin}-{lot}.jsonld"), ("fsma.csv", "fsma204-{gtin}-{lot}.csv")])
def test_an_export_downloads_as_a_file_named_after_the_lot(client, path, name):
    response = client.get(f"/api/v1/batches/{LOAF}/{path}")
    assert response.status_code == 200
    expected = name.format(gtin=parse_gtin(DEMO_LOAF[0]), lot=DEMO_LOAF[1])
    assert response.headers["content-disposition"] == f'attachment; filename="{expected}"'


def test_times_are_written_in_utc_and_never_is_blank():
    moment = 1_795_356_180  # 2026-11-22 14:03 UTC
    assert (date_text(moment), time_text(moment), iso_time(moment)) == (
        "22 Nov 2026",
        "22 Nov 2026, 14:03 UTC",
        "2026-11-22T14:03:00Z",
    )
    assert date_text(None) == time_text(0) == iso_time(None) == ""
