"""A fake OpenAI-compatible server at the HTTP edge, to inject what vLLM does when it fails:
errors, hangs, dropped connections. Real generation is tested against the real vLLM."""

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self) -> None:
        # stream: the tokens below; echo: repeats its whole prompt (the leakiest model there
        # could be); error: HTTP 500; hang: never answers.
        self.mode = "stream"
        self.tokens = ["Employees get ", "27 days ", "of leave [1]."]
        # The reply to a non-streamed request (ping, query rewriting); None: HTTP 500 to those.
        self.completion: str | None = "OK"
        self.delay = 0.0  # seconds before any reply: a slow model
        self.token_delay = 0.0  # seconds between streamed tokens: a long answer
        # Seconds between the response's headers and its first token (a long prefill or a
        # queue); a client leaving meanwhile is noticed, as vLLM notices it, and ends the wait.
        self.first_token_delay = 0.0
        # Set when the client closed a stream before its end (vLLM then aborts the request).
        self.disconnected = threading.Event()
        self.requests: list[dict] = []
        # The reply to a non-streamed request, computed from its body (a batch job's JSON for
        # its response_format); None: `completion`.
        self.reply: Callable[[dict], str] | None = None
        # Requests being answered now, and the most there ever were at once.
        self.active = self.max_active = 0
        # (prompt, completion) tokens reported after a stream, as vLLM does when asked
        # (stream_options.include_usage); None: no usage chunk.
        self.usage: tuple[int, int] | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                with fake._lock:
                    fake.active += 1
                    fake.max_active = max(fake.max_active, fake.active)
                try:
                    time.sleep(fake.delay)
                finally:
                    with fake._lock:
                        fake.active -= 1
                if fake.mode == "error" or (fake.completion is None and not body.get("stream")):
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": "boom"}')
                    return
                if fake.mode == "hang":
                    time.sleep(5)
                    return
                if not body.get("stream"):
                    content = fake.reply(body) if fake.reply else fake.completion
                    reply = {
                        "id": "x", "object": "chat.completion", "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "length",
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20,
                                  "total_tokens": 120},
                    }  # fmt: skip
                    payload = json.dumps(reply).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.flush()
                if fake.first_token_delay and not self.client_stays(fake.first_token_delay):
                    fake.disconnected.set()
                    return
                tokens = fake.tokens
                if fake.mode == "echo":
                    prompt = "\n".join(m["content"] for m in body["messages"])
                    tokens = [prompt[i : i + 200] for i in range(0, len(prompt), 200)]
                try:
                    for token in tokens:
                        chunk = {
                            "id": "x", "object": "chat.completion.chunk", "created": 0,
                            "model": body["model"],
                            "choices": [{"index": 0, "delta": {"content": token},
                                         "finish_reason": None}],
                        }  # fmt: skip
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(fake.token_delay)
                    if fake.usage and body.get("stream_options", {}).get("include_usage"):
                        prompt_tokens, completion_tokens = fake.usage
                        chunk = {
                            "id": "x", "object": "chat.completion.chunk", "created": 0,
                            "model": body["model"], "choices": [],
                            "usage": {"prompt_tokens": prompt_tokens,
                                      "completion_tokens": completion_tokens,
                                      "total_tokens": prompt_tokens + completion_tokens},
                        }  # fmt: skip
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    fake.disconnected.set()

            def client_stays(self, seconds: float) -> bool:
                """Wait, unless the client closes the connection first."""
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                return True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
