"""switchyard-ship: a log shipper for Switchyard.

Follows a file (like ``tail -F``) or reads standard input and publishes each line to
``containers.<id>.logs`` with acknowledged publications, reconnecting with backoff and
losing no line across a reconnect. The pieces:

* ``cli``      command line, signals, exit codes
* ``shipper``  the connection loop: connect, reconcile after a reconnect, publish
* ``session``  one autobahn-python session (WebSocket, anonymous or WAMP-Ticket)
* ``buffer``   the bounded buffer of unacknowledged lines (block or drop-oldest when full)
* ``source``   standard input and the file follower
* ``lines``    bytes to lines (partial lines, over-long lines)
* ``backoff``  exponential backoff with jitter
"""

__version__ = "0.1.0"
