"""File → text with page numbers. `parse_file` runs the parser in a child process with a
wall-clock and an address-space limit, so a hostile file costs one document, never the worker.

The child (`python -m ingestion.parsing PATH EXT OUTDIR`) first sniffs the real type from the
bytes, refuses a type that does not match the name, then dispatches to one parser module. Mail
attachments are written to OUTDIR and come back as `Attachment`s to be ingested on their own.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.parsing.errors import Encrypted, ParseError
from ingestion.parsing.text import decode_text

__all__ = ["SUPPORTED", "Attachment", "Encrypted", "Page", "ParseError", "Parsed", "decode_text"]

TEXT = {".txt", ".md", ".markdown", ".html", ".htm", ".csv", ".eml"}
IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
BINARY = {".pdf", ".docx", ".pptx", ".xlsx", ".epub", ".odt", ".rtf", ".msg"} | IMAGES
SUPPORTED = TEXT | BINARY
ARCHIVES = {".zip"}  # expanded into documents at upload, never parsed as one


@dataclass
class Page:
    number: int
    text: str
    heading: str = ""


@dataclass
class Attachment:
    name: str
    path: str


@dataclass
class Parsed:
    pages: list[Page]
    attachments: list[Attachment] = field(default_factory=list)


# Exit codes of the child: 2 a readable ParseError, 3 an encrypted file.
PARSE_ERROR, ENCRYPTED = 2, 3

CHILD_MODULE = "ingestion.parsing"  # what `python -m` runs; tests swap in an env reporter
# All the child sees of our environment: a parser exploit must find no SECRET_KEY,
# DATABASE_URL, OIDC or LLM secret there. A new variable joins only if parsing needs it.
CHILD_ENV = {
    "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "PYTHONPATH",
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_NUM_THREADS", "TESSDATA_PREFIX",
}  # fmt: skip


def child_env(memory_mb: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in CHILD_ENV or k.startswith("LC_")}
    return {**env, "ENCLAVE_PARSE_MEMORY_MB": str(memory_mb), "OMP_THREAD_LIMIT": "1"}


def parse_file(
    path: Path, extension: str, *, timeout: int, memory_mb: int, outdir: Path | None = None
) -> Parsed:
    """Parse in a child process; limits and crashes turn into a ParseError."""
    command = [sys.executable, "-m", CHILD_MODULE, str(path), extension]
    if outdir is not None:
        command.append(str(outdir))
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=timeout,
            env=child_env(memory_mb),
            cwd=Path(__file__).resolve().parents[2],
        )
    except subprocess.TimeoutExpired:
        raise ParseError(f"Parsing took longer than {timeout} seconds and was stopped.") from None
    if done.returncode in (PARSE_ERROR, ENCRYPTED):
        message = done.stdout.decode("utf-8", errors="replace").strip()
        raise (Encrypted if done.returncode == ENCRYPTED else ParseError)(message)
    if done.returncode != 0:
        # PDFium aborts (SIGABRT) when an allocation fails under the memory limit.
        if b"MemoryError" in done.stderr or done.returncode in (-9, -6):
            raise ParseError(f"Parsing needed more than {memory_mb} MB of memory and was stopped.")
        raise ParseError("The parser crashed on this file.")
    result = json.loads(done.stdout)
    return Parsed(
        pages=[Page(**p) for p in result["pages"]],
        attachments=[Attachment(**a) for a in result["attachments"]],
    )
