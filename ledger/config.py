"""Settings: where the chain is, which key signs, where data lives.

Each setting comes from, in rising priority: its default, a TOML config file
(`$PROVENANCE_CONFIG`, else `<data dir>/config.toml` if present), a `PROVENANCE_<NAME>`
environment variable, then explicit overrides (command-line options). The defaults
describe the local chain that `make run` starts, so a real network (a testnet, an L2, a
consortium chain) is only other settings, never other code.

Why not pydantic-settings: every release of it needs python-dotenv >= 0.21, and
eth-brownie 1.22.2, which shares this environment, pins python-dotenv 0.16.0.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, field_validator

from ledger.errors import ConfigurationError

ENV_PREFIX = "PROVENANCE_"


class Settings(BaseModel):
    """The client's settings. Build with :meth:`Settings.from_env`."""

    data_dir: Path = Field(
        default=Path(".provenance"),
        description="Where the local chain's state, the deployment record and documents live.",
    )
    rpc_url: str = Field(
        default="http://127.0.0.1:8546",
        description="JSON-RPC endpoint of the chain. The local chain listens here too.",
    )
    chain_id: int = Field(default=31337, description="Expected chain id; a mismatch is refused.")
    admin_transfer_delay: int = Field(
        default=2 * 24 * 3600,
        description="Seconds a new admin must wait before accepting the role (deploy only).",
    )
    contract_address: str | None = Field(
        default=None, description="Ledger contract address; default: the local deployment record."
    )
    deploy_block: int | None = Field(default=None, description="Block the ledger was deployed in.")
    account: str | None = Field(
        default=None,
        description="Who signs: a keystore name (`provenance account new`), or `node:N` for the local "
        "chain's unlocked account N. Default: $PROVENANCE_PRIVATE_KEY if set, else node:0 on the local chain.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public address of the resolver: Digital Link URLs and QR codes point here.",
    )
    database_url: str | None = Field(default=None, description="Index database; default: SQLite in the data directory.")
    confirmations: int = Field(default=0, ge=0, description="Blocks a transaction must be buried under.")
    publish_to: list[str] = Field(
        default_factory=list,
        description="Ledger servers a writer pushes the public documents it anchors to, right after each "
        "write (comma-separated URLs in PROVENANCE_PUBLISH_TO); what cannot be pushed is queued.",
    )
    document_sources: list[str] = Field(
        default_factory=list,
        description="Where servers and indexers fetch documents they lack: other ledger servers or IPFS "
        "gateways (comma-separated URLs in PROVENANCE_DOCUMENT_SOURCES); each is checked against its hash.",
    )

    network: str | None = Field(
        default=None,
        description="A named network from the config file's [networks.NAME] tables (PROVENANCE_NETWORK, "
        "--network): its settings apply over the file's top-level ones. Default: none, the local chain.",
    )
    finality: Literal["latest", "safe", "finalized"] = Field(
        default="latest",
        description="Which head the index follows: `latest` minus `confirmations`, or the node's "
        "`safe`/`finalized` block (proof-of-stake chains and L2s that report them).",
    )
    max_fee_per_gas: float | None = Field(
        default=None, gt=0, description="Cap on maxFeePerGas in gwei: a write that needs more is refused."
    )
    max_priority_fee_per_gas: float | None = Field(default=None, ge=0, description="Cap on the priority fee (tip) in gwei.")
    log_block_range: int | None = Field(
        default=None, ge=1, description="Most blocks one eth_getLogs may span (the provider's cap)."
    )
    log_result_limit: int | None = Field(
        default=None, ge=1, description="Most logs one eth_getLogs may return (the provider's cap)."
    )
    requests_per_second: float | None = Field(
        default=None, gt=0, description="Most JSON-RPC requests a second sent to the provider."
    )
    send_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Signed transactions a bulk import sends in one JSON-RPC batch (the local chain mines each "
        "batch as one block). Default: 16 on the local chain, 1 (each alone) on a network.",
    )
    rpc_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for one JSON-RPC reply.")
    explorer_url: str | None = Field(
        default=None,
        description="A block explorer of the network (e.g. https://sepolia.etherscan.io): proof pages link "
        "each transaction to `{explorer_url}/tx/{hash}`. Default: none (the local chain has no explorer).",
    )
    brand_name: str = Field(
        default="Provenance ledger",
        min_length=1,
        max_length=80,
        description="The maker's name in the shopper's pages' header and titles.",
    )
    brand_logo: Path | None = Field(
        default=None,
        description="The maker's logo (a local SVG or PNG file, at most 64 KiB) shown beside the brand name; "
        "the app serves it at /brand-logo. Default: none.",
    )
    featured_products: list[str] = Field(
        default_factory=list,
        description="GTINs whose latest lots the landing page lists (comma-separated in "
        "PROVENANCE_FEATURED_PRODUCTS). Default: none, so test and half-finished lots never show there.",
    )

    feedback_database_url: str | None = Field(
        default=None,
        description="Shoppers' feedback log (not derivable from the chain, so never the index database); "
        "default: SQLite feedback.sqlite in the data directory.",
    )
    feedback_anchor_account: str | None = Field(
        default=None,
        description="Who anchors the feedback log's head on chain, and whose anchors `feedback verify` "
        "trusts: keystore name, node:N or 0x address (verify only). Default: the `account` setting's signer.",
    )
    feedback_anchor_minutes: float = Field(
        default=60, ge=0, description="The server anchors the feedback head at least this often while it moved (0: never)."
    )
    feedback_anchor_entries: int = Field(
        default=25, ge=1, description="...or as soon as this many entries were added since the last anchor."
    )
    feedback_min_fill_seconds: float = Field(
        default=3, ge=0, description="A feedback form sent back sooner than this after it was served is refused (bots)."
    )
    feedback_posts_per_hour: int = Field(default=6, ge=1, description="Feedback posts one client may send an hour (per worker).")

    @field_validator("publish_to", "document_sources", mode="before")
    @classmethod
    def _url_list(cls, value: object) -> object:
        """A comma-separated string (environment variable) or a list (TOML), as URLs."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for url in value:
                parsed = urlparse(str(url))
                if parsed.scheme not in ("http", "https") or not parsed.hostname:
                    raise ValueError(f"{url!r} is not an http(s) URL")
            return [str(url).rstrip("/") for url in value]
        return value

    @field_validator("featured_products", mode="before")
    @classmethod
    def _gtin_list(cls, value: object) -> object:
        """A comma-separated string (environment variable) or a list (TOML) of GTINs."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and not all(str(v).isdigit() and 8 <= len(str(v)) <= 14 for v in value):
            raise ValueError(f"featured_products must be GTINs (8 to 14 digits), not {value!r}")
        return value

    @field_validator("brand_logo")
    @classmethod
    def _logo_is_svg_or_png(cls, value: Path | None) -> Path | None:
        """An .svg or .png file (the app serves it with that type); read and checked when the app starts."""
        if value is not None and value.suffix.lower() not in (".svg", ".png"):
            raise ValueError(f"brand_logo must be an .svg or .png file, not {str(value)!r}")
        return value

    @field_validator("explorer_url")
    @classmethod
    def _explorer_url_is_http(cls, value: str | None) -> str | None:
        """An http(s) URL without its trailing slash (pages append `/tx/{hash}`)."""
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"explorer_url must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url_is_http(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"rpc_url must look like http://host:port, not {value!r}")
        return value

    @property
    def rpc_host(self) -> str:
        """Host part of the RPC URL."""
        return urlparse(self.rpc_url).hostname or "127.0.0.1"

    @property
    def rpc_port(self) -> int:
        """Port part of the RPC URL (80/443 when absent)."""
        parsed = urlparse(self.rpc_url)
        return parsed.port or (443 if parsed.scheme == "https" else 80)

    @property
    def config_file(self) -> Path:
        """The TOML config file these settings are read from (or would be): $PROVENANCE_CONFIG,
        else `<data dir>/config.toml`."""
        return Path(os.environ.get(ENV_PREFIX + "CONFIG") or self.data_dir / "config.toml")

    @property
    def chain_dir(self) -> Path:
        """Directory of the local chain's persisted state and pid file."""
        return self.data_dir / "chain"

    @property
    def deployment_file(self) -> Path:
        """JSON record of the deployed ledger contract."""
        return self.data_dir / "deployment.json"

    def deployment_record(self, chain_id: int) -> Path:
        """The deployment record of chain `chain_id` written by `provenance deploy`
        (`deployments/<chain id>.json`); the local chain keeps `deployment.json`."""
        return self.data_dir / "deployments" / f"{chain_id}.json"

    @property
    def keystore_dir(self) -> Path:
        """Encrypted keystores."""
        return self.data_dir / "keystore"

    @property
    def documents_dir(self) -> Path:
        """Content-addressed document store."""
        return self.data_dir / "documents"

    @property
    def is_local_chain(self) -> bool:
        """Whether the settings point at a loopback chain with the local chain id."""
        return self.rpc_host in ("127.0.0.1", "localhost") and self.chain_id == 31337

    def as_env(self) -> dict[str, str]:
        """These settings as `PROVENANCE_*` variables, for a child process (e.g. the web
        server's workers) to read back with :meth:`from_env`."""
        return {
            ENV_PREFIX + name.upper(): ",".join(value) if isinstance(value, list) else str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the config file, `PROVENANCE_*` environment variables, then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        data_dir = overrides.get("data_dir") or env.get(ENV_PREFIX + "DATA_DIR") or ".provenance"
        config_path = Path(env.get(ENV_PREFIX + "CONFIG") or Path(str(data_dir)) / "config.toml")
        networks: dict[str, dict[str, object]] = {}
        if config_path.exists() or ENV_PREFIX + "CONFIG" in env:
            settings, networks = _read_config_file(config_path)
            values.update(settings)
        network = overrides.get("network") or env.get(ENV_PREFIX + "NETWORK") or values.get("network")
        if network:
            if network not in networks:
                known = ", ".join(sorted(networks)) or "none"
                raise ConfigurationError(
                    f"no network named {network!r} in {config_path} (networks defined there: {known}); "
                    f"add a [networks.{network}] table"
                )
            values.update(networks[str(network)])
            values["network"] = network
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            raise ConfigurationError(f"invalid settings: {exc}") from exc


def _read_config_file(path: Path) -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    """The settings in a TOML file (top-level keys named like the settings), and its
    [networks.NAME] tables by name."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(f"config file {path} does not exist (named by {ENV_PREFIX}CONFIG)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from exc
    # [claim_types.NAME] tables are what each claim type means to shoppers (ledger.claim_types).
    unknown = sorted(set(data) - set(Settings.model_fields) - {"networks", "claim_types"})
    if unknown:
        raise ConfigurationError(f"config file {path} has unknown settings: {', '.join(unknown)}")
    networks = data.pop("networks", {})
    data.pop("claim_types", None)
    if not isinstance(networks, dict) or not all(isinstance(v, dict) for v in networks.values()):
        raise ConfigurationError(f"config file {path}: `networks` must be tables like [networks.sepolia]")
    for name, table in networks.items():
        wrong = sorted(set(table) - NETWORK_SETTINGS)
        if wrong:
            raise ConfigurationError(
                f"config file {path}: [networks.{name}] has settings a network cannot set: {', '.join(wrong)} "
                f"(allowed: {', '.join(sorted(NETWORK_SETTINGS))})"
            )
    return data, networks


#: What a [networks.NAME] table may set: where the chain is and how to treat its provider.
NETWORK_SETTINGS = {
    "rpc_url", "chain_id", "confirmations", "finality", "max_fee_per_gas", "max_priority_fee_per_gas",
    "log_block_range", "log_result_limit", "requests_per_second", "rpc_timeout", "contract_address", "send_batch_size",
    "deploy_block", "account", "database_url", "public_base_url", "admin_transfer_delay", "explorer_url",
}  # fmt: skip
