"""Load: N users sign in and ask at once through HTTP while a bulk upload ingests. Prints, for
each N, the app's own time to first token (Enclave's TTFT minus the stand-in LLM's, measured in
the same run at the same concurrency), errors, answers/s, the web process's RSS, and whether
every answer's query record is complete. Not a test: run it by hand (under ~6 minutes).

    python bench/load.py                   # N = 10, 50, 100
    python bench/load.py --quick           # N = 5, 20, fewer documents
    python bench/load.py --sizes 100 --threads 16

Everything runs on loopback, as subprocesses of this script: a pacing stand-in for vLLM (an
OpenAI-compatible streaming server with a fixed time to first token and tokens per second),
then Enclave's web server exactly as deployed (gunicorn with assistant/gunicorn_conf.py, the
embedded worker inside it) on a fresh ENCLAVE_VAR_DIR. With DATABASE_URL, CELERY_BROKER_URL and
QDRANT_URL set it runs the services profile instead, with a separate Celery worker.

Each round: the baseline first, N clients streaming straight from the stand-in, ramped over
--ramp seconds; then the same N as users through Enclave (real sign-in form and CSRF, the chat's
own `POST /chat/ask/` and its server-sent events), ramped alike, while the owner uploads --docs
generated documents through the upload form. An answer's TTFT is from sending the request to
the first `token` event. The stand-in counts the streams open at once: it shows whether the web
process held all N together.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PASSWORD = "load-bench-password"
GROUP = "Load"
# The seeded policies, and questions each finds (cosine above RETRIEVAL_MIN_SCORE): an answer
# with no passage is a refusal, which never reaches the LLM.
POLICIES = {
    "leave.md": "# Annual leave\n\nEmployees get 27 days of annual leave a year, plus public "
    "holidays. Leave is booked with the line manager at least two weeks ahead. Up to five "
    "unused days carry over into the next year.",
    "expenses.md": "# Travel expenses\n\nHotel stays are refunded up to 150 euros a night. "
    "Train travel is second class unless the journey is longer than four hours. Expense claims "
    "are filed within 30 days with the receipts attached.",
    "laptops.md": "# Laptops\n\nEvery employee gets a laptop that is replaced every four years. "
    "A lost or stolen laptop is reported to the service desk within one hour, and its password "
    "is changed at once.",
    "remote.md": "# Remote work\n\nEmployees may work remotely up to three days a week. The "
    "office is the place of work for onboarding and for the first month of a new role.",
}
QUESTIONS = [
    "How many days of annual leave do employees get?",
    "How much is refunded for a hotel night?",
    "When is a laptop replaced?",
    "How many days a week may employees work remotely?",
    "Within how many days must expense claims be filed?",
    "How many unused leave days carry over?",
]
WORDS = [
    "policy", "contract", "supplier", "invoice", "budget", "approval", "meeting", "review",
    "training", "pension", "insurance", "salary", "deadline", "report", "office", "manager",
    "holiday", "travel", "hotel", "claim", "notice", "clause", "quarter", "audit", "safety",
    "equipment", "vendor", "purchase", "order", "delivery", "warranty",
]  # fmt: skip


# --- the pacing stand-in for vLLM (run as its own process: `--stand-in PORT`) ----------------


def serve_stand_in(port: int, ttft: float, tps: float, tokens: int) -> None:
    """An OpenAI-compatible /v1/chat/completions: every stream waits `ttft`, then writes `tokens`
    tokens at `tps`. GET /stats gives the most streams open at once (and ?reset=1 resets it)."""
    words = ("Employees get 27 days of annual leave a year [1]. " * tokens).split(" ")
    answer = [w + " " for w in words[:tokens]]
    lock = threading.Lock()
    stats = {"open": 0, "peak": 0, "served": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def reply(self, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            with lock:
                self.reply(dict(stats))
                if "reset=1" in self.path:
                    stats.update(peak=stats["open"], served=0)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not body.get("stream"):  # query rewriting, the readiness ping
                message = {"role": "assistant", "content": "OK"}
                self.reply({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": message}]})  # fmt: skip
                return
            with lock:
                stats["open"] += 1
                stats["peak"] = max(stats["peak"], stats["open"])
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                started = time.monotonic()
                time.sleep(ttft)
                for n, token in enumerate(answer):
                    # Paced against the start, so a slow write does not slow every later token.
                    time.sleep(max(0.0, started + ttft + n / tps - time.monotonic()))
                    self.event({"index": 0, "delta": {"content": token}, "finish_reason": None})
                self.event({"index": 0, "delta": {}, "finish_reason": "stop"})
                usage = {"prompt_tokens": 200, "completion_tokens": tokens, "total_tokens": 0}
                self.event(None, usage)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with lock:
                    stats["open"] -= 1
                    stats["served"] += 1

        def event(self, choice: dict | None, usage: dict | None = None) -> None:
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [choice] if choice else [], "usage": usage}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

    ThreadingHTTPServer.request_queue_size = 1024  # the default 5 drops a burst of connects
    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


# --- Django-side steps, each run as a child process with the server's environment -----------


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    import django

    django.setup()


def seed(users: int) -> None:
    """Migrate; a collection readable by the group "Load", managed by load-owner; the users;
    the policies ingested. Prints the collection's id."""
    django_setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from ingestion import documents, index, pipeline
    from ingestion.models import Collection

    call_command("migrate", verbosity=0)
    hashed = make_password(PASSWORD)  # argon2 takes ~0.2 s: one hash for every user
    group = Group.objects.get_or_create(name=GROUP)[0]
    owner = User.objects.get_or_create(username="load-owner", defaults={"password": hashed})[0]
    for n in range(users):
        user = User.objects.get_or_create(username=f"load-{n}", defaults={"password": hashed})[0]
        user.groups.add(group)
    collection = Collection.objects.create(name=f"Load {uuid.uuid4().hex[:8]}")
    collection.groups.set([group])
    collection.managers.set([owner])
    files = [SimpleUploadedFile(name, text.encode()) for name, text in POLICIES.items()]
    for document in documents.upload(collection, files, owner):
        pipeline.ingest(document.pk)
    index.close()  # the Edge shard admits one process: the web server's, next
    print(json.dumps({"collection": collection.pk}))


def report(record_ids: list[int], collection: int) -> None:
    """Print each record's completeness and the collection's documents by status."""
    django_setup()
    from django.db.models import Count

    from assistant.models import QueryRecord
    from ingestion.models import Document

    complete = {}
    for r in QueryRecord.objects.filter(pk__in=record_ids):
        complete[r.pk] = bool(
            r.outcome == QueryRecord.Outcome.ANSWERED
            and r.answer
            and r.first_token_ms is not None
            and r.latency_ms is not None
        )
    statuses = Document.objects.filter(collection_id=collection).values_list("status")
    print(
        json.dumps(
            {
                "complete": sum(complete.values()),
                "documents": dict(statuses.annotate(n=Count("id")).order_by()),
                "failed": sorted(
                    set(
                        Document.objects.filter(
                            collection_id=collection, status=Document.Status.FAILED
                        ).values_list("error", flat=True)
                    )
                ),
            }
        )
    )


# --- the clients --------------------------------------------------------------------------------


class Browser:
    """One user's cookies against the web server; a new connection per request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = ""
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=120)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if content_type:
            headers["Content-Type"] = content_type
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, value = cookie.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        return response

    def post(self, path: str, fields: dict[str, str]) -> http.client.HTTPResponse:
        form = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.cookies["csrftoken"]})
        return self.request("POST", path, form.encode(), "application/x-www-form-urlencoded")

    def sign_in(self, username: str) -> None:
        self.request("GET", "/login/").read()  # sets the CSRF cookie the form posts back
        response = self.post("/login/", {"username": username, "password": PASSWORD})
        response.read()
        if response.status != 302:
            raise RuntimeError(f"sign-in of {username} answered {response.status}")

    def upload(self, collection: int, files: dict[str, bytes]) -> None:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
            f"{self.cookies['csrftoken']}\r\n".encode()
        ]
        for name, content in files.items():
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: text/markdown\r\n\r\n'
            )
            parts.append(head.encode() + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        response = self.request(
            "POST",
            f"/collections/{collection}/upload/",
            body,
            f"multipart/form-data; boundary={boundary}",
        )
        response.read()
        if response.status != 302:
            raise RuntimeError(f"the upload answered {response.status}")


@dataclass
class Answer:
    ttft: float | None = None  # seconds from sending the question to the first token
    record: int | None = None
    error: str = ""
    started: float = 0.0
    finished: float = 0.0


def ask(browser: Browser, question: str) -> Answer:
    answer = Answer(started=time.perf_counter())
    try:
        response = browser.post("/chat/ask/", {"question": question})
        if response.status != 200:
            answer.error = f"HTTP {response.status}"
            response.read()
            return answer
        event, done = "", False
        while line := response.readline():
            line = line.rstrip(b"\r\n")
            if line.startswith(b"event: "):
                event = line[7:].decode()
                if event == "token" and answer.ttft is None:
                    answer.ttft = time.perf_counter() - answer.started
            elif line.startswith(b"data: ") and event == "record":
                answer.record = json.loads(line[6:])["id"]
            elif line.startswith(b"data: ") and event == "error":
                answer.error = json.loads(line[6:])["message"]
            done = done or event == "done"
        if not done and not answer.error:
            answer.error = "the stream ended without its done event"
    except (OSError, http.client.HTTPException, RuntimeError) as exc:
        answer.error = f"{type(exc).__name__}: {exc}"
    answer.finished = time.perf_counter()
    return answer


def ask_stand_in(port: int) -> Answer:
    """The baseline: the same question straight to the stand-in, as Enclave's client asks it."""
    answer = Answer(started=time.perf_counter())
    question = [{"role": "user", "content": QUESTIONS[0]}]
    body = json.dumps({"model": "m", "stream": True, "messages": question})
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        connection.request(
            "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        while line := response.readline():
            if answer.ttft is None and line.startswith(b"data: ") and b'"content"' in line:
                answer.ttft = time.perf_counter() - answer.started
    except (OSError, http.client.HTTPException) as exc:
        answer.error = f"{type(exc).__name__}: {exc}"
    answer.finished = time.perf_counter()
    return answer


def ramped(calls: list, ramp: float) -> list[Answer]:
    """Start the calls evenly over `ramp` seconds, each on its own thread; their results."""
    results: list[Answer] = [Answer() for _ in calls]

    def run(n: int, call) -> None:
        results[n] = call()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    start = time.perf_counter()
    for n, thread in enumerate(threads):
        time.sleep(max(0.0, start + n * ramp / len(calls) - time.perf_counter()))
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return results


def in_parallel(calls: list, width: int = 8) -> None:
    pending = list(calls)
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                if not pending:
                    return
                call = pending.pop()
            call()

    workers = [threading.Thread(target=drain) for _ in range(width)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def generated(round_no: int, count: int, words: int = 400) -> dict[str, bytes]:
    rng = random.Random(round_no)
    return {
        f"bulk-{round_no}-{n}.md": (
            f"# Bulk {round_no}-{n}\n\n"
            + " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()
            + "."
        ).encode()
        for n in range(count)
    }


# --- the stack ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get_json(port: int, path: str) -> dict:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("GET", path)
    return json.loads(connection.getresponse().read())


def wait_for(port: int, path: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with status {process.returncode}")
        try:
            get_json(port, path) if path == "/stats" else urllib_get(port, path)
            return
        except (OSError, ValueError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing answered on port {port} within {timeout} s") from None
            time.sleep(0.2)


def urllib_get(port: int, path: str) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise ValueError(response.status)


def child(env: dict, *args: str) -> dict:
    """Run a Django-side step of this script in the server's environment; its JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_mib(pid: int) -> float:
    """The resident memory of a process and its children (the gunicorn master and worker)."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(rss_mib(int(c)) for c in children)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(c)) for c in children)


@dataclass
class Stack:
    env: dict
    port: int
    llm_port: int
    collection: int = 0
    web: subprocess.Popen | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, script: list[str], log: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            script,
            env=self.env,
            cwd=ROOT,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def start_stack(args: argparse.Namespace, var_dir: Path) -> Stack:
    env = {**os.environ, "ENCLAVE_VAR_DIR": str(var_dir), "HF_HUB_OFFLINE": "1"}
    services = bool(env.get("DATABASE_URL"))
    # A worker of its own when the queue is Redis; it cannot share an Edge shard with the web.
    worker = bool(env.get("CELERY_BROKER_URL")) and env.get("EMBEDDED_WORKER", "") != "true"
    if worker and not env.get("QDRANT_URL"):
        raise SystemExit("a separate Celery worker needs QDRANT_URL (a Qdrant server)")
    if not services:
        for name in ("CELERY_BROKER_URL", "CACHE_URL", "QDRANT_URL", "EMBEDDED_WORKER"):
            env.pop(name, None)
    stack = Stack(env, free_port(), free_port())
    env.update(
        HOST=HOST,
        PORT=str(stack.port),
        LLM_BASE_URL=f"http://{HOST}:{stack.llm_port}/v1",
        # Every user signs in from 127.0.0.1: the per-address limit is for attackers.
        LOGIN_RATE_PER_ADDRESS="100000/minute",
        RATE_LIMIT_UPLOADS="1000/hour",
    )
    if args.threads:
        env["WEB_THREADS"] = str(args.threads)
    stand_in = [sys.executable, __file__, "--stand-in", str(stack.llm_port)]
    stand_in += ["--ttft", str(args.ttft), "--tps", str(args.tps), "--tokens", str(args.tokens)]
    llm = stack.start(stand_in, var_dir / "stand-in.log")
    wait_for(stack.llm_port, "/stats", llm)
    stack.collection = child(env, "--seed", str(max(args.sizes)))["collection"]
    # As deployed; no control socket: the default one (~/.gunicorn) may belong to another server.
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "assistant/gunicorn_conf.py"]
    gunicorn += ["--no-control-socket", "assistant.wsgi"]
    stack.web = stack.start(gunicorn, var_dir / "web.log")
    if services and worker:
        celery = [sys.executable, "-m", "celery", "-A", "assistant.celery", "worker"]
        stack.start([*celery, "--pool=threads", "--loglevel=WARNING"], var_dir / "worker.log")
    wait_for(stack.port, "/healthz", stack.web)
    return stack


# --- a round ------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ranked = sorted(values)
    return ranked[max(0, min(len(ranked) - 1, round(p / 100 * len(ranked) + 0.5) - 1))]


def one_round(
    stack: Stack, browsers: list[Browser], owner: Browser, args: argparse.Namespace, n: int
) -> dict:
    signed_in = [b for b in browsers[:n] if "sessionid" in b.cookies]
    fresh = [(i, b) for i, b in enumerate(browsers[:n]) if b not in signed_in]
    in_parallel([lambda i=i, b=b: b.sign_in(f"load-{i}") for i, b in fresh])

    get_json(stack.llm_port, "/stats?reset=1")
    direct = ramped([partial(ask_stand_in, stack.llm_port)] * n, args.ramp)
    baseline = [a.ttft for a in direct if a.ttft is not None]

    get_json(stack.llm_port, "/stats?reset=1")
    peak_rss, sampling = [rss_mib(stack.web.pid)], threading.Event()

    def sample() -> None:
        while not sampling.wait(0.25):
            peak_rss.append(rss_mib(stack.web.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    cpu = cpu_seconds(stack.web.pid)
    files = generated(n, args.docs)
    upload_errors: list[str] = []

    def upload() -> None:
        try:
            owner.upload(stack.collection, files)
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            upload_errors.append(str(exc))

    uploading = threading.Thread(target=upload if files else lambda: None)
    uploading.start()
    calls = [partial(ask, b, QUESTIONS[i % len(QUESTIONS)]) for i, b in enumerate(browsers[:n])]
    answers = ramped(calls, args.ramp)
    uploading.join()
    cpu = cpu_seconds(stack.web.pid) - cpu
    sampling.set()
    sampler.join()
    held = get_json(stack.llm_port, "/stats")["peak"]

    ok = [a for a in answers if not a.error and a.ttft is not None]
    records = [a.record for a in answers if a.record]
    checked = child(stack.env, "--report", str(stack.collection), *map(str, records))
    base = statistics.median(baseline) if baseline else 0.0
    overhead = [(a.ttft - base) * 1000 for a in ok if a.ttft is not None]
    wall = max(a.finished for a in answers) - min(a.started for a in answers)
    errors = [a.error for a in answers if a.error] + upload_errors
    return {
        "n": n,
        "stand_in_p50": base * 1000,
        "stand_in_p95": percentile(baseline, 95) * 1000 if baseline else 0.0,
        "p50": percentile(overhead, 50) if overhead else float("nan"),
        "p95": percentile(overhead, 95) if overhead else float("nan"),
        "errors": len(errors),
        "error_sample": errors[:3],
        "answers_per_s": len(ok) / wall,
        "held": held,
        "rss": max(peak_rss),
        "cpu_per_answer": cpu / max(1, len(ok)) * 1000,
        "complete": checked["complete"],
        "documents": checked["documents"],
        "failed": checked["failed"],
    }


def run(args: argparse.Namespace, var_dir: Path) -> list[dict]:
    """Start the stack, run a round per size, stop everything; the rounds' figures."""
    deadline = time.monotonic() + args.time_limit
    stack = start_stack(args, var_dir)
    try:
        browsers = [Browser(stack.port) for _ in range(max(args.sizes))]
        owner = Browser(stack.port)
        owner.sign_in("load-owner")
        # The first question also loads what a warm server has loaded (the embedder, NLTK).
        warm = ask(owner, QUESTIONS[0])
        if warm.error:
            raise SystemExit(f"the warm-up question failed: {warm.error}")
        rounds = []
        for n in args.sizes:
            if time.monotonic() > deadline:
                print(f"time limit ({args.time_limit} s) reached: N = {n} and above not run")
                break
            rounds.append(one_round(stack, browsers, owner, args, n))
        return rounds
    finally:
        stack.stop()


def table(rounds: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "| streams | stand-in TTFT p50 / p95 (ms) | overhead p50 / p95 (ms) | errors | answers/s "
        "| streams open at once | web RSS (MiB) | web CPU per answer (ms) | complete records "
        "| documents during the round |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        docs = ", ".join(f"{k} {v}" for k, v in sorted(r["documents"].items()))
        lines.append(
            f"| {r['n']} | {r['stand_in_p50']:.0f} / {r['stand_in_p95']:.0f} "
            f"| {r['p50']:.0f} / {r['p95']:.0f} | {r['errors']} | {r['answers_per_s']:.1f} "
            f"| {r['held']} | {r['rss']:.0f} | {r['cpu_per_answer']:.0f} "
            f"| {r['complete']}/{r['n']} | {docs} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50,100", help="concurrent users per round")
    parser.add_argument("--quick", action="store_true", help="N = 5, 20 and 8 documents")
    parser.add_argument("--docs", type=int, default=30, help="documents uploaded per round")
    parser.add_argument("--ttft", type=float, default=0.5, help="the stand-in's TTFT (s)")
    parser.add_argument("--tps", type=float, default=20, help="the stand-in's tokens per second")
    parser.add_argument("--tokens", type=int, default=60, help="tokens per answer")
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds to start N streams")
    parser.add_argument("--threads", type=int, default=0, help="WEB_THREADS (default: as set)")
    parser.add_argument("--time-limit", type=float, default=330, help="no new round after (s)")
    # The processes this script starts of itself.
    parser.add_argument("--stand-in", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--report", nargs="+", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stand_in:
        return serve_stand_in(args.stand_in, args.ttft, args.tps, args.tokens)
    if args.seed:
        return seed(args.seed)
    if args.report:
        return report(args.report[1:], args.report[0])
    args.sizes = [5, 20] if args.quick else [int(n) for n in args.sizes.split(",")]
    if args.quick:
        args.docs = min(args.docs, 8)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="enclave-load-") as var_dir:
        rounds = run(args, Path(var_dir))
    print(
        f"stand-in: TTFT {args.ttft * 1000:.0f} ms, {args.tps:g} tokens/s, {args.tokens} tokens; "
        f"N streams started over {args.ramp:g} s while {args.docs} documents upload and ingest; "
        f"WEB_THREADS {args.threads or os.environ.get('WEB_THREADS', 'as configured')}"
    )
    print(table(rounds, args))
    for r in rounds:
        ratio = (r["stand_in_p50"] + r["p50"]) / r["stand_in_p50"]
        print(f"N={r['n']}: TTFT through Enclave / the stand-in's own, p50: {ratio:.2f}x")
        if r["error_sample"]:
            print(f"  errors, e.g.: {r['error_sample']}")
        if r["failed"]:
            print(f"  documents failed: {r['failed']}")
    last = rounds[-1] if rounds else None
    if last and last["n"] >= 100:
        met = last["errors"] == 0 and last["p95"] <= 50 and last["complete"] == last["n"]
        print(
            f"targets at {last['n']} streams (zero errors, p95 overhead <= 50 ms, every record "
            f"complete): {'met' if met else 'NOT met'}"
        )
    print(f"wall: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
