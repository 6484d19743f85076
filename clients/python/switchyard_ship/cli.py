"""The ``switchyard-ship`` command: options, logging, signals and exit codes.

Exit codes: 0 the input ended and every line was published; 1 stopped by a signal (or
an input error) with lines still unacknowledged, which are then lost (their number is
logged); 2 bad usage; 3 the router gave an answer no retry can change (unknown realm,
invalid topic).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from . import __version__
from .buffer import BLOCK, POLICIES, LineBuffer
from .lines import LineSplitter
from .shipper import Fatal, Settings, Shipper
from .session import parse_url
from .source import follow_file, read_stdin

TICKET_ENV = "SWITCHYARD_TICKET"

DESCRIPTION = """\
Publish the lines of a file (followed like `tail -F`) or of standard input to the
topic containers.<ID>.logs of a Switchyard router, one event per line, with
acknowledged publications. Lines not yet acknowledged wait in a bounded buffer and
survive reconnects: after a reconnect the shipper reads the topic's history to find
which of them the router had already published, and sends only the others again."""

EPILOG = f"""\
events:
  args = [line], kwargs = {{"stream": S, "seq": N}}: S is random per run, N counts the
  lines read from 1; "dropped": D is added once the buffer has dropped lines
  (--on-full drop-oldest), D being how many so far (the missing seqs say which).
  A line longer than --max-line-bytes goes out as several events.

authentication:
  anonymous by default; WAMP-Ticket when ${TICKET_ENV} is set or --ticket-file is given
  (an API token on the workbench realm: `switchyard token create --user ID`). The file
  is read again before every connection attempt, so a token can be replaced without
  restarting the shipper. A ticket is not accepted as an option: the command lines of
  processes are visible to every user of the machine.

exit codes:
  0 the input ended and every line was published
  1 stopped by SIGINT/SIGTERM (or an input error) with lines still unacknowledged
    after --flush-timeout; they are lost and their number is logged
  2 bad usage
  3 the router refused something retrying cannot change (unknown realm, invalid topic)

example:
  some-program 2>&1 | switchyard-ship --container c1
  switchyard-ship --url ws://127.0.0.1:8080/ws --realm realm1 --container c1 --follow app.log
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _container(text: str) -> str:
    # one URI component: the router applies its own (strict or loose) rules on top
    if not text or any(c in text for c in ".# \t\r\n"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a container id (one URI component: no '.', '#' or space)")
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="switchyard-ship", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", choices=["-"], metavar="-",
                   help="read standard input (the default without --follow) until its "
                        "end, then exit once every line is published")
    where = p.add_argument_group("router")
    where.add_argument("--url", default="ws://127.0.0.1:8080/ws",
                       help="the router's WebSocket URL, ws:// or wss:// "
                            "(default: %(default)s)")
    where.add_argument("--realm", default="realm1", help="realm to join (default: %(default)s)")
    topic = where.add_mutually_exclusive_group(required=True)
    topic.add_argument("--container", metavar="ID", type=_container,
                       help="publish to containers.ID.logs")
    topic.add_argument("--topic", metavar="URI",
                       help="publish to this topic instead of containers.ID.logs")
    where.add_argument("--authid", metavar="ID",
                       help="authid to announce (optional with an API token, whose user "
                            "it must then be)")
    where.add_argument("--ticket-file", metavar="PATH",
                       help=f"log in with WAMP-Ticket, the ticket (API token) being this "
                            f"file's content; ${TICKET_ENV} gives the ticket instead")
    source = p.add_argument_group("input")
    source.add_argument("--follow", metavar="FILE",
                        help="follow FILE like `tail -F` (through rotation and truncation) "
                             "instead of reading standard input; runs until stopped")
    source.add_argument("--start-at", choices=["beginning", "end"], default="beginning",
                        help="where to start in the file found at start; files that replace "
                             "it are read from their beginning (default: %(default)s)")
    source.add_argument("--poll-interval", metavar="SECONDS", type=_positive_float,
                        default=0.2,
                        help="how often a followed file at its end is checked for new "
                             "lines, rotation and truncation (default: %(default)s)")
    source.add_argument("--max-line-bytes", metavar="N", type=_positive_int, default=65536,
                        help="longer lines are cut into events of at most N bytes, at a "
                             "UTF-8 character boundary (default: %(default)s)")
    flow = p.add_argument_group("buffering and retries")
    flow.add_argument("--buffer", metavar="LINES", type=_positive_int, default=10000,
                      help="lines held until acknowledged, sent or not (default: %(default)s)")
    flow.add_argument("--on-full", choices=POLICIES, default=BLOCK,
                      help="when the buffer is full: 'block' stops reading until lines are "
                           "acknowledged (the input waits; nothing is lost), 'drop-oldest' "
                           "drops the oldest line not yet sent and counts it (the input "
                           "never waits) (default: %(default)s)")
    flow.add_argument("--window", metavar="N", type=_positive_int, default=64,
                      help="publications in flight (sent, not yet acknowledged) at most "
                           "(default: %(default)s)")
    flow.add_argument("--backoff-initial", metavar="SECONDS", type=_positive_float,
                      default=0.5,
                      help="delay ceiling after the first failed attempt; it doubles with "
                           "each further failure, and each delay is drawn between half the "
                           "ceiling and the ceiling (default: %(default)s)")
    flow.add_argument("--backoff-max", metavar="SECONDS", type=_positive_float, default=30.0,
                      help="the largest delay ceiling (default: %(default)s)")
    flow.add_argument("--connect-timeout", metavar="SECONDS", type=_positive_float,
                      default=10.0,
                      help="time for the connection and the join (default: %(default)s)")
    flow.add_argument("--flush-timeout", metavar="SECONDS", type=float, default=5.0,
                      help="after SIGINT/SIGTERM, time to get the buffered lines "
                           "acknowledged before exiting; a second signal exits at once "
                           "(default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log every line sent and acknowledged")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _ticket_reader(path: str | None, log: logging.Logger):
    """Before each attempt: the ticket file's content (the last good one if it cannot be
    read now), else ``$SWITCHYARD_TICKET``, else None (anonymous)."""
    if path is None:
        value = os.environ.get(TICKET_ENV) or None  # set but empty: anonymous
        return lambda: value
    last = _read_ticket(path)

    def read() -> str:
        nonlocal last
        try:
            last = _read_ticket(path)
        except (OSError, ValueError) as e:
            log.error("cannot read the ticket file (%s): using its previous content", e)
        return last

    return read


def _read_ticket(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        ticket = f.read().strip()
    if not ticket:
        raise ValueError(f"{path} is empty")
    return ticket


def _logging(verbose: bool) -> logging.Logger:
    """Our own messages at INFO (DEBUG with -v); autobahn's, which repeat ours in its
    own words, only from ERROR (WARNING with -v)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING if verbose else logging.ERROR,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("switchyard-ship")
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    return log


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.input and args.follow:
        p.error("give either --follow FILE or '-' (standard input), not both")
    try:
        parse_url(args.url)
    except Exception as e:
        p.error(f"argument --url: {e}")
    log = _logging(args.verbose)
    try:
        ticket = _ticket_reader(args.ticket_file, log)
    except (OSError, ValueError) as e:
        print(f"switchyard-ship: cannot read the ticket file: {e}", file=sys.stderr)
        return 2
    topic = args.topic or f"containers.{args.container}.logs"
    settings = Settings(url=args.url, realm=args.realm, topic=topic, authid=args.authid,
                        ticket=ticket, window=args.window,
                        backoff_initial=args.backoff_initial,
                        backoff_max=max(args.backoff_max, args.backoff_initial),
                        connect_timeout=args.connect_timeout)
    return asyncio.run(_run(args, settings, log))


async def _run(args, settings: Settings, log: logging.Logger) -> int:
    loop = asyncio.get_running_loop()
    buffer = LineBuffer(args.buffer, args.on_full, log)
    shipper = Shipper(settings, buffer, log)
    splitter = LineSplitter(args.max_line_bytes)
    if args.follow:
        source = follow_file(args.follow, buffer.put, splitter, poll=args.poll_interval,
                             from_end=args.start_at == "end", log=log)
    else:
        source = read_stdin(buffer.put, splitter)
    log.info("shipping %s to %s on %s, realm %s (stream %s)",
             args.follow or "standard input", settings.topic, settings.url, settings.realm,
             shipper.stream)

    source_task = asyncio.create_task(source)
    ship_task = asyncio.create_task(shipper.run())
    input_failed = False

    def input_ended(task: asyncio.Task) -> None:
        nonlocal input_failed
        if task.cancelled():
            return
        if task.exception() is not None:
            input_failed = True
            log.error("reading the input failed: %s", task.exception())
        else:
            log.info("end of input: %d lines read", buffer.read)
        shipper.end_of_input()

    source_task.add_done_callback(input_ended)

    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        stop.set()
        if signals > 1:
            ship_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)

    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([ship_task, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not ship_task.done():
        log.info("stopping: %d lines to publish, waiting at most %g s", len(buffer),
                 args.flush_timeout)
        source_task.cancel()
        buffer.close()
        shipper.end_of_input()
        await asyncio.wait([ship_task], timeout=max(args.flush_timeout, 0))
    stopping.cancel()
    source_task.cancel()
    buffer.close()
    code = 0
    if not ship_task.done():
        ship_task.cancel()
    try:
        await ship_task
    except asyncio.CancelledError:
        pass
    except Fatal as e:
        log.error("%s", e)
        code = 3
    log.info("%s", shipper.summary())
    if code:
        return code
    if not buffer.empty:
        log.error("%d lines were not acknowledged and are lost", len(buffer))
        return 1
    return 1 if input_failed else 0
