"""Settings, validated once at start: environment `V6_*`, `.env`, `.streamlit/secrets.toml`.

A bad value fails at start with a message that names the setting and what it accepts
(`load_settings` turns pydantic's ValidationError into `SettingsError`).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

SECRETS_PATH = Path(".streamlit/secrets.toml")

DEFAULT_BETAS = {"SPY": 1.0, "QQQ": 1.15, "IWM": 1.2, "AAPL": 1.25, "TSLA": 2.0}


class SettingsError(ValueError):
    """A setting is missing or has a value it cannot take."""


class _SecretsTomlSource(PydanticBaseSettingsSource):
    """Reads the `[v6]` table (or top-level `v6_*` keys) of Streamlit's secrets.toml."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path.is_file():
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
                raise SettingsError(f"{path.resolve()}: cannot be read as TOML ({exc}); fix or remove the file") from None
            table = raw.get("v6", {})
            if not isinstance(table, dict):
                raise SettingsError(f"{path.resolve()}: `v6` must be a table ([v6] with key = value lines), "
                                    f"got {type(table).__name__}")
            self._data = {k.lower(): v for k, v in table.items()}
            for key, value in raw.items():
                if key.lower().startswith("v6_"):
                    self._data[key.lower()[3:]] = value

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="V6_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        env_nested_delimiter="__",
        # inf passes every "> 0" bound and NaN fails no comparison: a limit of inf or a beta of
        # NaN would switch a check off silently. No setting takes either.
        allow_inf_nan=False,
    )

    # --- gateway
    mode: Literal["sim", "ib"] = "sim"
    ib_host: str = "127.0.0.1"
    ib_port: int = Field(4002, ge=1, le=65535)
    client_id: int = Field(17, ge=0)
    account: str = ""                                  # empty: the single managed account
    sim_seed: int = 7
    sim_tick_rate: float = Field(3.0, gt=0, le=100)    # ticks per second per contract
    sim_time_speed: float = Field(1.0, gt=0)
    sim_fresh: bool = False                            # V6_SIM_FRESH=1: start the paper account from the seeded book
    connect_timeout: float = Field(4.0, gt=0)

    # --- reconnect and circuit breaker
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown: float = Field(30.0, gt=0)

    # --- data
    lake_path: Path = Path("data/lake")
    # V6_LAKE_URI: `s3://bucket/prefix` (any S3-compatible store) or a folder; empty: lake_path.
    # Empty S3 settings fall back to the standard AWS environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
    lake_uri: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: SecretStr = SecretStr("")
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_allow_http: bool | None = None                  # default: only when the endpoint is http://
    s3_path_style: bool | None = None                  # default: path-style when an endpoint is set
    snapshot_interval: float = Field(60.0, gt=0)       # seconds between Delta snapshots
    risk_free_rate: float = Field(0.04, ge=-0.05, le=0.25)
    stale_after: float = Field(10.0, gt=0)             # a quote older than this is stale (s)
    refresh_interval: float = Field(2.0, ge=0.5, le=300)  # UI refresh (s)
    betas: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_BETAS))
    watchlist: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM", "AAPL", "TSLA"])
    # market-data lines the option chain may hold (IB's usual total is 100, held legs included)
    chain_max_lines: int = Field(90, ge=2, le=10_000)

    # --- trading
    live_trading_enabled: bool = False                 # live accounts stay locked unless True
    max_order_quantity: float = Field(50, gt=0)
    max_order_notional: float = Field(250_000, gt=0)
    max_delta_change: float = Field(500, gt=0)         # share-equivalents
    allowed_symbols: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM", "AAPL", "TSLA"])

    # --- portfolio limits: a breach is an alert on the Overview (orders have their own checks)
    limit_beta_delta: float = Field(1_000, gt=0)       # |SPY beta-weighted delta|, SPY shares
    limit_vega: float = Field(5_000, gt=0)             # |portfolio vega|, $ per vol point
    limit_margin_use_pct: float = Field(50, gt=0, le=100)  # initial margin / net liquidation
    limit_daily_loss: float = Field(10_000, gt=0)      # daily P&L below minus this, $

    # --- LLM (any OpenAI-compatible chat-completions endpoint); empty base_url: rules only
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_temperature: float = Field(0.0, ge=0, le=2)
    llm_timeout: float = Field(30.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=5)

    # --- UI
    password: SecretStr = SecretStr("")               # optional gate; empty: no gate
    time_zone: str = ""                                # IANA name for shown times; empty: the machine's

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        if v.strip():
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(v.strip())
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {v!r} (use an IANA name such as America/New_York)") from exc
        return v.strip()

    @field_validator("lake_path", mode="before")
    @classmethod
    def _lake_path_given(cls, v: Any) -> Any:
        if v is None or not str(v).strip():
            raise ValueError("must not be empty (an empty path would put the lake in the "
                             "server's working directory)")
        return v

    @field_validator("betas")
    @classmethod
    def _upper_beta_symbols(cls, v: dict[str, float]) -> dict[str, float]:
        return {k.strip().upper(): beta for k, beta in v.items()}

    @field_validator("allowed_symbols", "watchlist")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [s.strip().upper() for s in v if s.strip()]

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        if self.llm_base_url and not self.llm_model:
            raise ValueError("llm_model is required when llm_base_url is set")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, dotenv_settings,
                _SecretsTomlSource(settings_cls, SECRETS_PATH), file_secret_settings)

    def lake_root(self):
        """The lake's root: a local Path, or an S3Root carrying the storage options (never shown)."""
        from v6core.lake.storage import is_s3_uri, lake_root, s3_options

        where = self.lake_uri.strip() or self.lake_path
        if not is_s3_uri(where):
            return lake_root(where)
        return lake_root(where, s3_options(
            self.s3_endpoint_url, self.s3_region, self.s3_access_key_id.get_secret_value(),
            self.s3_secret_access_key.get_secret_value(), allow_http=self.s3_allow_http,
            path_style=self.s3_path_style))

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def _describe(err: dict[str, Any]) -> str:
    name = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    ctx = err.get("ctx") or {}
    accepted = ctx.get("expected")
    msg = f"V6_{name.upper()}: {str(err.get('msg')).removeprefix('Value error, ')}"
    if accepted:
        msg += f" (accepted: {accepted})"
    if "input" in err and not isinstance(err["input"], dict) and "key" not in name and "password" not in name:
        msg += f"; got {err['input']!r}"
    return msg


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, `.env` and secrets; raises SettingsError naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError("invalid settings: " + "; ".join(_describe(e) for e in exc.errors())) from None
    except PydanticSettingsError as exc:
        raise SettingsError(_describe_parse_error(exc)) from None


_SOURCE_NAMES = {"EnvSettingsSource": "the environment", "DotEnvSettingsSource": "the .env file"}


def _describe_parse_error(exc: Exception) -> str:
    """pydantic-settings could not even parse a value (a list or mapping that is not JSON)."""
    found = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
    if not found:
        return f"invalid settings: {exc}"
    name, source = found.groups()
    example = {"betas": '{"SPY": 1.0, "QQQ": 1.15}'}.get(name, '["SPY", "QQQ"]')
    return (f"invalid settings: V6_{name.upper()} in {_SOURCE_NAMES.get(source, source)} is not "
            f"valid JSON; write it as JSON, e.g. {example}")
