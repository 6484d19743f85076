"""Pattern-based subscriptions: prefix and wildcard matching, EVENT.Details.topic."""

import pytest

from autobahn.wamp.types import PublishOptions, SubscribeOptions

from harness import SERIALIZERS, all_combos, partner, uniq
from harness.client import Inbox, connect
from harness.rawsocket import EVENT, RawSocketClient

ACK = PublishOptions(acknowledge=True)
PREFIX = SubscribeOptions(match="prefix", details=True)
WILDCARD = SubscribeOptions(match="wildcard", details=True)


async def _publish_all(pub, topics, marker):
    for t in topics:
        await pub.publish(t, t, options=ACK)
    await pub.publish(marker, marker, options=ACK)


@all_combos
async def test_prefix_subscription(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    p = uniq("com.example.prefix")
    inbox = Inbox()
    subscription = await sub.subscribe(inbox, p, options=PREFIX)

    # prefix matching is on the string: `<p>_low` matches too (spec example: emergency-low)
    matching = [p, p + ".a", p + ".a.b.c", p + "_low"]
    not_matching = [p[:-1], uniq("com.example.other"), "com.example.prefix"]
    marker = p + ".marker"
    await _publish_all(pub, not_matching + matching, marker)
    await inbox.wait_until(lambda items: any(ev.args == (marker,) for ev in items),
                           what="marker")
    assert [ev.details.topic for ev in inbox.items] == matching + [marker]
    # the payload is the topic published to, so args and details must agree
    assert [ev.args[0] for ev in inbox.items] == matching + [marker]
    assert {ev.details.subscription.id for ev in inbox.items} == {subscription.id}


@all_combos
async def test_wildcard_subscription(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    base = uniq("com.example.wild")
    inbox = Inbox()
    subscription = await sub.subscribe(inbox, base + "..update", options=WILDCARD)

    matching = [base + ".a.update", base + ".b_2.update"]
    not_matching = [base + ".a.b.update", base + ".a.updated", base + ".a",
                    base + ".a.update.x", base + ".update", uniq("com.example.wild") + ".a.update"]
    marker = base + ".zz.update"
    await _publish_all(pub, not_matching + matching, marker)
    await inbox.wait_until(lambda items: any(ev.args == (marker,) for ev in items),
                           what="marker")
    assert [ev.details.topic for ev in inbox.items] == matching + [marker]
    assert {ev.details.subscription.id for ev in inbox.items} == {subscription.id}


async def test_wildcard_trailing_components(router):
    """`base..` has two trailing wildcard components: matches base.X.Y only."""
    sub = await connect(router, "rawsocket", "cbor")
    pub = await connect(router, "websocket", "json")
    base = uniq("com.example.wild2")
    inbox = Inbox()
    await sub.subscribe(inbox, base + "..", options=WILDCARD)
    matching = [base + ".a.b", base + ".x.y"]
    not_matching = [base + ".a", base + ".a.b.c", base]
    marker = base + ".m.m"
    await _publish_all(pub, not_matching + matching, marker)
    await inbox.wait_until(lambda items: any(ev.args == (marker,) for ev in items),
                           what="marker")
    assert [ev.details.topic for ev in inbox.items] == matching + [marker]


async def test_event_delivered_once_per_matching_subscription(router):
    sub = await connect(router, "websocket", "msgpack")
    pub = await connect(router, "rawsocket", "json")
    root = uniq("com.example.multi")
    topic = root + ".a.b"
    exact, prefix, wild = Inbox("exact"), Inbox("prefix"), Inbox("wildcard")
    s1 = await sub.subscribe(exact, topic, options=SubscribeOptions(details=True))
    s2 = await sub.subscribe(prefix, root, options=PREFIX)
    s3 = await sub.subscribe(wild, root + "..b", options=WILDCARD)
    assert len({s1.id, s2.id, s3.id}) == 3

    publication = await pub.publish(topic, "once", options=ACK)
    for inbox, subscription in ((exact, s1), (prefix, s2), (wild, s3)):
        (ev,) = await inbox.wait_for(1)
        assert ev.args == ("once",)
        assert ev.details.publication == publication.id
        assert ev.details.subscription.id == subscription.id
        assert ev.details.topic == topic


async def test_unsubscribe_pattern(router):
    sub = await connect(router, "rawsocket", "msgpack")
    pub = await connect(router, "websocket", "cbor")
    p = uniq("com.example.prefixunsub")
    inbox, marker = Inbox("prefix"), Inbox("marker")
    s = await sub.subscribe(inbox, p, options=PREFIX)
    await sub.subscribe(marker, p + ".marker")
    await pub.publish(p + ".one", 1, options=ACK)
    await inbox.wait_for(1)
    await s.unsubscribe()
    await pub.publish(p + ".two", 2, options=ACK)
    await pub.publish(p + ".marker", options=ACK)
    await marker.wait_for(1)
    assert [ev.args for ev in inbox.items] == [(1,)]


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_event_details_topic_on_the_wire(router, serializer):
    c = RawSocketClient(serializer)
    await c.join(router)
    p = uniq("com.example.wiretopic")
    sub_id = await c.subscribe(p, {"match": "prefix"})
    pub = await connect(router, "websocket", "json")
    publication = await pub.publish(p + ".concrete", 7, options=ACK)
    ev = await c.recv()
    assert ev[0] == EVENT, ev
    assert ev[1] == sub_id
    assert ev[2] == publication.id
    # the default realm stores every topic: the first event of a topic is at position 1
    assert ev[3] == {"topic": p + ".concrete", "_pos": 1}
    assert ev[4] == [7]
    # ArgumentsKw may be omitted when empty, or sent as {}
    assert len(ev) == 5 or (len(ev) == 6 and ev[5] == {}), ev
    c.close()
