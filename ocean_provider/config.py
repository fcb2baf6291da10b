"""Settings: ``config.ini`` plus environment variables, read once and validated at boot.

This is the only module that reads ``os.environ``. Environment variables use
the reference Provider's names (``NETWORK_URL``, ``PROVIDER_PRIVATE_KEY``,
``OPERATOR_SERVICE_URL``, ...) and win over ``config.ini``, whose keys are the
same names in lower case, in the ``[provider]`` and ``[engine]`` sections.
Values that may differ per chain are a single value or a JSON map
``{"<chainId>": value}``.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account

from ocean_provider.auth.addresses import ADDRESS
from ocean_provider.auth.status_access import StatusAccess
from ocean_provider.errors import ConfigurationError
from ocean_provider.web.rate_limit_settings import (
    DEFAULT_LIMITS,
    ROUTE_CLASSES,
    RateLimitSettings,
    check_limit,
    setting_name,
)

DEFAULT_CONFIG = Path("config.ini")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# An engine's name in OPERATOR_SERVICES: it prefixes the ids of its jobs (``<name>-<id>``)
ENGINE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
ENGINE_FIELDS = frozenset({"name", "url", "key"})


@dataclass(frozen=True)
class OceanContracts:
    """One chain's entry of an ``address.json``: what the Provider reads there."""

    ocean: str | None
    factory: str | None  # ERC721Factory: the NFTs it created are the assets
    start_block: int


@dataclass(frozen=True)
class EngineEndpoint:
    """One engine of ``OPERATOR_SERVICES``: its name, URL and the key that signs to it."""

    name: str
    url: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class Observability:
    """Logs and metrics, the same settings for both apps (README "Metrics and logs")."""

    log_format: str = "text"  # LOG_FORMAT: text (humans) or json (one object a line)
    metrics_token: str | None = field(default=None, repr=False)  # METRICS_TOKEN: bearer
    metrics_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR: set by serve/engine


def _observability(src: _Source) -> Observability:
    log_format = (src.get("LOG_FORMAT", "text") or "text").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    metrics_dir = src.get("PROMETHEUS_MULTIPROC_DIR")
    return Observability(
        log_format=log_format,
        metrics_token=src.get("METRICS_TOKEN"),
        metrics_dir=Path(metrics_dir) if metrics_dir else None,
    )


@dataclass(frozen=True)
class ProviderSettings:
    """What the Provider service needs; see README for each setting."""

    chain_rpc: Mapping[int, str]
    provider_keys: Mapping[int, str]
    universal_key: str
    operator_service_url: str | None
    aquarius_url: str | None
    provider_url: str | None
    storage_path: Path
    redis_connection: str | None
    request_timeout: float
    operator_connect_timeout: float
    log_level: str
    status_access: StatusAccess
    max_request_bytes: int
    provider_fee_token: Mapping[int, str] = field(default_factory=dict)
    order_confirmations: int = 0
    order_wait: float = 3.0
    contracts: Mapping[int, OceanContracts] = field(default_factory=dict)
    authorized_decrypters: tuple[str, ...] = ()
    ddo_source: str = "chain"  # or "aquarius"
    ipfs_gateway: str = "https://ipfs.io"
    arweave_gateway: str = "https://arweave.net"
    max_checksum_bytes: int = 5 << 20
    allow_private_downloads: bool = False
    operator_services: tuple[EngineEndpoint, ...] = ()  # several engines, else the one URL
    observability: Observability = field(default_factory=Observability)
    rate_limits: RateLimitSettings | None = None  # None: RATE_LIMITS=off
    # derived once here, never per request
    chain_ids: list[int] = field(init=False)
    provider_addresses: Mapping[int, str] = field(init=False)
    universal_address: str = field(init=False)

    def __post_init__(self) -> None:
        derived = {
            "chain_ids": sorted(self.chain_rpc),
            "provider_addresses": {c: _address_of(k) for c, k in self.provider_keys.items()},
            "universal_address": _address_of(self.universal_key),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, at construction


def _address_of(key: str) -> str:
    return str(Account.from_key(key).address)


class _Source:
    """Looks a setting up in the environment first, then in one config.ini section."""

    def __init__(self, environ: Mapping[str, str], section: Mapping[str, str]) -> None:
        self._environ = environ
        self._section = section

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name)
        if value is None:
            value = self._section.get(name.lower())
        value = value.strip() if value is not None else None
        return value if value else default

    def origin(self, name: str) -> str | None:
        """Where a setting comes from: "environment", "config.ini", or None when unset."""
        if name in self._environ:
            return "environment" if self._environ[name].strip() else None
        return "config.ini" if (self._section.get(name.lower()) or "").strip() else None

    def require(self, name: str, hint: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigurationError(f"{name} is not set: {hint}")
        return value

    def number(self, name: str, default: float, minimum: float = 0) -> float:
        text = self.get(name, str(default))
        try:
            value = float(text or default)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {text!r}") from None
        if value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        text = (self.get(name) or str(default)).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {text!r}")


def read_config_file(path: Path | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if path is not None:
        if not path.is_file():
            raise ConfigurationError(f"config file {path} does not exist")
        parser.read(path)
    return parser


def source_for(
    section: str, environ: Mapping[str, str] | None, config_path: Path | None
) -> _Source:
    parser = read_config_file(config_path)
    values = dict(parser[section]) if parser.has_section(section) else {}
    return _Source(os.environ if environ is None else environ, values)


def per_chain(name: str, text: str, default_chain: int | None) -> dict[int, str]:
    """Parse a single value or a JSON map keyed by chain id."""
    if text.startswith("{"):
        try:
            raw = json.loads(text)
            return {int(key): str(value) for key, value in raw.items()}
        except (ValueError, AttributeError):
            raise ConfigurationError(
                f"{name} is not a valid JSON map of chainId to value"
            ) from None
    if default_chain is None:
        raise ConfigurationError(f"{name} must be a JSON map keyed by chainId")
    return {default_chain: text}


def _check_url(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ConfigurationError(f"{name} must be an http(s) URL")
    return value


def _check_key(name: str, key: str) -> str:
    try:
        Account.from_key(key)
    except Exception:
        raise ConfigurationError(f"{name} is not a valid private key") from None
    return key


def load_provider_settings(
    environ: Mapping[str, str] | None = None, config_path: Path | None = DEFAULT_CONFIG
) -> ProviderSettings:
    """Read and validate the Provider's settings; raise ConfigurationError naming the setting."""
    src = source_for(
        "provider", environ, config_path if config_path and config_path.exists() else None
    )
    chain_id = int(src.number("CHAIN_ID", 8996, minimum=1))
    network = src.require("NETWORK_URL", "set the chain RPC URL, or a JSON map per chainId")
    rpc = per_chain("NETWORK_URL", network, chain_id)
    for url in rpc.values():
        _check_url("NETWORK_URL", url)
    key_text = src.require("PROVIDER_PRIVATE_KEY", "set the provider's private key (hex)")
    if key_text.startswith("{") != network.startswith("{"):
        raise ConfigurationError(
            "NETWORK_URL and PROVIDER_PRIVATE_KEY must both be single or both json encoded."
        )
    keys = {
        c: _check_key("PROVIDER_PRIVATE_KEY", k)
        for c, k in per_chain("PROVIDER_PRIVATE_KEY", key_text, chain_id).items()
    }
    if set(keys) != set(rpc):
        raise ConfigurationError(
            "PROVIDER_PRIVATE_KEY must have a key for every chain of NETWORK_URL"
        )
    universal = src.get("UNIVERSAL_PRIVATE_KEY")
    if universal is None and len(keys) != 1:
        raise ConfigurationError(
            "Must define UNIVERSAL_PRIVATE_KEY or a single PROVIDER_PRIVATE_KEY."
        )
    universal = _check_key("UNIVERSAL_PRIVATE_KEY", universal or next(iter(keys.values())))
    level = (src.get("LOG_LEVEL", "INFO") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    fee_token = src.get("PROVIDER_FEE_TOKEN")
    fee_tokens = per_chain("PROVIDER_FEE_TOKEN", fee_token, chain_id) if fee_token else {}
    address_file = src.get("ADDRESS_FILE")
    contracts = read_address_file(Path(address_file)) if address_file else {}
    oceans = {chain: c.ocean for chain, c in contracts.items() if c.ocean}
    fee_tokens = {**oceans, **fee_tokens}
    ddo_source = (src.get("DDO_SOURCE", "chain") or "chain").lower()
    if ddo_source not in ("chain", "aquarius"):
        raise ConfigurationError("DDO_SOURCE must be chain or aquarius")
    if ddo_source == "aquarius" and not src.get("AQUARIUS_URL"):
        raise ConfigurationError("DDO_SOURCE=aquarius needs AQUARIUS_URL")
    engines = _operator_services(src, universal)
    engine_url = None if engines else src.get("OPERATOR_SERVICE_URL")
    return ProviderSettings(
        chain_rpc=rpc,
        provider_keys=keys,
        universal_key=universal,
        operator_service_url=_check_url("OPERATOR_SERVICE_URL", engine_url),
        aquarius_url=_check_url("AQUARIUS_URL", src.get("AQUARIUS_URL")),
        provider_url=_check_url("PROVIDER_URL", src.get("PROVIDER_URL")),
        storage_path=Path(src.get("STORAGE_PATH", "var/ocean-provider.db") or ""),
        redis_connection=src.get("REDIS_CONNECTION"),
        request_timeout=src.number("REQUEST_TIMEOUT", 10, minimum=0.1),
        operator_connect_timeout=src.number("OPERATOR_CONNECT_TIMEOUT", 3, minimum=0.1),
        log_level=level,
        status_access=_status_access(src),
        max_request_bytes=int(src.number("MAX_REQUEST_BYTES", 1 << 20, minimum=1024)),
        provider_fee_token=fee_tokens,
        order_confirmations=int(src.number("BLOCK_CONFIRMATIONS", 0)),
        order_wait=src.number("ORDER_WAIT", 3.0),
        contracts=contracts,
        authorized_decrypters=_addresses(src, "AUTHORIZED_DECRYPTERS"),
        ddo_source=ddo_source,
        ipfs_gateway=_check_url("IPFS_GATEWAY", src.get("IPFS_GATEWAY", "https://ipfs.io")) or "",
        arweave_gateway=_check_url(
            "ARWEAVE_GATEWAY", src.get("ARWEAVE_GATEWAY", "https://arweave.net")
        )
        or "",
        max_checksum_bytes=int(src.number("MAX_CHECKSUM_LENGTH", 5 << 20)),
        allow_private_downloads=src.flag("ALLOW_PRIVATE_DOWNLOADS"),
        operator_services=engines,
        observability=_observability(src),
        rate_limits=_rate_limits(src),
    )


def _operator_services(src: _Source, default_key: str) -> tuple[EngineEndpoint, ...]:
    """``OPERATOR_SERVICES``: a JSON list of ``{"name", "url", "key"?}``, one per engine (the
    key defaults to the one ``OPERATOR_SERVICE_URL`` uses). Set, it replaces
    ``OPERATOR_SERVICE_URL``, unless that comes from the environment and this from config.ini
    (the environment wins, as for every setting)."""
    text = src.get("OPERATOR_SERVICES")
    several, single = src.origin("OPERATOR_SERVICES"), src.origin("OPERATOR_SERVICE_URL")
    if text is None or (single == "environment" and several == "config.ini"):
        return ()
    entries = parse_json_setting("OPERATOR_SERVICES", text)
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(
            'OPERATOR_SERVICES must be a non-empty JSON list of {"name", "url", "key"?}'
        )
    engines = [
        _engine_endpoint(f"OPERATOR_SERVICES[{i}]", e, default_key) for i, e in enumerate(entries)
    ]
    for i, engine in enumerate(engines):
        for earlier in engines[:i]:
            if engine.name == earlier.name:
                raise ConfigurationError(f"OPERATOR_SERVICES names engine {engine.name!r} twice")
            if engine.url.rstrip("/") == earlier.url.rstrip("/"):
                raise ConfigurationError(
                    f"OPERATOR_SERVICES[{i}].url is the URL of engine {earlier.name!r} again"
                )
    return tuple(engines)


def _engine_endpoint(where: str, entry: Any, default_key: str) -> EngineEndpoint:
    if not isinstance(entry, dict) or not set(entry) <= ENGINE_FIELDS:
        raise ConfigurationError(f"{where} must be an object with name, url and optionally key")
    name, url, key = entry.get("name"), entry.get("url"), entry.get("key", default_key)
    if not isinstance(name, str) or not ENGINE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{where}.name must be 1-32 lower-case letters, digits or _, starting with a letter"
        )
    if not isinstance(url, str) or not isinstance(key, str):
        raise ConfigurationError(f"{where}.url and {where}.key must be strings")
    _check_url(f"{where}.url", url)
    return EngineEndpoint(name=name, url=url, key=_check_key(f"{where}.key", key))


def read_address_file(path: Path) -> dict[int, OceanContracts]:
    """Each chain's Ocean token, ERC721Factory and start block in an ``address.json``
    (ocean-contracts' format: ``{"<network>": {"chainId", "Ocean", "ERC721Factory",
    "startBlock", ...}}``)."""
    try:
        networks = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigurationError(f"ADDRESS_FILE {path} is not a readable JSON file") from None
    contracts: dict[int, OceanContracts] = {}
    for entry in networks.values() if isinstance(networks, dict) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("chainId"), int):
            continue
        ocean, factory = entry.get("Ocean"), entry.get("ERC721Factory")
        start = entry.get("startBlock")
        contracts[entry["chainId"]] = OceanContracts(
            ocean=ocean if isinstance(ocean, str) else None,
            factory=factory if isinstance(factory, str) else None,
            start_block=start if isinstance(start, int) and start >= 0 else 0,
        )
    return contracts


def _addresses(src: _Source, name: str) -> tuple[str, ...]:
    """A JSON list of addresses (empty when unset)."""
    text = src.get(name)
    if not text:
        return ()
    value = parse_json_setting(name, text)
    if not isinstance(value, list) or not all(
        isinstance(a, str) and ADDRESS.fullmatch(a) for a in value
    ):
        raise ConfigurationError(f"{name} must be a JSON list of addresses")
    return tuple(value)


def _rate_limits(src: _Source) -> RateLimitSettings | None:
    """``RATE_LIMITS`` (on by default), ``RATE_LIMIT_<CLASS>`` each, ``TRUSTED_PROXIES``."""
    if not src.flag("RATE_LIMITS", True):
        return None
    limits = {
        c: check_limit(setting_name(c), src.get(setting_name(c)) or DEFAULT_LIMITS[c])
        for c in ROUTE_CLASSES
    }
    return RateLimitSettings(limits, trusted_proxies=int(src.number("TRUSTED_PROXIES", 0)))


def _status_access(src: _Source) -> StatusAccess:
    """``STATUS_ACCESS``; the older ``ALLOW_UNSIGNED_STATUS=true`` means ``open``."""
    text = src.get("STATUS_ACCESS")
    if text is None:
        return StatusAccess.OPEN if src.flag("ALLOW_UNSIGNED_STATUS") else StatusAccess.JOB_ID
    try:
        return StatusAccess(text.lower())
    except ValueError:
        choices = ", ".join(level.value for level in StatusAccess)
        raise ConfigurationError(f"STATUS_ACCESS must be one of {choices}") from None


def parse_json_setting(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigurationError(f"{name} is not valid JSON") from None


@dataclass(frozen=True)
class EngineSettings:
    """What the local engine needs; environments and runtimes come from a JSON file."""

    storage_dir: Path
    allowed_providers: tuple[str, ...]
    environments: tuple[dict[str, Any], ...]
    runtimes: tuple[dict[str, Any], ...]
    allow_private_downloads: bool
    max_input_bytes: int
    provision_seconds: float
    publish_seconds: float
    log_level: str
    observability: Observability = field(default_factory=Observability)


def load_engine_settings(
    environ: Mapping[str, str] | None = None, config_path: Path | None = DEFAULT_CONFIG
) -> EngineSettings:
    """Read and validate the engine's settings; raise ConfigurationError naming the setting."""
    src = source_for(
        "engine", environ, config_path if config_path and config_path.exists() else None
    )
    providers = parse_json_setting(
        "ALLOWED_PROVIDERS",
        src.require("ALLOWED_PROVIDERS", "set a JSON list of the provider addresses to serve"),
    )
    if not isinstance(providers, list) or not providers:
        raise ConfigurationError("ALLOWED_PROVIDERS must be a non-empty JSON list of addresses")
    try:
        from eth_utils.address import to_checksum_address

        allowed = tuple(str(to_checksum_address(p)) for p in providers)
    except (ValueError, TypeError):
        raise ConfigurationError("ALLOWED_PROVIDERS holds an invalid address") from None
    envs_text = src.get("ENGINE_ENVIRONMENTS")
    if envs_text is None:
        path = Path(src.require("ENVIRONMENTS_FILE", "set the engine environments JSON file"))
        if not path.is_file():
            raise ConfigurationError(f"ENVIRONMENTS_FILE {path} does not exist")
        envs_text = path.read_text()
    document = parse_json_setting("ENVIRONMENTS_FILE", envs_text)
    if not isinstance(document, dict) or not isinstance(document.get("environments"), list):
        raise ConfigurationError('ENVIRONMENTS_FILE must hold {"environments": [...], ...}')
    level = (src.get("LOG_LEVEL", "INFO") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return EngineSettings(
        storage_dir=Path(src.get("ENGINE_STORAGE", "var/engine") or ""),
        allowed_providers=allowed,
        environments=tuple(document["environments"]),
        runtimes=tuple(document.get("runtimes", [])),
        allow_private_downloads=src.flag("ALLOW_PRIVATE_DOWNLOADS"),
        max_input_bytes=int(src.number("MAX_INPUT_BYTES", 1 << 30, minimum=1)),
        provision_seconds=src.number("PROVISION_SECONDS", 600, minimum=1),
        publish_seconds=src.number("PUBLISH_SECONDS", 300, minimum=1),
        log_level=level,
        observability=_observability(src),
    )
