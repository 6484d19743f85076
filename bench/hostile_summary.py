"""One line per bench/hostile.sh run: what the attack cost the router and what it did."""
import json
import sys

r = json.loads(sys.argv[1])


def mib(field):
    v = r.get(field)
    return None if v is None else round(v / 1024, 1)


print("%10s %-21s RSS MiB before %s peak %s settled %s  closed %s/%s after %s s  %s" % (
    r["label"], r["params"]["scenario"], mib("router_rss_before_kib"), mib("router_rss_peak_kib"),
    mib("router_rss_settled_kib"), r.get("closed_by_router"), r.get("connections"), r.get("close_after_s"),
    r.get("outcomes")))
