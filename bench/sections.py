"""Sections of BENCHMARKS.md written by other scripts than bench/compare.sh, each
between `<!-- NAME:start -->` and `<!-- NAME:end -->`, so that compare.sh's report can
keep them when it rewrites the file.

    python3 bench/sections.py put BENCHMARKS.md NAME < section.md
"""

import re
import sys


def _pattern(name):
    return re.compile(r"<!-- %s:start -->.*?<!-- %s:end -->\n?" % (re.escape(name), re.escape(name)), re.S)


def put(path, name, text):
    """Replaces section `name` of `path` by `text`, or appends it."""
    try:
        doc = open(path).read()
    except FileNotFoundError:
        doc = ""
    block = "<!-- %s:start -->\n%s\n<!-- %s:end -->\n" % (name, text.strip(), name)
    pat = _pattern(name)
    if pat.search(doc):
        doc = pat.sub(lambda _: block, doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    open(path, "w").write(doc)


def kept(path):
    """Every marked section of `path`, in order, to append to a rewritten file."""
    try:
        doc = open(path).read()
    except FileNotFoundError:
        return ""
    blocks = re.findall(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->\n?", doc, re.S)
    return "".join(_pattern(name).search(doc).group(0) for name in blocks)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "put":
        sys.exit(__doc__)
    put(sys.argv[2], sys.argv[3], sys.stdin.read())
