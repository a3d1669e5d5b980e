"""What a model call costs: a shipped list-price table, config overrides, exact arithmetic.

Prices are US dollars per one million tokens, OpenAI's standard-tier list prices as published
on https://openai.com/api/pricing at ``PRICES_AS_OF`` (short-context rates; batch, flex and
long-context rates differ). Override or extend them in the config file::

    # timestep.toml                       # or [tool.timestep.prices] in pyproject.toml
    [prices]
    "gpt-4.1-mini" = { input = 0.40, output = 1.60, cached_input = 0.10 }
    "ollama/llama3.2" = { input = 0, output = 0 }
    "my-finetune" = { input = 3, output = 12, cached_input = 0.3, cache_write_input = 3.75 }

A model with no price costs ``None`` (shown as ``?``), never a guess. Costs are computed with
``Decimal`` and stored as whole nano-dollars, so sums are exact in SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = [
    "DEFAULT_PRICES",
    "NANOS_PER_USD",
    "PRICES_AS_OF",
    "ModelPrice",
    "cost_nanousd",
    "nanos_to_usd",
    "price_for",
]

PRICES_AS_OF = "2026-07-01"
"""When ``DEFAULT_PRICES`` was copied from OpenAI's published standard-tier list prices."""

NANOS_PER_USD = 1_000_000_000
_PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    """USD per one million tokens.

    ``cached_input`` (cache reads) and ``cache_write_input`` default to the ``input`` price.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write_input: Decimal | None = None


def _price(
    input: str, cached_input: str | None, output: str, cache_write_input: str | None = None
) -> ModelPrice:
    return ModelPrice(
        input=Decimal(input),
        output=Decimal(output),
        cached_input=None if cached_input is None else Decimal(cached_input),
        cache_write_input=None if cache_write_input is None else Decimal(cache_write_input),
    )


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    # Standard tier, text tokens, short context: input, cached input, output (USD per 1M).
    # GPT-5.6 bills cache writes at 1.25x input; "pro" models have no cached rate.
    "gpt-5.6-sol": _price("5.00", "0.50", "30.00", cache_write_input="6.25"),
    # Terra and Luna: OpenAI cut them 20% and 80% on 2026-07-30 (developers.openai.com changelog),
    # per pydantic/genai-prices openai.yml (commit 2026-07-31, checked 2026-08-02) and the
    # OpenAI pricing page as mirrored by SergeevDmitry/llm-kit (observed 2026-08-05).
    "gpt-5.6-terra": _price("2.00", "0.20", "12.00", cache_write_input="2.50"),
    "gpt-5.6-luna": _price("0.20", "0.02", "1.20", cache_write_input="0.25"),
    "gpt-5.5": _price("5.00", "0.50", "30.00"),
    "gpt-5.5-pro": _price("30.00", None, "180.00"),
    "gpt-5.4": _price("2.50", "0.25", "15.00"),
    "gpt-5.4-mini": _price("0.75", "0.075", "4.50"),
    "gpt-5.4-nano": _price("0.20", "0.02", "1.25"),
    "gpt-5.4-pro": _price("30.00", None, "180.00"),
    "gpt-5.2": _price("1.75", "0.175", "14.00"),
    "gpt-5.2-pro": _price("21.00", None, "168.00"),
    "gpt-5.1": _price("1.25", "0.125", "10.00"),
    "gpt-5": _price("1.25", "0.125", "10.00"),
    "gpt-5-mini": _price("0.25", "0.025", "2.00"),
    "gpt-5-nano": _price("0.05", "0.005", "0.40"),
    "gpt-5-pro": _price("15.00", None, "120.00"),
    "gpt-4.1": _price("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": _price("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": _price("0.10", "0.025", "0.40"),
    "gpt-4o": _price("2.50", "1.25", "10.00"),
    "gpt-4o-mini": _price("0.15", "0.075", "0.60"),
    "o3": _price("2.00", "0.50", "8.00"),
    "o4-mini": _price("1.10", "0.275", "4.40"),
}

# Dated snapshots ("gpt-4.1-2025-04-14") cost what their family costs.
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_for(
    model: str | None, provider: str | None = None, prices: Mapping[str, ModelPrice] | None = None
) -> ModelPrice | None:
    """The price of ``model`` (``None`` when unknown).

    ``prices`` (config overrides) win over the defaults; within each table a provider-qualified
    name (``"ollama/llama3.2"``) wins over the bare name, and a dated snapshot falls back to its
    family name.
    """
    if not model:
        return None
    names = [model]
    if provider and not model.startswith(f"{provider}/"):
        names.insert(0, f"{provider}/{model}")
    names += [_SNAPSHOT.sub("", name) for name in names if _SNAPSHOT.search(name)]
    for table in (prices or {}, DEFAULT_PRICES):
        for name in names:
            found = table.get(name)
            if found is not None:
                return found
    return None


def cost_nanousd(
    price: ModelPrice | None,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> int | None:
    """The cost of one call in nano-dollars (``None`` without a price).

    ``input_tokens`` includes the cache reads (``cached_tokens``) and writes
    (``cache_write_tokens``), as the APIs report them; reasoning tokens are part of
    ``output_tokens`` and billed as output. Rounded half-even to a whole nano-dollar.
    """
    if price is None:
        return None
    cached = min(max(cached_tokens, 0), input_tokens)
    written = min(max(cache_write_tokens, 0), input_tokens - cached)
    usd = (
        Decimal(input_tokens - cached - written) * price.input
        + Decimal(cached) * _or(price.cached_input, price.input)
        + Decimal(written) * _or(price.cache_write_input, price.input)
        + Decimal(output_tokens) * price.output
    ) / _PER_MILLION
    return int((usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def nanos_to_usd(nanos: int | Decimal | None) -> Decimal | None:
    """Nano-dollars as an exact ``Decimal`` of dollars (``None`` stays ``None``)."""
    if nanos is None:
        return None
    return Decimal(nanos) / NANOS_PER_USD
