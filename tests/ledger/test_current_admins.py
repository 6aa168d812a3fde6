"""A revoked admin keeps its name on pages ("the ledger's admin" did that), not its powers:
feedback replies and hides ask for the admins holding the role now (review of issue 13)."""

from __future__ import annotations

from pathlib import Path

from ledger.documents import DocumentStore
from ledger.indexer import schema
from ledger.indexer.store import IndexStore
from ledger.queries import DEFAULT_ADMIN_ROLE, ReadModel

FORMER, CURRENT = "0x" + "1" * 40, "0x" + "2" * 40


def test_a_revoked_admin_is_named_but_no_longer_counted_as_admin(tmp_path: Path) -> None:
    store = IndexStore.open(f"sqlite:///{tmp_path / 'index.sqlite'}", tmp_path)
    # The rows the indexer writes for a grant, its revocation (the admin role handed over), and a new grant.
    with store.engine.begin() as conn:
        conn.execute(
            schema.accreditations.insert(),
            [
                {"certifier": FORMER, "role": DEFAULT_ADMIN_ROLE, "granted_event": "0xaa:0", "granted_at": 1, "revoked_at": 50},
                {
                    "certifier": CURRENT,
                    "role": DEFAULT_ADMIN_ROLE,
                    "granted_event": "0xbb:0",
                    "granted_at": 50,
                    "revoked_at": None,
                },
            ],
        )
    model = ReadModel(store, DocumentStore(tmp_path / "documents"))
    assert model.admins() == {FORMER, CURRENT}
    assert model.admins(current=True) == {CURRENT}
    assert model.who({FORMER}) == {FORMER: "the ledger's admin"}
    store.dispose()
