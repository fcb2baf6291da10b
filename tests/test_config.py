"""Settings: validated at boot, each bad value named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocean_provider.config import load_provider_settings
from ocean_provider.errors import ConfigurationError
from ocean_provider.web.rate_limit_settings import DEFAULT_LIMITS, RateLimitSettings
from tests.conftest import PROVIDER_KEY

BASE = {"NETWORK_URL": "http://127.0.0.1:8545", "PROVIDER_PRIVATE_KEY": PROVIDER_KEY}


def test_single_values_use_chain_id() -> None:
    settings = load_provider_settings(BASE, config_path=None)
    assert settings.chain_ids == [8996]
    assert settings.operator_service_url is None
    assert settings.universal_key == PROVIDER_KEY


def test_per_chain_maps() -> None:
    settings = load_provider_settings(
        {
            "NETWORK_URL": '{"1": "http://a:8545", "8996": "http://b:8545"}',
            "PROVIDER_PRIVATE_KEY": f'{{"1": "{PROVIDER_KEY}", "8996": "{PROVIDER_KEY}"}}',
            "UNIVERSAL_PRIVATE_KEY": PROVIDER_KEY,
        },
        config_path=None,
    )
    assert settings.chain_ids == [1, 8996]


def test_config_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_text("[provider]\nrequest_timeout = 7\nlog_level = debug\n")
    settings = load_provider_settings({**BASE, "LOG_LEVEL": "warning"}, config_path=path)
    assert settings.request_timeout == 7 and settings.log_level == "WARNING"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"NETWORK_URL": ""}, "NETWORK_URL"),
        ({"NETWORK_URL": "ftp://x"}, "NETWORK_URL"),
        ({"PROVIDER_PRIVATE_KEY": "0x12"}, "PROVIDER_PRIVATE_KEY"),
        ({"PROVIDER_PRIVATE_KEY": f'{{"8996": "{PROVIDER_KEY}"}}'}, "be single or both json"),
        ({"OPERATOR_SERVICE_URL": "engine:8050"}, "OPERATOR_SERVICE_URL"),
        ({"REQUEST_TIMEOUT": "soon"}, "REQUEST_TIMEOUT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of text, json"),
        ({"ALLOW_UNSIGNED_STATUS": "maybe"}, "ALLOW_UNSIGNED_STATUS"),
        ({"STATUS_ACCESS": "public"}, "STATUS_ACCESS"),
        ({"NETWORK_URL": "{bad json"}, "NETWORK_URL"),
        ({"RATE_LIMIT_START": "ten a minute"}, "RATE_LIMIT_START must be limits such as"),
        ({"RATE_LIMIT_STATUS": "0/minute"}, "RATE_LIMIT_STATUS"),
        ({"RATE_LIMIT_RESULTS": "5/fortnight"}, "RATE_LIMIT_RESULTS"),
        ({"RATE_LIMIT_PUBLIC": "10/minute;x"}, "RATE_LIMIT_PUBLIC"),
        ({"RATE_LIMITS": "sometimes"}, "RATE_LIMITS must be true or false"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES must be at least 0"),
        ({"OPERATOR_SERVICES": "[{"}, "OPERATOR_SERVICES is not valid JSON"),
        ({"OPERATOR_SERVICES": "[]"}, "OPERATOR_SERVICES must be a non-empty JSON list"),
        ({"OPERATOR_SERVICES": '{"a": "http://a"}'}, "OPERATOR_SERVICES must be a non-empty"),
        ({"OPERATOR_SERVICES": '["http://a"]'}, r"OPERATOR_SERVICES\[0\] must be an object"),
        ({"OPERATOR_SERVICES": '[{"name": "a", "url": "http://a", "kye": "0x1"}]'}, r"\[0\]"),
        ({"OPERATOR_SERVICES": '[{"url": "http://a"}]'}, r"OPERATOR_SERVICES\[0\]\.name"),
        ({"OPERATOR_SERVICES": '[{"name": "A-1", "url": "http://a"}]'}, r"\[0\]\.name"),
        ({"OPERATOR_SERVICES": '[{"name": "a"}]'}, r"OPERATOR_SERVICES\[0\]\.url"),
        ({"OPERATOR_SERVICES": '[{"name": "a", "url": "a:8050"}]'}, r"\[0\]\.url must be"),
        ({"OPERATOR_SERVICES": '[{"name": "a", "url": "http://a", "key": "0x12"}]'}, r"\.key"),
        (
            {
                "OPERATOR_SERVICES": '[{"name": "a", "url": "http://a"}, {"name": "a", "url": "http://b"}]'
            },
            "names engine 'a' twice",
        ),
        (
            {
                "OPERATOR_SERVICES": '[{"name": "a", "url": "http://a"}, {"name": "b", "url": "http://a/"}]'
            },
            r"OPERATOR_SERVICES\[1\]\.url is the URL of engine 'a'",
        ),
    ],
)
def test_bad_settings_name_the_setting(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_provider_settings({**BASE, **changes}, config_path=None)


def test_rate_limits_default_on_per_class_and_off() -> None:
    limits = load_provider_settings(BASE, config_path=None).rate_limits
    assert limits == RateLimitSettings(DEFAULT_LIMITS, trusted_proxies=0)
    changed = load_provider_settings(
        {**BASE, "RATE_LIMIT_STATUS": "5/second;100/minute", "TRUSTED_PROXIES": "2"},
        config_path=None,
    ).rate_limits
    assert changed is not None and changed.trusted_proxies == 2
    assert changed.limits == {**DEFAULT_LIMITS, "status": "5/second;100/minute"}
    for off in ("off", "false", "0"):
        off_settings = load_provider_settings({**BASE, "RATE_LIMITS": off}, config_path=None)
        assert off_settings.rate_limits is None


def test_secrets_are_not_in_error_messages() -> None:
    bad_key = "0x" + "zz" * 32
    with pytest.raises(ConfigurationError) as caught:
        load_provider_settings({**BASE, "PROVIDER_PRIVATE_KEY": bad_key}, config_path=None)
    assert bad_key not in str(caught.value)


def test_fee_token_defaults_to_the_address_files_ocean(tmp_path: Path) -> None:
    address_file = tmp_path / "address.json"
    address_file.write_text(
        json.dumps(
            {
                "development": {"chainId": 8996, "Ocean": "0x" + "0a" * 20},
                "other": {"chainId": 5, "Ocean": "0x" + "0b" * 20},
            }
        )
    )
    settings = load_provider_settings({**BASE, "ADDRESS_FILE": str(address_file)}, None)
    assert settings.provider_fee_token[8996] == "0x" + "0a" * 20
    named = {**BASE, "ADDRESS_FILE": str(address_file), "PROVIDER_FEE_TOKEN": "0x" + "0c" * 20}
    assert load_provider_settings(named, None).provider_fee_token[8996] == "0x" + "0c" * 20
    with pytest.raises(ConfigurationError, match="ADDRESS_FILE"):
        load_provider_settings({**BASE, "ADDRESS_FILE": str(tmp_path / "none.json")}, None)


def test_several_engines_each_with_a_name_url_and_key() -> None:
    other_key = "0x" + "1" * 64
    engines = json.dumps(
        [
            {"name": "cpu", "url": "http://10.0.0.1:8050"},
            {"name": "gpu_2", "url": "https://gpu.example:8050", "key": other_key},
        ]
    )
    settings = load_provider_settings({**BASE, "OPERATOR_SERVICES": engines}, config_path=None)
    assert settings.operator_service_url is None
    (cpu, gpu) = settings.operator_services
    assert (cpu.name, cpu.url, cpu.key) == ("cpu", "http://10.0.0.1:8050", PROVIDER_KEY)
    assert (gpu.name, gpu.url, gpu.key) == ("gpu_2", "https://gpu.example:8050", other_key)
    assert other_key not in repr(settings.operator_services)
    assert load_provider_settings(BASE, config_path=None).operator_services == ()


def test_several_engines_replace_one_unless_the_one_comes_from_the_environment(
    tmp_path: Path,
) -> None:
    """``config.ini`` (and compose) set ``operator_service_url``: ``OPERATOR_SERVICES`` set
    beside it replaces it; only an ``OPERATOR_SERVICE_URL`` from the environment wins over
    ``config.ini``'s ``operator_services``, as every setting from the environment does."""
    several = '[{"name": "a", "url": "http://a:8050"}]'
    both = {**BASE, "OPERATOR_SERVICE_URL": "http://b", "OPERATOR_SERVICES": several}
    settings = load_provider_settings(both, config_path=None)
    assert settings.operator_service_url is None
    assert [e.name for e in settings.operator_services] == ["a"]
    ini = tmp_path / "config.ini"
    ini.write_text("[provider]\noperator_service_url = http://127.0.0.1:8050\n")
    settings = load_provider_settings({**BASE, "OPERATOR_SERVICES": several}, config_path=ini)
    assert (settings.operator_service_url, len(settings.operator_services)) == (None, 1)
    ini.write_text(f"[provider]\noperator_services = {several}\n")
    settings = load_provider_settings({**BASE, "OPERATOR_SERVICE_URL": "http://b"}, config_path=ini)
    assert (settings.operator_service_url, settings.operator_services) == ("http://b", ())


def test_logs_and_metrics_settings_default_to_text_and_open_metrics(tmp_path: Path) -> None:
    default = load_provider_settings(BASE, config_path=None).observability
    assert (default.log_format, default.metrics_token, default.metrics_dir) == ("text", None, None)
    path = tmp_path / "config.ini"
    path.write_text("[provider]\nlog_format = JSON\nmetrics_token = t0ken\n")
    environ = {**BASE, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}
    seen = load_provider_settings(environ, config_path=path).observability
    assert (seen.log_format, seen.metrics_token, seen.metrics_dir) == (
        "json",
        "t0ken",
        tmp_path / "m",
    )
    assert "t0ken" not in repr(seen)
