"""The explainer under each claim type on the product page: what the claim means (in the
page's language, English when it has no text in it), the scheme's official site, and who
accredited each certifier that vouches for it, since when, with the proof of that
accreditation. The texts and sites come from `ledger.claim_types` (packaged, overridden by
the admin in the config file); accreditations come from the index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, select

from api.i18n import current_language, who_name
from ledger.claim_types import ClaimType, claim_types
from ledger.config import Settings
from ledger.errors import ConfigurationError
from ledger.indexer import schema
from ledger.queries import ReadModel

log = logging.getLogger("api")


def configured_claim_types(settings: Settings) -> dict[str, ClaimType]:
    """The claim types' texts and sites as the config file sets them; the packaged ones
    (logged) when its [claim_types] tables are wrong, so a typo never takes pages down."""
    try:
        return claim_types(settings.config_file)
    except ConfigurationError as exc:
        log.warning("claim type texts from the config file ignored: %s", exc)
        return claim_types(None)


def accreditation_grants(model: ReadModel, certifiers: set[str], claims: set[str]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(certifier, claim type) -> each time it was accredited for that claim type, oldest
    first: since when, until when (None: still), by whom (a page's name) and the grant's
    transaction (its proof page)."""
    if not certifiers or not claims:
        return {}
    acc, ct, e = schema.accreditations, schema.claim_types, schema.events
    query = (
        select(acc.c.certifier, ct.c.claim, acc.c.granted_event, acc.c.granted_at, acc.c.revoked_at)
        .join(ct, ct.c.role == acc.c.role)
        .where(and_(acc.c.certifier.in_(certifiers), ct.c.claim.in_(claims)))
        .order_by(acc.c.granted_at)
    )
    with model.store.engine.connect() as conn:
        grants = conn.execute(query).all()
        txs = {g.granted_event.split(":")[0] for g in grants}
        events = conn.execute(select(e.c.tx_hash, e.c.log_index, e.c.args).where(e.c.tx_hash.in_(txs))).all() if txs else []
    # RoleGranted names who granted it (its `sender`): the admin, for an accreditation.
    senders = {f"{tx}:{index}": json.loads(args).get("sender") for tx, index, args in events}
    names = model.who({s for s in senders.values() if isinstance(s, str)})
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g in grants:
        sender = senders.get(g.granted_event)
        found.setdefault((g.certifier, g.claim), []).append(
            {
                "since": g.granted_at,
                "until": g.revoked_at,
                "by": who_name(names.get(sender, sender)) if isinstance(sender, str) else None,  # "the ledger's admin" translated
                "tx_hash": g.granted_event.split(":")[0],
            }
        )
    return found


def _certifiers(group: dict[str, Any], grants: Mapping[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The certifiers behind a claim type's certificates (never the supplier's own
    statement), each with its accreditations for that claim type."""
    seen: dict[str, dict[str, Any]] = {}
    for c in group["claims"]:
        issuer = c.get("issuer")
        if c["status"] == "self_declared" or not issuer or issuer in seen:
            continue
        seen[issuer] = {
            "issuer": issuer,
            "name": c.get("issuer_name") or issuer,
            "accreditations": grants.get((issuer, group["claim"]), []),
        }
    return list(seen.values())


def with_explainers(model: ReadModel, groups: list[dict[str, Any]], types: Mapping[str, ClaimType]) -> list[dict[str, Any]]:
    """Each claim group with its `explainer`: text in the page's language (None when the
    claim type has none), the scheme's site, and its certifiers with their accreditations."""
    language = current_language()
    issuers = {c["issuer"] for g in groups for c in g["claims"] if c["status"] != "self_declared" and c.get("issuer")}
    grants = accreditation_grants(model, issuers, {g["claim"] for g in groups})
    for group in groups:
        described = types.get(group["claim"])
        group["explainer"] = {
            "text": described.explainer_in(language) if described else None,
            "scheme_url": described.scheme_url if described else None,
            "certifiers": _certifiers(group, grants),
        }
    return groups
