"""Publish & subscribe: acknowledge, unsubscribe, publisher exclusion,
publisher identification, subscriber black/white listing, shared subscription ids."""

import asyncio

import pytest

from autobahn.wamp.request import Publication
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from harness import SPREAD, all_combos, partner, spread_combos, uniq
from harness.client import Inbox, connect, extra_options

ACK = PublishOptions(acknowledge=True)
DETAILS = SubscribeOptions(details=True)

ARGS = [1, "two", 3.5, None, True, False, [1, [2, 3]], {"a": 1, "b": [None]}]
KWARGS = {"k": "v", "n": -5, "nested": {"x": [1, 2, {"y": "z"}]}, "empty": []}


@all_combos
async def test_publish_subscribe_roundtrip(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.pubsub")
    inbox = Inbox()
    subscription = await sub.subscribe(inbox, topic, options=DETAILS)
    assert isinstance(subscription.id, int) and subscription.id > 0

    publication = await pub.publish(topic, *ARGS, options=ACK, **KWARGS)
    assert isinstance(publication, Publication)
    assert isinstance(publication.id, int) and publication.id > 0

    (ev,) = await inbox.wait_for(1)
    assert list(ev.args) == ARGS
    assert ev.kwargs == KWARGS
    assert ev.details.publication == publication.id
    assert ev.details.subscription.id == subscription.id
    assert ev.details.topic == topic
    # the anonymous role does not disclose publishers unless asked to
    assert ev.details.publisher is None
    assert ev.details.publisher_authid is None
    assert ev.details.publisher_authrole is None


@spread_combos
async def test_publish_without_payload(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.nopayload")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    await pub.publish(topic, options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert ev.args == () and ev.kwargs == {}


@spread_combos
async def test_events_arrive_in_publish_order(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.order")
    inbox = Inbox()
    await sub.subscribe(inbox, topic)
    for i in range(50):
        pub.publish(topic, i)  # no acknowledge: fire and forget
    await inbox.wait_for(50)
    assert [ev.args[0] for ev in inbox.items] == list(range(50))


async def test_publication_ids_are_distinct(router):
    pub = await connect(router, "websocket", "json")
    topic = uniq("com.example.pubids")
    ids = [(await pub.publish(topic, i, options=ACK)).id for i in range(10)]
    assert len(set(ids)) == 10, ids


async def test_publish_to_topic_without_subscribers_is_acknowledged(router):
    pub = await connect(router, "rawsocket", "json")
    publication = await pub.publish(uniq("com.example.nobody"), 1, options=ACK)
    assert isinstance(publication.id, int)


@spread_combos
async def test_unsubscribe_stops_events(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.unsub")
    inbox, marker = Inbox("unsubscribed"), Inbox("marker")
    subscription = await sub.subscribe(inbox, topic)
    await sub.subscribe(marker, topic + ".marker")
    await pub.publish(topic, "before", options=ACK)
    await inbox.wait_for(1)

    await subscription.unsubscribe()
    assert subscription.active is False
    await pub.publish(topic, "after", options=ACK)
    await pub.publish(topic + ".marker", "m", options=ACK)
    await marker.wait_for(1)  # events from one publisher arrive in order
    assert [ev.args for ev in inbox.items] == [("before",)]


# ---------------------------------------------------------------- publisher exclusion


@spread_combos
async def test_exclude_me_default_true(router, combo):
    me = await connect(router, *combo)
    other = await connect(router, *partner(combo))
    topic = uniq("com.example.excl")
    mine, theirs = Inbox("publisher"), Inbox("other")
    await me.subscribe(mine, topic)
    await other.subscribe(theirs, topic)
    await me.publish(topic, "hello", options=ACK)
    await theirs.wait_for(1)
    # had the router sent the publisher its own event, it would precede this one
    await other.publish(topic, "from-other", options=ACK)
    await mine.wait_for(1)
    assert [ev.args for ev in mine.items] == [("from-other",)]


@spread_combos
async def test_exclude_me_false(router, combo):
    me = await connect(router, *combo)
    topic = uniq("com.example.exclfalse")
    mine = Inbox("publisher")
    await me.subscribe(mine, topic)
    await me.publish(topic, "to-myself", options=PublishOptions(acknowledge=True, exclude_me=False))
    (ev,) = await mine.wait_for(1)
    assert ev.args == ("to-myself",)


async def test_exclude_me_true_explicit(router):
    me = await connect(router, "rawsocket", "msgpack")
    topic = uniq("com.example.excltrue")
    mine = Inbox("publisher")
    await me.subscribe(mine, topic)
    await me.publish(topic, "no", options=PublishOptions(acknowledge=True, exclude_me=True))
    await me.publish(topic, "yes", options=PublishOptions(acknowledge=True, exclude_me=False))
    await mine.wait_for(1)
    assert [ev.args for ev in mine.items] == [("yes",)]


# ---------------------------------------------------------------- publisher identification


@all_combos
async def test_disclose_me(router, combo):
    sub = await connect(router, *combo)
    pub = await connect(router, *partner(combo))
    topic = uniq("com.example.disclose")
    inbox = Inbox()
    await sub.subscribe(inbox, topic, options=DETAILS)
    with extra_options(pub, disclose_me=True):
        f = pub.publish(topic, "who", options=ACK)
    await f
    await pub.publish(topic, "anonymous", options=ACK)
    disclosed, undisclosed = await inbox.wait_for(2)
    assert disclosed.args == ("who",)
    assert disclosed.details.publisher == pub.id
    assert disclosed.details.publisher_authid == pub.authid
    assert disclosed.details.publisher_authrole == "anonymous"
    assert undisclosed.args == ("anonymous",)
    assert undisclosed.details.publisher is None
    assert undisclosed.details.publisher_authid is None
    assert undisclosed.details.publisher_authrole is None


@spread_combos
async def test_user_role_always_discloses_publisher(auth_router, combo):
    """Role `user` has disclose.publisher = true: alice's events carry her identity
    even without disclose_me."""
    sub = await connect(auth_router, *combo)
    alice = await connect(auth_router, *partner(combo), authid="alice", ticket="alice-secret")
    topic = uniq("com.example.userdisclose")
    inbox = Inbox()
    await sub.subscribe(inbox, topic, options=DETAILS)
    await alice.publish(topic, 1, options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert ev.details.publisher == alice.id
    assert ev.details.publisher_authid == "alice"
    assert ev.details.publisher_authrole == "user"


async def test_anonymous_on_auth_router_not_disclosed(auth_router):
    sub = await connect(auth_router, "websocket", "cbor")
    anon = await connect(auth_router, "rawsocket", "json")
    topic = uniq("com.example.anondisclose")
    inbox = Inbox()
    await sub.subscribe(inbox, topic, options=DETAILS)
    await anon.publish(topic, 1, options=ACK)
    (ev,) = await inbox.wait_for(1)
    assert ev.details.publisher is None


# ---------------------------------------------------------------- black/white listing

SUBSCRIBERS = ["alice2", "bob", "anon1", "anon2"]

LISTING_CASES = {
    "exclude": ({"exclude": ["anon1"]}, {"alice2", "bob", "anon2"}),
    "exclude-two": ({"exclude": ["anon1", "bob"]}, {"alice2", "anon2"}),
    "eligible": ({"eligible": ["anon1", "bob"]}, {"anon1", "bob"}),
    "eligible-empty-match": ({"eligible": ["publisher"]}, set()),
    "exclude_authid": ({"exclude_authid": ["bob"]}, {"alice2", "anon1", "anon2"}),
    "eligible_authid": ({"eligible_authid": ["alice"]}, {"alice2"}),
    "eligible_authid-two": ({"eligible_authid": ["alice", "bob"]}, {"alice2", "bob"}),
    "exclude_authrole": ({"exclude_authrole": ["anonymous"]}, {"alice2", "bob"}),
    "eligible_authrole": ({"eligible_authrole": ["reader", "user"]}, {"alice2", "bob"}),
    "eligible+exclude": ({"eligible": ["anon1", "anon2", "bob"], "exclude": ["anon2"]},
                         {"anon1", "bob"}),
    "eligible_authrole+exclude": ({"eligible_authrole": ["anonymous"], "exclude": ["anon1"]},
                                  {"anon2"}),
    "eligible_authid+exclude_authrole": (
        {"eligible_authid": ["alice", "bob"], "exclude_authrole": ["reader"]}, {"alice2"}),
    "eligible+eligible_authrole": (
        {"eligible": ["anon1", "bob", "alice2"], "eligible_authrole": ["anonymous", "reader"]},
        {"anon1", "bob"}),
}


@pytest.mark.parametrize("case", list(LISTING_CASES))
async def test_black_white_listing(auth_router, case):
    """Publisher alice (role user) with subscribers alice2 (user), bob (reader),
    anon1 and anon2 (anonymous) on a mix of transports/serializers."""
    r = auth_router
    alice = await connect(r, "websocket", "json", authid="alice", ticket="alice-secret")
    subs = {
        "alice2": await connect(r, "rawsocket", "msgpack", authid="alice", ticket="alice-secret"),
        "bob": await connect(r, "websocket", "cbor", authid="bob", ticket="bob-secret"),
        "anon1": await connect(r, "rawsocket", "json"),
        "anon2": await connect(r, "websocket", "msgpack"),
    }
    ids = {name: s.id for name, s in subs.items()}
    ids["publisher"] = alice.id
    topic = uniq("com.example.public.listing")
    inboxes = {name: Inbox(name) for name in subs}
    for name, s in subs.items():
        await s.subscribe(inboxes[name], topic)

    spec, expected = LISTING_CASES[case]
    opts = {}
    for key, values in spec.items():
        if key in ("exclude", "eligible"):
            opts[key] = [ids[v] for v in values]
        else:
            opts[key] = list(values)
    await alice.publish(topic, "filtered", options=PublishOptions(acknowledge=True, **opts))
    # a marker to everyone: once it is in, the filtered event would be too
    await alice.publish(topic, "marker", options=ACK)
    for inbox in inboxes.values():
        await inbox.wait_until(lambda items: ("marker",) in [ev.args for ev in items],
                               what="marker received")
    got = {name for name, inbox in inboxes.items()
           if ("filtered",) in [ev.args for ev in inbox.items]}
    assert got == expected, f"options {opts} (ids {ids})"
    for name, inbox in inboxes.items():
        want = [("filtered",), ("marker",)] if name in expected else [("marker",)]
        assert [ev.args for ev in inbox.items] == want, name


@spread_combos
async def test_exclude_single_session_default_router(router, combo):
    """exclude/eligible on the default router, with only anonymous sessions."""
    pub = await connect(router, *combo)
    a = await connect(router, *partner(combo))
    b = await connect(router, *combo)
    topic = uniq("com.example.exclude")
    ia, ib = Inbox("a"), Inbox("b")
    await a.subscribe(ia, topic)
    await b.subscribe(ib, topic)
    await pub.publish(topic, 1, options=PublishOptions(acknowledge=True, exclude=[a.id]))
    await pub.publish(topic, 2, options=PublishOptions(acknowledge=True, eligible=[a.id]))
    await pub.publish(topic, 3, options=ACK)
    await ia.wait_for(2)
    await ib.wait_for(2)
    assert [ev.args for ev in ia.items] == [(2,), (3,)]
    assert [ev.args for ev in ib.items] == [(1,), (3,)]


# ---------------------------------------------------------------- subscription ids


async def test_subscription_id_shared_between_sessions(router):
    sessions = [await connect(router, t, s) for t, s in SPREAD]
    topic = uniq("com.example.shared")
    subs = [await s.subscribe(Inbox(), topic) for s in sessions]
    assert len({sub.id for sub in subs}) == 1, [sub.id for sub in subs]

    # the same URI with another match policy is another subscription
    prefix_subs = [await s.subscribe(Inbox(), topic, options=SubscribeOptions(match="prefix"))
                   for s in sessions[:2]]
    assert prefix_subs[0].id == prefix_subs[1].id
    assert prefix_subs[0].id != subs[0].id


async def test_subscribe_twice_same_session_same_id(router):
    s = await connect(router, "websocket", "msgpack")
    topic = uniq("com.example.twice")
    i1, i2 = Inbox("1"), Inbox("2")
    sub1 = await s.subscribe(i1, topic)
    sub2 = await s.subscribe(i2, topic)
    assert sub1.id == sub2.id
    pub = await connect(router, "rawsocket", "cbor")
    await pub.publish(topic, "x", options=ACK)
    await i1.wait_for(1)
    await i2.wait_for(1)
    # only one EVENT on the wire: autobahn dispatches it to both handlers
    await pub.publish(topic, "y", options=ACK)
    await i1.wait_for(2)
    assert [ev.args for ev in i1.items] == [("x",), ("y",)]
    assert [ev.args for ev in i2.items] == [("x",), ("y",)]


async def test_other_session_keeps_shared_subscription(router):
    a = await connect(router, "websocket", "json")
    b = await connect(router, "rawsocket", "msgpack")
    pub = await connect(router, "websocket", "cbor")
    topic = uniq("com.example.sharedunsub")
    ia, ib = Inbox("a"), Inbox("b")
    sa = await a.subscribe(ia, topic)
    sb = await b.subscribe(ib, topic)
    assert sa.id == sb.id
    await sa.unsubscribe()
    await pub.publish(topic, "still", options=ACK)
    (ev,) = await ib.wait_for(1)
    assert ev.args == ("still",)
    # a subscribes again: same subscription id, since b kept it alive
    sa2 = await a.subscribe(ia, topic)
    assert sa2.id == sb.id
    await pub.publish(topic, "again", options=ACK)
    await ia.wait_for(1)
    assert [ev.args for ev in ia.items] == [("again",)]


async def test_subscription_survives_subscriber_disconnect(router):
    a = await connect(router, "rawsocket", "json")
    b = await connect(router, "websocket", "json")
    pub = await connect(router, "websocket", "msgpack")
    topic = uniq("com.example.subdrop")
    ia, ib = Inbox("a"), Inbox("b")
    await a.subscribe(ia, topic)
    await b.subscribe(ib, topic)
    a.abort_transport()
    await asyncio.wait_for(asyncio.shield(a.state.disconnected), 3)
    await pub.publish(topic, "after-drop", options=ACK)
    (ev,) = await ib.wait_for(1)
    assert ev.args == ("after-drop",)
