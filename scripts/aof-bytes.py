#!/usr/bin/env python3
"""Where a Redis append-only file's bytes go, by command and key shape.

    scripts/aof-bytes.py [--per N] FILE.aof...

Reads the commands in each file (the *.incr.aof files of an appendonlydir,
in the RESP form Redis writes), groups them by command and by the shape of
their first key (ids, hash tags and numbers replaced by placeholders), and
prints each group's bytes, count and bytes per command, largest first. With
--per N every figure is also divided by N (the links or deliveries the file
holds), so a run of `linkflow bench --worker-only --links N --redis-url ...`
against a redis-server of your own shows what one link appends.
"""
import argparse
import collections
import re
import sys


class Truncated(Exception):
    pass


def commands(data):
    """Yields (args, size) for each RESP array of bulk strings in data.

    Skips the timestamp annotations of aof-timestamp-enabled ("#TS:...").
    Stops, with a warning, at a last command the file holds only part of
    (Redis ignores such a command when it loads the file)."""

    def line(i):
        j = data.find(b"\r\n", i)
        if j < 0:
            raise Truncated()
        return data[i:j], j + 2

    i = 0
    while i < len(data):
        start = i
        try:
            head, i = line(i)
            if head.startswith(b"#"):
                continue
            if not head.startswith(b"*"):
                raise ValueError(f"offset {start}: not a RESP array")
            args = []
            for _ in range(int(head[1:])):
                at = i
                head, i = line(i)
                if not head.startswith(b"$"):
                    raise ValueError(f"offset {at}: not a bulk string")
                size = int(head[1:])
                if i + size + 2 > len(data):
                    raise Truncated()
                if data[i + size:i + size + 2] != b"\r\n":
                    raise ValueError(f"offset {i + size}: a bulk string does not end where its length says")
                args.append(data[i:i + size])
                i += size + 2
        except Truncated:
            print(f"aof-bytes: ignoring the last command, cut off at offset {start}", file=sys.stderr)
            return
        yield args, i - start


def shape(key):
    k = key.decode(errors="replace")
    k = re.sub(r"\{[^}]*\}", "{T}", k)
    k = re.sub(r"\b([a-z]+)_[0-9a-zA-Z]{8,}", r"\1_X", k)
    k = re.sub(r"\d{6,}", "N", k)
    return k


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per", type=int, default=0, help="divide every figure by this many links or deliveries")
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    size = collections.Counter()
    count = collections.Counter()
    for f in a.files:
        with open(f, "rb") as fh:
            for args, n in commands(fh.read()):
                group = (args[0].upper().decode(), shape(args[1]) if len(args) > 1 else "")
                size[group] += n
                count[group] += 1
    total = sum(size.values())
    per = f"{'bytes/' + str(a.per):>12} " if a.per else ""
    print(f"{'bytes':>10} {'commands':>9} {'each':>6} {per}command key")
    for (cmd, key), n in size.most_common():
        extra = f"{n / a.per:12.0f} " if a.per else ""
        print(f"{n:10d} {count[(cmd, key)]:9d} {n / count[(cmd, key)]:6.0f} {extra}{cmd} {key}")
    extra = f"{total / a.per:12.0f} " if a.per else ""
    print(f"{total:10d} {sum(count.values()):9d} {'':>6} {extra}total")


if __name__ == "__main__":
    sys.exit(main())
