"""Starts the vLLM CPU server of the embedded profile from the per-user cache `make llm` builds."""

import os
import subprocess
import time
import urllib.request
from pathlib import Path

CACHE = Path(os.environ.get("ENCLAVE_CACHE", Path.home() / ".cache" / "enclave"))
VLLM_PYTHON = CACHE / "vllm-venv" / "bin" / "python"
MODEL_DIR = CACHE / "models" / "SmolLM2-135M-Instruct"
SERVED_NAME = "SmolLM2-135M-Instruct"


def is_healthy(base_url: str) -> bool:
    root = base_url.removesuffix("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def start(port: int, log_path: Path) -> subprocess.Popen:
    if not VLLM_PYTHON.exists() or not (MODEL_DIR / "config.json").exists():
        raise RuntimeError("vLLM or the model is missing: run `make llm` first")
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    # vLLM would write its own metrics into Enclave's folder (assistant/metrics.py): not there.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [
                str(VLLM_PYTHON),
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                str(MODEL_DIR),
                "--served-model-name",
                SERVED_NAME,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--enforce-eager",
                "--max-model-len",
                "4096",
                "--dtype",
                "bfloat16",
                # Batch jobs' JSON without pretty-printing: a small model's indentation and
                # newlines were half of its tokens (assistant/batch).
                "--structured-outputs-config",
                '{"backend": "xgrammar", "disable_any_whitespace": true}',
            ],  # fmt: skip
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited with code {process.returncode}; see its log")
        if is_healthy(base_url):
            return
        time.sleep(1)
    raise RuntimeError(f"vLLM was not healthy after {timeout:.0f} s; see its log")
