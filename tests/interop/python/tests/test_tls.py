"""TLS: autobahn-python over wss:// and RawSocket+TLS, trusting only a CA made here
(with ``cryptography``); events and calls carry exact values, the certificate is
really checked, and /health answers over HTTPS."""

import asyncio
import datetime
import functools
import ipaddress
import json
import ssl
import urllib.request

import pytest

from autobahn.wamp.types import CallResult, PublishOptions, SubscribeOptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness import uniq
from harness.client import Inbox, JoinFailed, connect

ACK = PublishOptions(acknowledge=True)
ARGS = [1, "zwei", 3.5, None, True, [1, [2]], {"a": {"b": None}}]
KWARGS = {"k": "v", "n": -5, "nested": {"x": [1, 2, {"y": "z"}]}}

REALM = """
[[realms]]
name = "realm1"
anonymous = "anonymous"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
"""

CONFIG = """
[tls]
certificate = "tls/cert.pem"
key = "tls/key.pem"
""" + REALM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@functools.cache
def ca():
    """The test CA: (certificate, key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(_name("Switchyard test CA")).issuer_name(_name("Switchyard test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    return ca, ca_key


def server_certificate(key) -> bytes:
    """A certificate for localhost and 127.0.0.1 and `key`, signed by the test CA, as PEM."""
    ca_cert, ca_key = ca()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key, fmt) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@functools.cache
def pki() -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key as PKCS#8), PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return (ca()[0].public_bytes(serialization.Encoding.PEM), server_certificate(key),
            key_pem(key, serialization.PrivateFormat.PKCS8))


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=pki()[0].decode())
    return ctx


@pytest.fixture
def tls_router(new_router):
    _, cert, key = pki()
    return new_router("tls", config=CONFIG,
                      files={"tls/cert.pem": cert.decode(), "tls/key.pem": key.decode()})


def test_ready_line_says_wss_and_tls(tls_router):
    assert tls_router.ws_url == f"wss://127.0.0.1:{tls_router.ws_port}/ws"
    assert tls_router.ready["rawsocket_tls"] is True


@pytest.mark.parametrize("sub_transport,pub_transport,serializer", [
    ("websocket", "rawsocket", "json"),
    ("rawsocket", "websocket", "msgpack"),
    ("rawsocket", "rawsocket", "cbor"),
])
async def test_event_over_tls(tls_router, sub_transport, pub_transport, serializer):
    ctx = client_context()
    sub = await connect(tls_router, sub_transport, serializer, ssl=ctx)
    pub = await connect(tls_router, pub_transport, serializer, ssl=ctx)
    topic = uniq("com.example.tls")
    inbox = Inbox()
    subscription = await sub.subscribe(inbox, topic, options=SubscribeOptions(details=True))
    publication = await pub.publish(topic, *ARGS, options=ACK, **KWARGS)
    (ev,) = await inbox.wait_for(1)
    assert list(ev.args) == ARGS
    assert ev.kwargs == KWARGS
    assert ev.details.publication == publication.id
    assert ev.details.subscription.id == subscription.id


async def test_call_over_tls(tls_router):
    ctx = client_context()
    callee = await connect(tls_router, "websocket", "cbor", ssl=ctx)
    caller = await connect(tls_router, "rawsocket", "json", ssl=ctx)
    proc = uniq("com.example.tls.echo")

    def echo(*args, **kwargs):
        return CallResult(*reversed(args), count=len(args), **kwargs)

    await callee.register(echo, proc)
    res = await caller.call(proc, *ARGS, **KWARGS)
    assert list(res.results) == list(reversed(ARGS))
    assert res.kwresults == dict(KWARGS, count=len(ARGS))


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
async def test_an_untrusted_certificate_is_refused_by_the_client(tls_router, transport):
    # The system's roots do not include the test CA: the handshake must fail, which
    # shows the client checks what the router presents.
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(tls_router, transport, "json", ssl=ssl.create_default_context())


async def test_plain_client_on_a_tls_port_does_not_disturb_a_session(tls_router):
    ctx = client_context()
    sub = await connect(tls_router, "rawsocket", "json", ssl=ctx)
    topic = uniq("com.example.tls.plain")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    for transport in ("websocket", "rawsocket"):
        with pytest.raises((JoinFailed, ConnectionError, asyncio.TimeoutError)):
            await connect(tls_router, transport, "json", timeout=2.0)
    pub = await connect(tls_router, "websocket", "json", ssl=ctx)
    await pub.publish(topic, "still here", options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert list(ev.args) == ["still here"]


def test_health_over_https(tls_router):
    url = f"https://127.0.0.1:{tls_router.ws_port}/health"
    with urllib.request.urlopen(url, context=client_context(), timeout=5) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    assert body["status"] == "ok"
    assert body["connections"] == 1


# PKCS#8 EC is what every other test here uses.
KEYS = {
    "ec-sec1": (lambda: ec.generate_private_key(ec.SECP384R1()),
                serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN EC PRIVATE KEY-----"),
    "rsa-pkcs1": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
                  serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN RSA PRIVATE KEY-----"),
    "rsa-pkcs8": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
                  serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----"),
}


@pytest.mark.parametrize("kind", list(KEYS))
async def test_key_formats(new_router, kind):
    make, fmt, header = KEYS[kind]
    key = make()
    pem = key_pem(key, fmt)
    assert pem.startswith(header)
    r = new_router(f"tls-{kind}", config=CONFIG,
                   files={"tls/cert.pem": server_certificate(key).decode(), "tls/key.pem": pem.decode()})
    ctx = client_context()
    for transport in ("websocket", "rawsocket"):
        s = await connect(r, transport, "json", ssl=ctx)
        topic = uniq("com.example.tls.key")
        inbox = Inbox()
        await s.subscribe(inbox, topic)
        await s.publish(topic, kind, options=PublishOptions(acknowledge=True, exclude_me=False))
        (ev,) = await inbox.wait_for(1)
        assert list(ev.args) == [kind]
