"""Test harness for the Switchyard autobahn-python interop suite."""

from __future__ import annotations

import os
import uuid

import pytest

TRANSPORTS = ("websocket", "rawsocket")
SERIALIZERS = ("json", "msgpack", "cbor")
_SHORT = {"websocket": "ws", "rawsocket": "rs", "unix": "unix"}

# every (transport, serializer) autobahn-python can do against the router
COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]


def combo_id(combo) -> str:
    t, s = combo
    return f"{_SHORT[t]}-{s}"


def partner(combo):
    """A different (transport, serializer) for the other end of a test, so that
    every parametrized case also crosses transports and serializers."""
    t, s = combo
    other_t = "rawsocket" if t == "websocket" else "websocket"
    other_s = SERIALIZERS[(SERIALIZERS.index(s) + 1) % len(SERIALIZERS)]
    return other_t, other_s


all_combos = pytest.mark.parametrize("combo", COMBOS, ids=[combo_id(c) for c in COMBOS])

# a smaller spread for the more expensive tests: each serializer once, both transports
SPREAD = [("websocket", "json"), ("rawsocket", "msgpack"), ("websocket", "cbor")]
spread_combos = pytest.mark.parametrize("combo", SPREAD, ids=[combo_id(c) for c in SPREAD])


def uniq(prefix: str) -> str:
    """A fresh URI under ``prefix`` so that tests sharing a router never collide."""
    return f"{prefix}.t{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------
# observations: facts the lead should see (e.g. which error URI the router
# chose where the spec leaves room); printed in the terminal summary.

OBSERVATIONS: list[tuple[str, str]] = []


def observe(text: str) -> None:
    current = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
    test = current.rpartition("::")[2]
    print(f"[observation] {test}: {text}")
    OBSERVATIONS.append((test, text))
