"""WAMP-CRA and WAMP-Cryptosign with autobahn-python's own authenticators.

The router's principals (CONFIG): carol has a plain WAMP-CRA secret, erin a salted one
(the realm file holds the key derived from her password, as printed by
`switchyard wampcra-key` and checked here against hashlib), dave a Cryptosign public
key.  The clients answer with autobahn's AuthWampCra and AuthCryptoSign, so what is
tested is what an autobahn application does.  On the workbench realm, graph users log
in with keys stored in the `user_keys` table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess

import pytest
from autobahn.wamp.auth import AuthCryptoSign, AuthWampCra
from nacl.signing import SigningKey

from harness import SPREAD, combo_id
from harness.client import JoinFailed, connect
from harness.router import Router, RouterError, router_binary

AUTH_FAILED = "wamp.error.authentication_failed"
INVALID_CRA = "invalid wampcra signature"

# The spec's first two Cryptosign test-vector private keys: dave's, and a stranger's.
DAVE_SEED = "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510"
OTHER_SEED = "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd"
DAVE_PUBKEY = "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d"

ERIN_PASSWORD, ERIN_SALT, ERIN_ITERATIONS, ERIN_KEYLEN = "erin-password", "erin-salt", 1000, 32


def pubkey(seed_hex: str) -> str:
    return SigningKey(bytes.fromhex(seed_hex)).verify_key.encode().hex()


def derived_key() -> str:
    """`switchyard wampcra-key` for erin, checked against hashlib's PBKDF2."""
    out = subprocess.run([str(router_binary()), "wampcra-key", "--salt", ERIN_SALT,
                          "--iterations", str(ERIN_ITERATIONS), "--keylen", str(ERIN_KEYLEN)],
                         input=ERIN_PASSWORD + "\n", capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    expected = base64.b64encode(hashlib.pbkdf2_hmac(
        "sha256", ERIN_PASSWORD.encode(), ERIN_SALT.encode(), ERIN_ITERATIONS, ERIN_KEYLEN)).decode()
    assert out.stdout.strip() == expected
    return expected


def config() -> str:
    return f"""
[limits]
auth_failures_per_minute = 1000

[[realms]]
name = "realm1"
roles = [{{ name = "user" }}, {{ name = "reader" }}]

[[realms.principals]]
authid = "carol"
role = "user"
secret = "carol-secret"

[[realms.principals]]
authid = "erin"
role = "reader"
secret = "{derived_key()}"
salt = "{ERIN_SALT}"
iterations = {ERIN_ITERATIONS}
keylen = {ERIN_KEYLEN}

[[realms.principals]]
authid = "dave"
role = "user"
cryptosign = ["{DAVE_PUBKEY}"]
"""


@pytest.fixture(scope="module")
def auth_realm():
    r = Router("cra-cryptosign", config=config())
    try:
        r.start()
    except RouterError as e:
        pytest.fail(str(e), pytrace=False)
    yield r
    r.cleanup()


spread = pytest.mark.parametrize("combo", SPREAD, ids=[combo_id(c) for c in SPREAD])


def welcome_of(s):
    w = s.state.welcome
    return (w.authid, w.authrole, w.authmethod, w.authprovider)


async def cra(router, authid: str, secret: str, combo=("websocket", "json")):
    authenticator = AuthWampCra(authid=authid, secret=secret)
    return await connect(router, *combo, authid=authid, authmethods=["wampcra"],
                         on_challenge=authenticator.on_challenge)


async def cryptosign(router, seed: str, combo=("websocket", "json"), *, authid=None,
                     realm="realm1", announce: str | None = None, answer=None):
    """Logs in with the key of `seed`; `announce` puts another public key in HELLO,
    `answer(session, challenge)` replaces the signature."""
    authenticator = AuthCryptoSign(privkey=seed, authextra={})
    authextra = dict(authenticator.authextra)
    if announce is not None:
        authextra["pubkey"] = announce
    return await connect(router, *combo, realm=realm, authid=authid, authmethods=["cryptosign"],
                         authextra=authextra, on_challenge=answer or authenticator.on_challenge)


# ------------------------------------------------------------------ WAMP-CRA


@spread
async def test_wampcra_welcomes_carol(auth_realm, combo):
    s = await cra(auth_realm, "carol", "carol-secret", combo)
    assert welcome_of(s) == ("carol", "user", "wampcra", "static")
    [challenge] = s.state.challenges
    assert challenge.method == "wampcra"
    assert set(challenge.extra) == {"challenge"}
    fields = json.loads(challenge.extra["challenge"])
    assert set(fields) == {"authid", "authrole", "authmethod", "authprovider", "nonce", "timestamp", "session"}
    assert (fields["authid"], fields["authrole"], fields["authmethod"], fields["authprovider"]) == \
        ("carol", "user", "wampcra", "static")
    assert fields["session"] == s.id
    assert fields["timestamp"].endswith("Z") and len(fields["timestamp"]) == 24


@spread
async def test_salted_wampcra_welcomes_erin(auth_realm, combo):
    s = await cra(auth_realm, "erin", ERIN_PASSWORD, combo)
    assert welcome_of(s) == ("erin", "reader", "wampcra", "static")
    [challenge] = s.state.challenges
    assert {k: challenge.extra[k] for k in ("salt", "iterations", "keylen")} == \
        {"salt": ERIN_SALT, "iterations": ERIN_ITERATIONS, "keylen": ERIN_KEYLEN}


async def test_wampcra_wrong_secret(auth_realm):
    for authid, secret in [("carol", "carol-secreT"), ("erin", "not-erins-password")]:
        with pytest.raises(JoinFailed) as e:
            await cra(auth_realm, authid, secret)
        assert (e.value.reason, e.value.message) == (AUTH_FAILED, INVALID_CRA)
        assert len(e.value.state.challenges) == 1 and e.value.state.welcome is None


async def test_wampcra_unknown_authid_is_challenged_then_refused_alike(auth_realm):
    with pytest.raises(JoinFailed) as e:
        await cra(auth_realm, "mallory", "anything")
    assert (e.value.reason, e.value.message) == (AUTH_FAILED, INVALID_CRA)
    [challenge] = e.value.state.challenges
    fields = json.loads(challenge.extra["challenge"])
    assert fields["authid"] == "mallory" and fields["authrole"] in ("user", "reader")
    # Like carol's (no salt) or erin's (salt, iterations and keylen of hers).
    if "salt" in challenge.extra:
        assert (challenge.extra["iterations"], challenge.extra["keylen"]) == (ERIN_ITERATIONS, ERIN_KEYLEN)
        assert len(challenge.extra["salt"]) == len(ERIN_SALT)
    else:
        assert set(challenge.extra) == {"challenge"}


# ------------------------------------------------------------------ Cryptosign


@spread
async def test_cryptosign_welcomes_dave(auth_realm, combo):
    s = await cryptosign(auth_realm, DAVE_SEED, combo)
    assert welcome_of(s) == ("dave", "user", "cryptosign", "static")
    [challenge] = s.state.challenges
    assert challenge.method == "cryptosign"
    assert len(challenge.extra["challenge"]) == 64 and challenge.extra["channel_binding"] is None
    # With the authid too.
    s = await cryptosign(auth_realm, DAVE_SEED, combo, authid="dave")
    assert welcome_of(s) == ("dave", "user", "cryptosign", "static")


async def test_cryptosign_signature_alone_is_accepted(auth_realm):
    def signature_only(session, challenge):
        key = SigningKey(bytes.fromhex(DAVE_SEED))
        return key.sign(bytes.fromhex(challenge.extra["challenge"])).signature.hex()
    s = await cryptosign(auth_realm, DAVE_SEED, answer=signature_only)
    assert welcome_of(s) == ("dave", "user", "cryptosign", "static")


async def test_cryptosign_refusals(auth_realm):
    def malformed(session, challenge):
        return "not a signature"
    cases = [
        (dict(seed=OTHER_SEED), "unknown cryptosign key"),
        # dave's key announced, the challenge signed with another
        (dict(seed=OTHER_SEED, announce=DAVE_PUBKEY), "invalid cryptosign signature"),
        (dict(seed=DAVE_SEED, answer=malformed),
         "the cryptosign signature must be hex of 64 bytes (signature) or 96 bytes (signature and challenge)"),
        (dict(seed=DAVE_SEED, authid="carol"), "the key does not belong to 'carol'"),
    ]
    for kwargs, text in cases:
        with pytest.raises(JoinFailed) as e:
            await cryptosign(auth_realm, kwargs.pop("seed"), **kwargs)
        assert (e.value.reason, e.value.message) == (AUTH_FAILED, text), kwargs
        assert len(e.value.state.challenges) == 1 and e.value.state.welcome is None


async def test_channel_binding_is_refused_at_hello(auth_realm):
    with pytest.raises(JoinFailed) as e:
        await connect(auth_realm, authmethods=["cryptosign"],
                      authextra={"pubkey": DAVE_PUBKEY, "channel_binding": "tls-unique"})
    assert e.value.reason == AUTH_FAILED
    assert e.value.message == ("TLS channel binding (tls-unique) is not supported by this router: "
                               "authenticate without channel_binding")
    assert e.value.state.challenges == []


async def test_authmethods_order_is_the_clients(auth_realm):
    carol = AuthWampCra(authid="carol", secret="carol-secret")
    s = await connect(auth_realm, authid="carol", authmethods=["ticket", "wampcra", "cryptosign"],
                      authextra={"pubkey": DAVE_PUBKEY}, on_challenge=carol.on_challenge)
    assert welcome_of(s) == ("carol", "user", "wampcra", "static")
    with pytest.raises(JoinFailed) as e:
        await connect(auth_realm, authmethods=["scram", "anonymous"])
    assert e.value.reason == "wamp.error.no_auth_method"


# ------------------------------------------------------------------ graph users' keys

ALICE_SEED = "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b"
BOB_SEED = "a" * 64


async def test_graph_user_logs_in_with_a_stored_key(workbench):
    await workbench.sql(f"insert into user_keys (pubkey, user_id) values "
                        f"('{pubkey(ALICE_SEED)}', 'alice'), ('{pubkey(DAVE_SEED)}', 'carol')")
    alice = await cryptosign(workbench.router, ALICE_SEED, realm="workbench")
    assert welcome_of(alice) == ("alice", "user", "cryptosign", "graph")
    carol = await cryptosign(workbench.router, DAVE_SEED, ("rawsocket", "msgpack"), realm="workbench",
                             authid="carol")
    assert welcome_of(carol) == ("carol", "admin", "cryptosign", "graph")
    with pytest.raises(JoinFailed) as e:
        await cryptosign(workbench.router, OTHER_SEED, realm="workbench")
    assert (e.value.reason, e.value.message) == (AUTH_FAILED, "unknown cryptosign key")
    with pytest.raises(JoinFailed) as e:
        await cryptosign(workbench.router, ALICE_SEED, realm="workbench", authid="bob")
    assert (e.value.reason, e.value.message) == (AUTH_FAILED, "the key does not belong to 'bob'")


async def test_disabled_or_trashed_graph_user_is_refused(workbench):
    await workbench.sql(f"insert into user_keys (pubkey, user_id) values "
                        f"('{pubkey(BOB_SEED)}', 'bob'), ('{pubkey(ALICE_SEED)}', 'alice');"
                        "update principals set disabled = true where id = 'bob';"
                        "update principals set trashed = true where id = 'alice'")
    for seed, text in [(BOB_SEED, 'cryptosign key of disabled user "bob"'),
                       (ALICE_SEED, 'cryptosign key of trashed user "alice"')]:
        with pytest.raises(JoinFailed) as e:
            await cryptosign(workbench.router, seed, realm="workbench")
        assert (e.value.reason, e.value.message) == (AUTH_FAILED, text)
    # Deleting the user deletes its keys.
    await workbench.sql("delete from grants where tail_id = 'bob'; delete from principals where id = 'bob'")
    assert await workbench.sql("select count(*) from user_keys where user_id = 'bob'") == "0"
