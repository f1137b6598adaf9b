"""A Zenoh router for the transport tests: ``python _zenoh_router.py tcp/127.0.0.1:PORT``.

Listens on the endpoint (multicast scouting off), prints ``ready <zid>`` and runs until its standard input
closes or it is killed.
"""

from __future__ import annotations

import json
import sys

import zenoh


def main() -> None:
    conf = zenoh.Config()
    conf.insert_json5("mode", '"router"')
    conf.insert_json5("listen/endpoints", json.dumps([sys.argv[1]]))
    conf.insert_json5("connect/endpoints", "[]")
    conf.insert_json5("scouting/multicast/enabled", "false")
    session = zenoh.open(conf)
    print("ready", session.info.zid(), flush=True)
    sys.stdin.read()
    session.close()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
