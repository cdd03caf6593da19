"""The parsing child process: limits itself, parses one file, prints JSON."""

import json
import os
import resource
import sys
from dataclasses import asdict
from pathlib import Path

from ingestion.parsing import ENCRYPTED, PARSE_ERROR
from ingestion.parsing.dispatch import parse
from ingestion.parsing.errors import Encrypted, ParseError


def main() -> None:
    limit = int(os.environ.get("ENCLAVE_PARSE_MEMORY_MB", "1024")) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    outdir = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    try:
        parsed = parse(Path(sys.argv[1]), sys.argv[2], outdir)
    except ParseError as exc:
        # Only our own message crosses: never a traceback, never a password.
        sys.stdout.write(str(exc))
        sys.exit(ENCRYPTED if isinstance(exc, Encrypted) else PARSE_ERROR)
    json.dump(asdict(parsed), sys.stdout)


main()
