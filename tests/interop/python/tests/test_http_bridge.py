"""The HTTP bridge (POST /publish, POST /call) with autobahn-python on the WAMP side:
events and results exactly as sent, each error's status and body, API tokens and
static tickets against anonymous requests, a realm's limits, the workbench realm with
a graph user's token, and schemathesis checking both endpoints against the router's
own OpenAPI description (GET /openapi.json, docs/openapi.json).

Requests go through http.client in a thread, so the test's event loop keeps serving
the autobahn sessions meanwhile."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, RegisterOptions, SubscribeOptions

from harness import SPREAD, combo_id, spread_combos, uniq
from harness.client import Inbox, connect
from harness.workbench import SERVICE_TICKETS

DETAILS = SubscribeOptions(details=True)
ARGS = [1, "two", 3.25, None, True, [1, [2]], {"a": {"b": None}}, "é€"]
KWARGS = {"name": "x", "n": -7, "list": [1, 2, 3], "obj": {"k": [False]}}


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def _post(host, port, path, body: bytes, headers: dict) -> Reply:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


async def post(router, path, body=None, *, raw: bytes | None = None, bearer: str | None = None,
               basic: tuple[str, str] | None = None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    data = raw if raw is not None else json.dumps(body).encode()
    return await asyncio.to_thread(_post, router.ws_host, router.ws_port, path, data, headers)


def error(uri: str, message: str, **extra) -> dict:
    return dict({"error": uri, "message": message}, **extra)


# ------------------------------------------------------------------------- publish


@spread_combos
async def test_a_publication_reaches_an_autobahn_subscriber_exactly(router, combo):
    sub = await connect(router, *combo)
    topic = uniq("com.example.bridge.news")
    inbox = Inbox()
    await sub.subscribe(inbox, topic, options=DETAILS)
    r = await post(router, "/publish", {"topic": topic, "args": ARGS, "kwargs": KWARGS})
    assert (r.status, r.headers["content-type"]) == (200, "application/json")
    publication = r.json()["publication"]
    (ev,) = await inbox.wait_for(1)
    assert (list(ev.args), ev.kwargs) == (ARGS, KWARGS)
    assert ev.details.publication == publication
    assert ev.details.publisher is None and ev.details.publisher_authid is None


async def test_the_readme_curl_example(router):
    """`curl -d '{"topic":"t","args":[1]}' http://…/publish` on the embedded default."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl on this machine")
    sub = await connect(router, "websocket", "json")
    inbox = Inbox()
    await sub.subscribe(inbox, "t")
    url = f"http://{router.ws_host}:{router.ws_port}/publish"
    out = await asyncio.to_thread(subprocess.run, [curl, "-s", "-d", '{"topic":"t","args":[1]}', url],
                                  capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and set(json.loads(out.stdout)) == {"publication"}, out
    (ev,) = await inbox.wait_for(1)
    assert (ev.args, ev.kwargs) == ((1,), {})


async def test_a_token_is_disclosed_by_its_role_and_anonymous_only_on_request(auth_router):
    # interop-config.toml: alice (ticket alice-secret) has role `user`, which discloses
    # its publishers; bob (role `reader`) may not publish; anonymous may do everything.
    r = auth_router
    sub = await connect(r, "rawsocket", "cbor")
    topic = uniq("com.example.bridge.who")
    inbox = Inbox()
    await sub.subscribe(inbox, topic, options=DETAILS)

    assert (await post(r, "/publish", {"topic": topic, "args": ["bearer"]}, bearer="alice-secret")).status == 200
    assert (await post(r, "/publish", {"topic": topic, "args": ["basic"]}, basic=("alice", "alice-secret"))).status == 200
    assert (await post(r, "/publish", {"topic": topic, "args": ["anonymous"]})).status == 200
    assert (await post(r, "/publish", {"topic": topic, "args": ["asked"], "options": {"disclose_me": True}})).status == 200
    got = await inbox.wait_for(4)
    who = [(e.args[0], e.details.publisher_authid, e.details.publisher_authrole) for e in got]
    assert who[:3] == [("bearer", "alice", "user"), ("basic", "alice", "user"), ("anonymous", None, None)]
    asked = got[3].details
    assert (asked.publisher_authid, asked.publisher_authrole) == (f"anonymous-{asked.publisher}", "anonymous")

    refused = await post(r, "/publish", {"topic": "com.example.private.x"}, basic=("bob", "bob-secret"))
    assert (refused.status, refused.json()) == (403, error(
        "wamp.error.not_authorized", "session is not authorized to publish 'com.example.private.x'"))
    wrong = await post(r, "/publish", {"topic": topic}, bearer="guess")
    assert (wrong.status, wrong.headers["www-authenticate"], wrong.json()) == (
        401, "Bearer", error("wamp.error.authentication_failed", "invalid ticket"))
    assert len(inbox) == 4


# ---------------------------------------------------------------------------- call


@spread_combos
async def test_a_call_returns_an_autobahn_callees_result(router, combo):
    callee = await connect(router, *combo)
    echo, one, none = uniq("com.example.bridge.echo"), uniq("com.example.bridge.one"), uniq("com.example.bridge.none")
    seen = []

    def echo_fn(*args, **kwargs):
        details = kwargs.pop("details")
        seen.append((args, kwargs, details.caller, details.caller_authid))
        return CallResult(*reversed(args), count=len(args), **kwargs)

    await callee.register(echo_fn, echo, options=RegisterOptions(details_arg="details"))
    await callee.register(lambda x: x * 2, one)
    await callee.register(lambda: None, none)
    r = await post(router, "/call", {"procedure": echo, "args": ARGS, "kwargs": KWARGS})
    assert (r.status, r.json()) == (200, {"args": list(reversed(ARGS)), "kwargs": dict(KWARGS, count=len(ARGS))})
    assert seen == [(tuple(ARGS), KWARGS, None, None)]
    assert (await post(router, "/call", {"procedure": one, "args": [21]})).json() == {"args": [42], "kwargs": {}}
    # autobahn yields a function's None as Arguments [null]: passed on as it came.
    assert (await post(router, "/call", {"procedure": none})).json() == {"args": [None], "kwargs": {}}
    # Disclosure on request: the callee sees a bridge session's id and anonymous authid.
    await post(router, "/call", {"procedure": echo, "options": {"disclose_me": True}})
    _, _, caller, authid = seen[-1]
    assert isinstance(caller, int) and authid == f"anonymous-{caller}"


async def test_errors_map_to_statuses(router):
    callee = await connect(router, "websocket", "msgpack")
    base = uniq("com.example.bridge.err")

    def not_found(*args, **kwargs):
        raise ApplicationError("com.example.error.not_found", "no such user", 7, user="bob")

    def crash(*args):
        raise ValueError("boom")

    def add(a, b):
        if not all(isinstance(x, int) for x in (a, b)):
            raise ApplicationError(ApplicationError.INVALID_ARGUMENT, "a and b must be integers")
        return a + b

    async def slow():
        await asyncio.sleep(5)

    await callee.register(not_found, f"{base}.app")
    await callee.register(crash, f"{base}.crash")
    await callee.register(add, f"{base}.add")
    await callee.register(slow, f"{base}.slow")

    def call(proc, **body):
        return post(router, "/call", dict(body, procedure=proc))

    r = await call(f"{base}.app", args=[1])
    assert (r.status, r.json()) == (502, error("com.example.error.not_found", "no such user",
                                               args=["no such user", 7], kwargs={"user": "bob"}))
    # autobahn answers an exception that is not an ApplicationError (a TypeError for
    # arguments the function cannot take among them) with wamp.error.runtime_error.
    r = await call(f"{base}.crash", args=[1])
    assert (r.status, r.json()["error"]) == (502, "wamp.error.runtime_error")
    r = await call(f"{base}.add", args=[1, "2"])
    assert (r.status, r.json()) == (400, error("wamp.error.invalid_argument", "a and b must be integers",
                                               args=["a and b must be integers"]))
    assert (await call(f"{base}.add", args=[1, 2])).json() == {"args": [3], "kwargs": {}}
    r = await call(f"{base}.slow", options={"timeout": 100})
    assert (r.status, r.json()) == (504, error("wamp.error.timeout", "the call was not answered within its timeout",
                                               args=["the call was not answered within its timeout"]))
    r = await call(f"{base}.nobody")
    assert (r.status, r.json()) == (404, error("wamp.error.no_such_procedure", f"no procedure registered under '{base}.nobody'"))
    r = await call("wamp.session.add_testament", args=["t", [], {}])
    assert (r.status, r.json()["error"]) == (501, "wamp.error.feature_not_supported")

    r = await post(router, "/publish", raw=b'{"topic": "t", "args": [1,')
    assert (r.status, r.json()["error"]) == (400, "wamp.error.invalid_argument")
    r = await post(router, "/publish", {"topic": "Not.A.Uri"})
    assert (r.status, r.json()) == (400, error("wamp.error.invalid_uri", "invalid URI 'Not.A.Uri'"))
    r = await post(router, "/publish", {"topic": "t", "args": {"not": "a list"}})
    assert (r.status, r.json()) == (400, error("wamp.error.invalid_argument", "args must be a list"))
    r = await post(router, "/publish?realm=nowhere", {"topic": "t"})
    assert (r.status, r.json()) == (404, error("wamp.error.no_such_realm", "no such realm 'nowhere'"))
    r = await post(router, "/publish", {"topic": "t"}, bearer="x")
    assert (r.status, r.json()["error"]) == (401, "wamp.error.no_auth_method")

    # The callee leaves while a call waits for it.
    pending = asyncio.ensure_future(call(f"{base}.slow"))
    await asyncio.sleep(0.3)
    callee.abort_transport()
    r = await pending
    assert (r.status, r.json()["error"]) == (504, "wamp.error.canceled")


LIMITS_CONFIG = """
[limits]
max_message_size = 4096
max_hello_size = 4096

[[realms]]
name = "realm1"
anonymous = "anonymous"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
[[realms.principals]]
authid = "svc"
ticket = "svc-secret"
role = "anonymous"
[realms.limits]
publications_per_second = 1
publication_burst = 2
"""


async def test_size_and_rate_limits(new_router):
    r = new_router("bridge-limits", config=LIMITS_CONFIG)
    big = {"topic": "com.example.big", "args": ["x" * 5000]}
    size = len(json.dumps(big))
    got = await post(r, "/publish", big)
    assert (got.status, got.json()) == (413, error("wamp.error.payload_size_exceeded",
                                                   f"the body of {size} bytes exceeds the limit of 4096 bytes"))
    # Anonymous requests share their address's bucket; a principal has its own.
    statuses = [(await post(r, "/publish", {"topic": "com.example.rate"})).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await post(r, "/publish", {"topic": "com.example.rate"})
    assert (limited.status, limited.headers["retry-after"], limited.json()) == (
        429, "1", error("wamp.error.rate_limited", "this client publishes faster than its realm allows"))
    assert (await post(r, "/publish", {"topic": "com.example.rate"}, bearer="svc-secret")).status == 200
    metrics = await asyncio.to_thread(_get, r, "/metrics")
    assert 'switchyard_quota_refusals_total{realm="realm1",kind="publication"} 2' in metrics
    assert 'switchyard_http_bridge_requests_total{endpoint="publish",status="429"} 2' in metrics
    assert 'switchyard_http_bridge_requests_total{endpoint="publish",status="413"} 1' in metrics


def _get(router, path) -> str:
    conn = http.client.HTTPConnection(router.ws_host, router.ws_port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


# ----------------------------------------------------------------------- workbench


async def test_workbench_tokens_and_static_tickets(workbench):
    wb = workbench
    carol, alice = wb.token("carol"), wb.token("alice")
    watcher = await connect(wb.router, "websocket", "json", realm="workbench", ticket=wb.token("carol"))
    inbox = Inbox()
    await watcher.subscribe(inbox, "containers.c3.logs", options=DETAILS)

    # carol owns c3: her token may publish its logs (the only realm is the default).
    r = await post(wb.router, "/publish", {"topic": "containers.c3.logs", "args": ["line 1"]}, bearer=carol)
    assert r.status == 200, r.json()
    (ev,) = await inbox.wait_for(1)
    assert ev.args == ("line 1",) and ev.details.publication == r.json()["publication"]
    # alice only reads c1: writing its logs is refused.
    r = await post(wb.router, "/publish?realm=workbench", {"topic": "containers.c1.logs"}, bearer=alice)
    assert (r.status, r.json()) == (403, error("wamp.error.not_authorized",
                                               "session is not authorized to publish 'containers.c1.logs'"))
    # A container the router has never heard of: its access is loaded from the
    # database (the authorizer asks, the request waits), then it is decided.
    waits = wb.metric("switchyard_authorization_waits_total")
    await wb.sql("insert into objects (id, kind, owner_id) values ('c9', 'container', 'carol');")
    await wb.settle()
    r = await post(wb.router, "/publish", {"topic": "containers.c9.logs", "args": [9], "realm": "workbench"}, bearer=carol)
    assert r.status == 200, r.json()
    assert wb.metric("switchyard_authorization_waits_total") > waits
    # A static ticket as a bearer credential: the controller service publishes.
    r = await post(wb.router, "/publish", {"topic": "containers.c3.logs", "args": ["from the controller"]},
                   bearer=SERVICE_TICKETS["controller-1"])
    assert r.status == 200
    await inbox.wait_for(2)
    assert inbox.items[1].args == ("from the controller",)

    # A call to a procedure alice may call (read on c1), served by bob, who reads c1.
    bob = await connect(wb.router, "rawsocket", "msgpack", realm="workbench", ticket=wb.token("bob"))
    await bob.register(lambda what: {"container": "c1", "what": what}, "containers.c1.inspect")
    r = await post(wb.router, "/call", {"procedure": "containers.c1.inspect", "args": ["state"]}, bearer=alice)
    assert (r.status, r.json()) == (200, {"args": [{"container": "c1", "what": "state"}], "kwargs": {}})

    # Tokens refused, as at a WAMP login; no anonymous role on the workbench.
    revoked = wb.token("alice")
    wb.revoke_token(revoked)
    cases = [
        (await post(wb.router, "/publish", {"topic": "containers.c1.logs"}, bearer=revoked), 401, "wamp.error.authentication_failed", "token revoked"),
        (await post(wb.router, "/publish", {"topic": "containers.c1.logs"}, bearer="sy_nonsense"), 401, "wamp.error.authentication_failed", "unknown token"),
        (await post(wb.router, "/publish", {"topic": "containers.c1.logs"}), 401, "wamp.error.no_auth_method",
         "realm 'workbench' admits no anonymous requests: send Authorization: Bearer <token>"),
        (await post(wb.router, "/call", {"procedure": "containers.c1.inspect"}, basic=("bob", alice)), 401,
         "wamp.error.authentication_failed", "the token does not belong to 'bob'"),
    ]
    for got, status, uri, message in cases:
        assert (got.status, got.json()) == (status, error(uri, message))


# --------------------------------------------------------------------- schemathesis

SCHEMATHESIS_CONFIG = """
[checks.negative_data_rejection]
# 413 (body over max_message_size) and 431 (request head over 32 KiB) are rejections too.
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, 431]
"""


@pytest.mark.deadline(300)
@pytest.mark.timeout(330)
async def test_schemathesis_checks_both_endpoints(new_router, tmp_path):
    """Every schemathesis check (`--checks all`: status codes, content types, response
    schemas and headers, schema-valid requests accepted, schema-violating ones refused,
    unsupported methods, ignored auth) on both operations, against the description the
    router serves, with a callee behind the example procedure so that calls succeed."""
    r = new_router("bridge-schemathesis")
    callee = await connect(r, "websocket", "json")
    await callee.register(lambda *args, **kwargs: CallResult(*args, **kwargs), "com.example.add")
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    st = Path(sys.executable).parent / "st"
    cmd = [str(st), "--config-file", str(config), "run", f"http://{r.ws_host}:{r.ws_port}/openapi.json",
           "--checks", "all", "--max-examples", "150", "--workers", "1", "--seed", "20261203",
           "--request-timeout", "10"]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                cwd=tmp_path)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "POST /publish" in text or "2/2" in text, text[-2000:]
