"""Hostile text through the CLI, on a real anvil: look-alike organisation names (other
scripts, invisible characters) and text from the chain that tries to be rich markup,
control codes or extra output lines. Each test performs the attack of the security review."""

from __future__ import annotations

import json

import pytest

GTIN = "09506000134352"
FARM, COOP, CERTIFIER = "node:1", "node:2", "node:3"
CERTIFIER_NAME = "EthicCert Labs"
CYRILLIC_E = "\u0415thicCert Labs"  # starts with CYRILLIC CAPITAL LETTER IE
HOSTILE_REASON = "Salmonella [/] found\n[red]forged line[/red]"
SHOWN_REASON = "Salmonella [/] found\\n[red]forged line[/red]"  # literal, one line


@pytest.fixture(scope="module", autouse=True)
def organisations(local_ledger):
    """The farm is a supplier holding GS1 Company Prefix 9506000; the certifier's name is
    the one impostors imitate."""
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import LicenceScope
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    accounts = conn.w3.eth.accounts
    admin = LedgerWriter(conn, NodeAccountSigner(accounts[0]))
    for index, name in [(1, "Finca La Esperanza"), (2, "Cooperativa Alto Huila"), (3, CERTIFIER_NAME)]:
        admin.register_actor(accounts[index], name, "CO")
    admin.grant_supplier(accounts[1])
    admin.grant_licence(accounts[1], LicenceScope.company_prefix("9506000"))
    return accounts


def _writer(local_ledger, index: int):
    """A writer signing as node account `index`, for what a hostile party sends around the CLI."""
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    return LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[index]))


def _request_directly(local_ledger, index: int, name: str) -> None:
    """An organisation asks for `name` straight through the contract (its own client would
    refuse a look-alike): the contract takes any request; only the approval checks names."""
    farm = _writer(local_ledger, index)
    farm.send(farm.contract.functions.requestProfileUpdate(name, b"CO", b"\0" * 32))


# --------------------------------------------------------------------------- A. look-alike names


def test_approve_without_name_shows_the_request_escaped_and_sends_nothing(cli, local_ledger):
    _request_directly(local_ledger, 1, CYRILLIC_E)
    block = local_ledger.block_number()
    code, _, err = cli("actor", "approve", FARM)
    assert code == 1
    assert "'\\u0415thicCert Labs' (U+0415 CYRILLIC CAPITAL LETTER IE)" in err
    assert '--name "\\u0415thicCert Labs"' in err
    assert local_ledger.block_number() == block


def test_approve_refuses_a_look_alike_even_when_repeated_unless_allowed(cli, local_ledger):
    _request_directly(local_ledger, 1, CYRILLIC_E)
    block = local_ledger.block_number()
    # What the admin believes it read: plain Latin letters.
    code, _, err = cli("actor", "approve", FARM, "--name", CERTIFIER_NAME)
    assert code == 1 and "not 'EthicCert Labs'" in err and "nothing was approved" in err
    # The exact request (escaped form accepted), but it imitates the certifier.
    code, _, err = cli("actor", "approve", FARM, "--name", "\\u0415thicCert Labs")
    assert code == 1 and err.count("\n") == 1
    assert "looks like 'EthicCert Labs', the name of EthicCert Labs (0x" in err
    assert local_ledger.block_number() == block
    code, out, err = cli("actor", "approve", FARM, "--name", CYRILLIC_E, "--allow-similar", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == CYRILLIC_E


@pytest.mark.parametrize(
    "impostor",
    [
        "EthicCert Lab\u0455",
        "\uff25thicCert Labs",
        "Ethic\u200bCert Labs",
        "EthicCert\u00a0Labs",
        "E\u0301thicCert Labs",
        "EthicCert Labs\u2122",
    ],
)
def test_rename_to_a_look_alike_is_refused_before_sending(cli, local_ledger, impostor):
    block = local_ledger.block_number()
    code, _, err = cli("actor", "rename", "--account", FARM, "--name", impostor)
    assert code == 1 and err.count("\n") == 1
    assert "the name of EthicCert Labs (0x" in err and "U+" in err
    assert local_ledger.block_number() == block


def test_register_a_look_alike_needs_allow_similar(cli, local_ledger):
    block = local_ledger.block_number()
    code, _, err = cli("actor", "register", "node:5", "--name", "EthicCert Lab\u0455", "--country", "GB")
    assert code == 1 and "looks like 'EthicCert Labs'" in err and "U+0455 CYRILLIC SMALL LETTER DZE" in err
    assert local_ledger.block_number() == block
    code, out, err = cli("actor", "register", "node:5", "--name", "EthicCert Lab\u0455", "--country", "GB", "--allow-similar")
    assert code == 0, err
    code, out, _ = cli("actor", "show", "node:5")
    assert "EthicCert Lab\\u0455" in out and "CYRILLIC SMALL LETTER DZE" in out


@pytest.mark.parametrize("bad", ["Finca\u202eSAS", "Finca\nSAS", "Finca\x1b[2JSAS", "Finca\u2066SAS\u2069"])
def test_control_and_bidi_characters_in_names_are_refused(cli, local_ledger, bad):
    block = local_ledger.block_number()
    for args in (
        ("actor", "rename", "--account", FARM, "--name", bad),
        ("actor", "register", "node:6", "--name", bad, "--country", "CO", "--allow-similar"),
    ):
        code, _, err = cli(*args)
        assert code == 1 and "not allowed in names" in err, err
    assert local_ledger.block_number() == block


def test_honest_rename_is_approved_with_its_name(cli, local_ledger):
    code, out, err = cli("actor", "rename", "--account", COOP, "--name", "Cooperativa Alto Huila Ltda")
    assert code == 0, err
    assert '--name "Cooperativa Alto Huila Ltda"' in out
    code, out, err = cli("actor", "approve", COOP, "--name", "Cooperativa Alto Huila Ltda")
    assert code == 0, err
    assert "is now 'Cooperativa Alto Huila Ltda' (CO)" in out


# --------------------------------------------------------------------------- B. chain text is text


def _register(cli, lot: str) -> None:
    code, _, err = cli(
        "batch",
        "register",
        "--account",
        FARM,
        "--gtin",
        GTIN,
        "--lot",
        lot,
        "--quantity",
        "100",
        "--unit",
        "KGM",
        "--product",
        "Green [bold]coffee[/]",
    )
    assert code == 0, err


def test_recall_reason_with_markup_and_a_newline_prints_literally(cli, local_ledger):
    _register(cli, "H-1")
    block = local_ledger.block_number()
    code, out, err = cli("batch", "recall", "--account", FARM, GTIN, "H-1", "--reason", HOSTILE_REASON)
    assert code == 0, err  # it was sent: the output must not crash afterwards
    assert local_ledger.block_number() == block + 1
    assert SHOWN_REASON in out and out.count("\n") == 1  # no forged second line
    code, out, err = cli("batch", "show", GTIN, "H-1")
    assert code == 0, err
    assert f"Recall      {SHOWN_REASON}" in out
    assert "Green [bold]coffee[/]" in out
    assert "\nforged" not in out
    code, out, _ = cli("batch", "show", GTIN, "H-1", "--json")
    assert json.loads(out)["recall_reason"] == HOSTILE_REASON  # JSON keeps the exact text
    code, out, err = cli("batch", "review-recall", GTIN, "H-1", "--uphold", "--reason", "[red]confirmed[/red]\x1b[2J")
    assert code == 0, err
    assert "[red]confirmed[/red]\\x1b[2J" in out
    # The auditor's view of the same history: no raw escape reaches the terminal.
    assert cli("index")[0] == 0
    for command in (("history", GTIN, "H-1"), ("audit", GTIN, "H-1")):
        code, out, err = cli(*command)
        assert "Traceback" not in err and "\x1b" not in out and "\u202e" not in out, (command, out)
    code, out, _ = cli("history", GTIN, "H-1")
    assert "[red]confirmed[/red]" in out and "\\x1b[2J" in out, out


def test_void_reason_markup_is_not_swallowed(cli):
    _register(cli, "H-2")
    code, out, err = cli("batch", "void", GTIN, "H-2", "--reason", "[red]VOID[/red] :warning:")
    assert code == 0, err
    assert "[red]VOID[/red] :warning:" in out
    code, out, _ = cli("batch", "show", GTIN, "H-2")
    assert "[red]VOID[/red] :warning: (by " in out


def test_organisation_named_with_markup_is_printed_literally_everywhere(cli, local_ledger):
    name = "Finca [/] [red]Roja[/red]"
    code, out, err = cli("actor", "register", "node:7", "--name", name, "--country", "CO")
    assert code == 0, err
    assert f"Registered {name} (0x" in out
    code, _, err = cli("actor", "register", "node:7", "--name", "Other", "--country", "CO")  # error line via fail()
    assert code == 1 and f"{name} (0x" in err and "already registered" in err
    code, out, err = cli("licence", "grant", "node:7", "--prefix", "4012345")
    assert code == 0 and f"to {name} (0x" in out, err
    code, out, err = cli("licence", "list")
    assert code == 0 and name in out, err
    code, out, err = cli("role", "grant", "supplier", "node:7")
    assert code == 0 and name in out, err


def test_a_unit_of_markup_put_on_chain_does_not_break_batch_show(cli, local_ledger):
    from ledger.identifiers import lot_bytes

    farm = _writer(local_ledger, 1)
    farm.send(farm.contract.functions.registerBatch((int(GTIN), lot_bytes("H-3"), 5, b"[/]", b"\0" * 32)))
    code, out, err = cli("batch", "show", GTIN, "H-3")
    assert code == 0, err
    assert "5 of 5 [/] left" in out


def test_a_name_hiding_markup_is_shown_as_typed_before_approval(cli, local_ledger):
    # Rendered as markup, "Ethic[b][/b]Cert Labs" displayed as "EthicCert Labs".
    _request_directly(local_ledger, 2, "Ethic[b][/b]Cert Labs")
    code, out, _ = cli("actor", "show", COOP)
    assert "rename to 'Ethic[b][/b]Cert Labs' (CO)" in out
    code, _, err = cli("actor", "approve", COOP)
    assert code == 1 and "asks to be renamed 'Ethic[b][/b]Cert Labs' (CO)" in err
