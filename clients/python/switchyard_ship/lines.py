"""Cutting a byte stream into log lines.

A pipe or a file may hold any bytes; a line ends at ``\\n`` (a ``\\r`` just before it is
dropped as well) and is decoded as UTF-8 with invalid bytes replaced by U+FFFD, because a
WAMP payload is text. A line longer than ``max_bytes`` is cut into pieces of at most that
many bytes, at a UTF-8 character boundary, each shipped as a line of its own: a line too
large for the router's message size limit would otherwise be refused again and again at
the head of the buffer, and a partial line is never held without bound.
"""

from __future__ import annotations


def _boundary(data: bytearray, limit: int) -> int:
    """Where to cut ``data`` (longer than ``limit``) so that no character is split."""
    cut = limit
    # a continuation byte (10xxxxxx) at the cut means the cut is inside a character
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut or limit


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class LineSplitter:
    def __init__(self, max_bytes: int):
        if max_bytes < 4:
            raise ValueError("max_bytes must be at least 4 (one UTF-8 character)")
        self.max_bytes = max_bytes
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """The complete lines ``data`` ends; the rest waits for the next call."""
        out: list[str] = []
        buf = self._partial
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            if line.endswith(b"\r"):
                del line[-1:]
            out.extend(self._pieces(line))
            start = end + 1
        del buf[:start]
        # an unfinished line is shipped in pieces as soon as it is too long to be one
        while len(buf) > self.max_bytes:
            cut = _boundary(buf, self.max_bytes)
            out.append(_decode(bytes(buf[:cut])))
            del buf[:cut]
        return out

    def flush(self) -> list[str]:
        """The unfinished last line, if any (at the end of the input)."""
        if not self._partial:
            return []
        line, self._partial = self._partial, bytearray()
        return self._pieces(line)

    def _pieces(self, line: bytearray) -> list[str]:
        pieces = []
        while len(line) > self.max_bytes:
            cut = _boundary(line, self.max_bytes)
            pieces.append(_decode(bytes(line[:cut])))
            del line[:cut]
        pieces.append(_decode(bytes(line)))
        return pieces
