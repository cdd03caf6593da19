"""The web process's CPU per streamed token: assistant/llm.py's reader (httpx, server-sent
events parsed as they come) against the OpenAI client's streaming (the baseline, which
llm.stream used before), both reading the same answers from bench/load.py's stand-in for vLLM
running as its own process (its CPU is not counted). Not a test: run it by hand (~1 minute).

    python bench/stream.py                 # 5 rounds of 2,000-token answers
    python bench/stream.py --rounds 3 --tokens 500

Every streamed token holds the GIL while it is parsed: at 100 open answers of 20 tokens a second
this is the per-answer cost that grows with load (bench/load.py measures the whole).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the stand-in did not start")


def cpu_per_token(read: Callable[[], int]) -> float:
    """Microseconds of this process's CPU per token for one whole answer."""
    started = time.process_time()
    count = read()
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from openai import OpenAI

    from assistant import llm

    port = free_port()
    stand_in = [sys.executable, str(ROOT / "bench" / "load.py"), "--stand-in", str(port)]
    stand_in += ["--ttft", "0", "--tps", "100000", "--tokens", str(args.tokens)]
    server = subprocess.Popen(stand_in)
    try:
        wait_for(port)
        settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
        messages = [{"role": "user", "content": "How many days of leave?"}]
        client = OpenAI(base_url=settings.LLM_BASE_URL, api_key="x", max_retries=0)

        def openai_client() -> int:
            stream = client.chat.completions.create(
                model="m", messages=messages, stream=True,  # type: ignore[arg-type]
                stream_options={"include_usage": True},
            )  # fmt: skip
            return sum(1 for e in stream for c in e.choices if c.delta and c.delta.content)

        def enclave() -> int:
            return sum(1 for _ in llm.stream(messages, llm.Usage()))

        baseline, ours = [], []
        for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits both
            baseline.append(cpu_per_token(openai_client))
            ours.append(cpu_per_token(enclave))
    finally:
        server.terminate()
        server.wait()
    b, o = statistics.median(baseline), statistics.median(ours)
    print(f"{args.rounds} rounds of {args.tokens} tokens, median CPU per token in the web process")
    print(f"  OpenAI client (baseline): {b:7.1f} µs")
    print(f"  llm.stream (httpx):       {o:7.1f} µs")
    print(f"  ratio baseline / ours:    {b / o:7.2f}×")
    print(f"  at 100 streams × 20 tokens/s: {b * 2000 / 1e6:.2f} vs {o * 2000 / 1e6:.2f} CPU-s/s")


if __name__ == "__main__":
    main()
