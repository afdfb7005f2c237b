"""``python -m fakeopenai [--port 8089] [--api-key KEY]``: serve the scripted agent until ^C."""

from __future__ import annotations

import argparse
import contextlib
import threading

from fakeopenai.server import FakeOpenAI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default="fake-key", help="the key clients must send")
    arguments = parser.parse_args()
    with FakeOpenAI(api_key=arguments.api_key, port=arguments.port) as fake:
        print(f"fake OpenAI-compatible server on {fake.base_url} (key {arguments.api_key!r})")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
