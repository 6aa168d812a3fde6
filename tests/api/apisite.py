"""What the web tests share: where artefacts go, and the hostile strings put on chain."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Screenshots and other artefacts a person may want to look at after the run.
OUTPUT = ROOT / "reports" / "tests"

# Strings an attacker could put on chain (organisation name, place) or in metadata.
HOSTILE_NAME = '"><img src=x onerror=alert(1)>'
HOSTILE_PLACE = "<script>alert('place')</script>"
HOSTILE_PRODUCT = '<script>alert("product")</script>'
HOSTILE_LOT = "<script>"  # GS1 CSET 82 allows < and >
#: Outside every demo organisation's GS1 Company Prefix, licensed to the hostile supplier alone.
HOSTILE_GTIN = "09506000199900"
