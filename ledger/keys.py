"""Signing keys: encrypted keystores in the data directory, or a key from the environment.

A key is never printed, logged or written in clear. Keystores are eth-account's standard
encrypted JSON (scrypt), readable by any Ethereum wallet.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from ledger.errors import SigningKeyError

PRIVATE_KEY_ENV = "PROVENANCE_PRIVATE_KEY"
PASSWORD_ENV = "PROVENANCE_KEYSTORE_PASSWORD"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class KeystoreEntry:
    """A keystore file: its name and the address it unlocks."""

    name: str
    address: str
    path: Path


class Keystore:
    """The keystore directory (`<data dir>/keystore`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise SigningKeyError(f"account name {name!r} may use letters, digits, '.', '_' and '-' only")
        return self.root / f"{name}.json"

    def create(self, name: str, password: str) -> KeystoreEntry:
        """Create a new random key, stored encrypted under `name`."""
        path = self._path(name)
        if path.exists():
            raise SigningKeyError(f"an account named {name!r} already exists ({path}); choose another name")
        if len(password) < 8:
            raise SigningKeyError("the keystore password must have at least 8 characters")
        account = Account.create()
        encrypted = Account.encrypt(account.key, password)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created with owner-only permissions before anything is written into it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(encrypted, handle)
        return KeystoreEntry(name, account.address, path)

    def entries(self) -> list[KeystoreEntry]:
        """Every readable keystore, by name (see :meth:`damaged` for the others)."""
        found = []
        for path in sorted(self.root.glob("*.json")):
            try:
                address = read_keystore(path)["address"]
            except SigningKeyError:
                continue
            found.append(KeystoreEntry(path.stem, to_checksum_address("0x" + address.removeprefix("0x")), path))
        return found

    def damaged(self) -> list[str]:
        """A sentence for each keystore file that is not a valid keystore."""
        problems = []
        for path in sorted(self.root.glob("*.json")):
            try:
                read_keystore(path)
            except SigningKeyError as exc:
                problems.append(str(exc))
        return problems

    def unlock(self, name: str, password: str | None = None) -> LocalAccount:
        """The account of keystore `name`, decrypted with `password` (or $PROVENANCE_KEYSTORE_PASSWORD)."""
        path = self._path(name)
        if not path.exists():
            raise SigningKeyError(f"no account named {name!r} in {self.root}; create one with `provenance account new`")
        password = password if password is not None else os.environ.get(PASSWORD_ENV)
        if password is None:
            raise SigningKeyError(f"the keystore {name!r} needs its password: set {PASSWORD_ENV}")
        keystore = read_keystore(path)
        try:
            key = Account.decrypt(keystore, password)
        except ValueError as exc:
            # The structure was checked above, so a MAC mismatch means the password is wrong
            # (or the encrypted key itself was altered, which no check can tell apart).
            if "MAC mismatch" not in str(exc):
                raise damaged_keystore(path, str(exc)) from exc
            raise SigningKeyError(f"wrong password for the keystore {name!r} ({path}); check {PASSWORD_ENV}") from exc
        except (KeyError, TypeError, NotImplementedError) as exc:
            raise damaged_keystore(path, f"{type(exc).__name__}: {exc}") from exc
        # eth-account's `combomethod` decorator hides from_key's return type from mypy.
        account: LocalAccount = Account.from_key(key)
        if account.address.lower() != "0x" + str(keystore["address"]).lower().removeprefix("0x"):
            raise damaged_keystore(path, "its address is not the address of the key it holds")
        return account


def damaged_keystore(path: Path, why: str) -> SigningKeyError:
    """The error for a keystore file that cannot be a keystore, whatever the password."""
    return SigningKeyError(
        f"the keystore file {path} is damaged (not a valid keystore: {why}); restore it from a backup "
        "(no password can unlock a damaged file)"
    )


# The shape of a version 3 keystore (the only one eth-account writes) as hex-digit counts.
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]+$")
_KEYSTORE_HEX_FIELDS = (("ciphertext", 64), ("mac", 64))


def read_keystore(path: Path) -> dict[str, Any]:
    """The keystore in `path`, checked for the structure of a version 3 keystore, so that a
    truncated or overwritten file is reported as damaged, never as a wrong password."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SigningKeyError(f"cannot read the keystore file {path}: {exc.strerror}") from exc
    except ValueError as exc:  # not JSON, or not text at all
        raise damaged_keystore(path, f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise damaged_keystore(path, f"a JSON {type(data).__name__}, not an object")
    crypto = data.get("crypto", data.get("Crypto"))
    if data.get("version") != 3:
        raise damaged_keystore(path, f"version {data.get('version')!r}, expected 3")
    if (
        not isinstance(data.get("address"), str)
        or not _HEX.match(data["address"])
        or len(data["address"].removeprefix("0x")) != 40
    ):
        raise damaged_keystore(path, "no valid address")
    if not isinstance(crypto, dict):
        raise damaged_keystore(path, "no 'crypto' section")
    missing = [k for k in ("cipher", "cipherparams", "ciphertext", "kdf", "kdfparams", "mac") if k not in crypto]
    if missing:
        raise damaged_keystore(path, f"the 'crypto' section lacks {', '.join(missing)}")
    for field_name, digits in _KEYSTORE_HEX_FIELDS:
        value = crypto[field_name]
        if not isinstance(value, str) or not _HEX.match(value) or len(value.removeprefix("0x")) != digits:
            raise damaged_keystore(path, f"its {field_name} is not {digits} hex digits")
    return data


def account_from_env() -> LocalAccount | None:
    """The account of $PROVENANCE_PRIVATE_KEY, if set."""
    raw = os.environ.get(PRIVATE_KEY_ENV)
    if not raw:
        return None
    try:
        account: LocalAccount = Account.from_key(raw.strip())  # typed here: see the note in load
        return account
    except (ValueError, TypeError) as exc:
        # Never echo the value: it is a secret even when malformed.
        raise SigningKeyError(f"{PRIVATE_KEY_ENV} does not hold a valid 32-byte hex private key") from exc


class HandedOutNonces:
    """The nonces this data directory's `claim sign` handed out, per ledger and issuer
    (`<data dir>/signed-nonces.json`).

    The contract only knows the nonces already used or cancelled; signatures handed out and
    not yet submitted are known to nobody but their signer. Keeping them here lets the next
    signature take a fresh nonce (two in a row must not share one) and lets `claim
    invalidate-nonces` cancel every one handed out, including those signed with --nonce.
    The file is rewritten atomically (temporary file, fsync, rename) under a lock, so a crash
    or two signers at once never lose a record.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "signed-nonces.json"

    @staticmethod
    def _key(contract: str, issuer: str) -> str:
        return f"{to_checksum_address(contract)}/{to_checksum_address(issuer)}"

    def _read(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SigningKeyError(f"cannot read the record of signed nonces {self.path}: {exc}") from exc
        return {key: [int(n) for n in nonces] for key, nonces in data.items()} if isinstance(data, dict) else {}

    def handed_out(self, contract: str, issuer: str) -> list[int]:
        """Nonces `issuer` signed with for the ledger at `contract`, ascending."""
        return sorted(self._read().get(self._key(contract, issuer), []))

    def highest(self, contract: str, issuer: str) -> int | None:
        """The highest nonce handed out, or None when none was."""
        nonces = self.handed_out(contract, issuer)
        return nonces[-1] if nonces else None

    def add(self, contract: str, issuer: str, nonce: int) -> None:
        """Record that `issuer` handed out a signature with `nonce`."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            key = self._key(contract, issuer)
            data[key] = sorted(set(data.get(key, [])) | {int(nonce)})
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(temporary, "w") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself survives a crash
            finally:
                os.close(directory)
