"""Start the whole stack in the foreground: vLLM (embedded profile), then gunicorn with the
embedded Celery worker. Ctrl-C stops everything."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand

from assistant import llm_server
from assistant.management.commands.seed_demo import USERS

DEFAULT_LLM = "http://127.0.0.1:8001/v1"


class Command(BaseCommand):
    help = "Run web + worker + (in the embedded profile) the vLLM CPU server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: object, host: str, port: int, **options: object) -> None:
        children: list[subprocess.Popen] = []

        def stop(*_: object) -> None:
            for child in reversed(children):
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        try:
            if settings.LLM_BASE_URL == DEFAULT_LLM and not llm_server.is_healthy(DEFAULT_LLM):
                log = settings.VAR_DIR / "vllm.log"
                self.stdout.write(f"Starting vLLM (CPU, SmolLM2-135M-Instruct); log: {log}")
                vllm = llm_server.start(8001, log)
                children.append(vllm)
                llm_server.wait_healthy(DEFAULT_LLM, vllm)
                self.stdout.write("vLLM is ready.")
            # The web process upgrades an old local-mode index as it starts (ingestion.upgrade).
            legacy = settings.LEGACY_QDRANT_PATH
            upgrading = settings.EMBEDDED_WORKER and not settings.QDRANT_URL and legacy.exists()
            env = {**os.environ, "HOST": host, "PORT": str(port)}
            web = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "assistant/gunicorn_conf.py",
                    "assistant.wsgi",
                ],  # fmt: skip
                env=env,
                cwd=settings.BASE_DIR,
                start_new_session=True,
            )
            children.append(web)
            self.wait_for_web(f"http://{host}:{port}/healthz", web)
            self.banner(f"http://{host}:{port}/", upgrading=upgrading)
            web.wait()
        except KeyboardInterrupt:
            pass
        stop()

    def wait_for_web(self, url: str, web: subprocess.Popen) -> None:
        for _ in range(120):
            if web.poll() is not None:
                raise SystemExit("the web server exited; see the output above")
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own URL)
                    return
            except OSError:
                time.sleep(0.5)
        raise SystemExit("the web server did not start within a minute")

    def banner(self, url: str, *, upgrading: bool = False) -> None:
        lines = [f"Enclave is running at {url}", "Demo logins (username / password):"]
        lines += [f"  {name:<7} {password:<16} {role}" for name, password, role, _ in USERS]
        if upgrading:
            lines.append("The vector index was upgraded: documents are being indexed again.")
        lines.append("Press Ctrl-C to stop.")
        width = max(len(line) for line in lines)
        self.stdout.write("=" * width + "\n" + "\n".join(lines) + "\n" + "=" * width)
