"""A bare WAMP-over-RawSocket client on asyncio streams.

Used where autobahn would refuse to send what we want to send (malformed
messages, oversized frames, bad handshakes) or where we want to see the exact
wire values the router sends (WELCOME details, JSON binary strings).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import cbor2
import msgpack

SERIALIZER_IDS = {"json": 1, "msgpack": 2, "cbor": 3}

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

CLIENT_ROLES = {
    "publisher": {"features": {}},
    "subscriber": {"features": {}},
    "caller": {"features": {}},
    "callee": {"features": {}},
}


def _bytes_to_json(obj):
    if isinstance(obj, (bytes, bytearray)):
        return "\x00" + base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, list):
        return [_bytes_to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _bytes_to_json(v) for k, v in obj.items()}
    return obj


def _json_to_bytes(obj):
    if isinstance(obj, str) and obj.startswith("\x00"):
        return base64.b64decode(obj[1:])
    if isinstance(obj, list):
        return [_json_to_bytes(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _json_to_bytes(v) for k, v in obj.items()}
    return obj


def encode(serializer: str, msg) -> bytes:
    if serializer == "json":
        return json.dumps(_bytes_to_json(msg), separators=(",", ":")).encode("utf-8")
    if serializer == "msgpack":
        return msgpack.packb(msg, use_bin_type=True)
    if serializer == "cbor":
        return cbor2.dumps(msg)
    raise ValueError(serializer)


def decode(serializer: str, data: bytes, *, convert_binary: bool = True):
    if serializer == "json":
        obj = json.loads(data.decode("utf-8"))
        return _json_to_bytes(obj) if convert_binary else obj
    if serializer == "msgpack":
        return msgpack.unpackb(data, raw=False)
    if serializer == "cbor":
        return cbor2.loads(data)
    raise ValueError(serializer)


class ConnectionClosed(Exception):
    pass


class RawSocketClient:
    def __init__(self, serializer: str = "json", *, convert_binary: bool = True):
        self.serializer = serializer
        self.convert_binary = convert_binary
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.handshake_reply: bytes | None = None
        self.received: list = []
        self._req = 0

    # ----------------------------------------------------------- connection

    async def open(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), 5)

    async def open_unix(self, path: str) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_unix_connection(path), 5)

    async def handshake(self, octets: bytes | None = None, timeout: float = 3.0) -> bytes:
        """Send the 4-octet handshake (default: max length 16M, our serializer)
        and return the router's 4-octet reply."""
        if octets is None:
            octets = bytes([0x7F, 0xF0 | SERIALIZER_IDS[self.serializer], 0, 0])
        self.writer.write(octets)
        await self.writer.drain()
        self.handshake_reply = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        return self.handshake_reply

    async def connect(self, router, *, timeout: float = 3.0) -> bytes:
        await self.open(router.rs_host, router.rs_port)
        reply = await self.handshake(timeout=timeout)
        expected = SERIALIZER_IDS[self.serializer]
        if reply[0] != 0x7F or (reply[1] & 0x0F) != expected:
            raise AssertionError(f"rawsocket handshake refused: reply {reply.hex()}")
        return reply

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    # ----------------------------------------------------------- framing

    async def send_frame(self, payload: bytes, frame_type: int = 0) -> None:
        n = len(payload)
        header = struct.pack("!I", (frame_type << 24) | n) if n < (1 << 24) else \
            bytes([0x08 | frame_type, 0, 0, 0])
        self.writer.write(header + payload)
        await self.writer.drain()

    async def send(self, msg) -> None:
        await self.send_frame(encode(self.serializer, msg))

    async def recv_frame(self, timeout: float = 3.0) -> tuple[int, bytes]:
        """Return (frame type, payload); raises ConnectionClosed on EOF."""
        try:
            header = await asyncio.wait_for(self.reader.readexactly(4), timeout)
            frame_type = header[0] & 0x07
            length = ((header[0] & 0x08) << 21) | int.from_bytes(header[1:], "big")
            payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionClosed(str(e)) from None
        return frame_type, payload

    async def recv(self, timeout: float = 3.0):
        """Next WAMP message (answers PINGs on the way)."""
        while True:
            frame_type, payload = await self.recv_frame(timeout)
            if frame_type == 1:  # PING -> PONG
                await self.send_frame(payload, frame_type=2)
                continue
            if frame_type != 0:
                raise AssertionError(f"unexpected rawsocket frame type {frame_type}")
            msg = decode(self.serializer, payload, convert_binary=self.convert_binary)
            self.received.append(msg)
            return msg

    async def recv_until_closed(self, timeout: float = 2.0) -> list:
        """Collect messages until the router closes the connection.

        Raises AssertionError if the connection is still open after ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        msgs = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"connection still open {timeout}s later; received meanwhile: {msgs!r}")
            try:
                msgs.append(await self.recv(timeout=remaining))
            except ConnectionClosed:
                return msgs
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"connection still open {timeout}s later; received meanwhile: {msgs!r}") from None

    # ----------------------------------------------------------- WAMP

    def next_request(self) -> int:
        self._req += 1
        return self._req

    async def hello(self, realm: str = "realm1", details: dict | None = None):
        d = {"roles": CLIENT_ROLES}
        if details:
            d.update(details)
        await self.send([HELLO, realm, d])
        return await self.recv()

    async def join(self, router, realm: str = "realm1"):
        """Connect, handshake, HELLO; return the WELCOME message."""
        await self.connect(router)
        welcome = await self.hello(realm)
        if welcome[0] != WELCOME:
            raise AssertionError(f"expected WELCOME, got {welcome!r}")
        self.session_id = welcome[1]
        return welcome

    async def subscribe(self, topic: str, options: dict | None = None) -> int:
        rid = self.next_request()
        await self.send([SUBSCRIBE, rid, options or {}, topic])
        reply = await self.recv()
        if reply[:2] != [SUBSCRIBED, rid]:
            raise AssertionError(f"expected SUBSCRIBED for request {rid}, got {reply!r}")
        return reply[2]

    async def publish_ack(self, topic: str, args=None, kwargs=None) -> int:
        rid = self.next_request()
        msg = [PUBLISH, rid, {"acknowledge": True}, topic]
        if args is not None or kwargs is not None:
            msg.append(args or [])
        if kwargs is not None:
            msg.append(kwargs)
        await self.send(msg)
        reply = await self.recv()
        if reply[:2] != [PUBLISHED, rid]:
            raise AssertionError(f"expected PUBLISHED for request {rid}, got {reply!r}")
        return reply[2]

    async def register(self, procedure: str, options: dict | None = None) -> int:
        rid = self.next_request()
        await self.send([REGISTER, rid, options or {}, procedure])
        reply = await self.recv()
        if reply[:2] != [REGISTERED, rid]:
            raise AssertionError(f"expected REGISTERED for request {rid}, got {reply!r}")
        return reply[2]
