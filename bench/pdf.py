"""PDF benchmark: the parse child's PDFium path (`ingestion/parsing/pdf.py`) against pypdf, the
parser it replaced, on the same files in the same run. Prints per engine how many files parse,
pages, characters and pages/s, and the ratio. Not a test: run it by hand.

    python bench/pdf.py                  # every PDF under ../shared/fixtures/long-pdfs (59)
    python bench/pdf.py --files 10       # the first 10 of them, in path order
    python bench/pdf.py PATH...          # other PDFs, or folders searched for them

Each file is parsed by each engine in a child process under the app's default limits
(PARSE_TIMEOUT_SECONDS 120 s, PARSE_MEMORY_MB 1024), the engines taking turns file by file so
load from elsewhere on the machine falls on both alike. Seconds are the parse call inside the
child with the engine's import (each document pays it), not the interpreter's start. pypdf runs
as the previous parser did: its text layer, OCR of a page's images where it has no usable text
(the same Tesseract as the new path). Characters leave out whitespace, so line breaks do not
count. The ratios are over the files both engines parse.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LONG_PDFS = ROOT.parent / "shared" / "fixtures" / "long-pdfs"
TIMEOUT, MEMORY_MB = 120, 1024  # the app's defaults for the parse child
ENGINES = ("pypdf", "pdfium")


def parse_with_pypdf(path: Path) -> list[str]:
    """The previous parser, as it was: pypdf's limits included."""
    import logging

    from pypdf import PdfReader

    from ingestion.parsing import pdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise ValueError("encrypted")
    texts = []
    for page in reader.pages:
        text = page.extract_text() or ""
        if not pdf.usable(text):
            try:
                images = [image.image for image in page.images if image.image is not None]
            except Exception:
                images = []
            scanned = "\n".join(pdf.ocr(image) for image in images)
            text = scanned if pdf.usable(scanned) else text
        texts.append(text)
    return texts


def parse_with_pdfium(path: Path) -> list[str]:
    from ingestion.parsing.pdf import parse_pdf

    return [page.text for page in parse_pdf(path)]


def child(engine: str, path: Path) -> None:
    limit = MEMORY_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, str(ROOT))
    from ingestion.parsing import pdf

    ocr, scanned = pdf.ocr, []  # OCR takes seconds a page: files with it are told apart
    pdf.ocr = lambda image: scanned.append(1) or ocr(image)  # type: ignore[assignment]
    parse = parse_with_pypdf if engine == "pypdf" else parse_with_pdfium
    start = time.perf_counter()
    try:
        texts = parse(path)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:100]}"}))
        return
    seconds = time.perf_counter() - start
    chars = sum(len("".join(text.split())) for text in texts)
    result = {"pages": len(texts), "chars": chars, "seconds": seconds, "ocr": bool(scanned)}
    print(json.dumps(result))


def run(engine: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--child", engine, str(path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"longer than {TIMEOUT} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"child exited {done.returncode} (memory limit or crash)"}
    return json.loads(lines[-1])


def pdfs(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("*.pdf")) if path.is_dir() else [path]
    return found


def rate(results: list[dict]) -> float:
    seconds = sum(r["seconds"] for r in results)
    return sum(r["pages"] for r in results) / seconds if seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help=f"PDFs or folders ({LONG_PDFS})")
    parser.add_argument("--files", type=int, default=0, help="only the first N files (0: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.paths[0])
        return
    files = pdfs(args.paths or [LONG_PDFS])
    files = files[: args.files] if args.files else files
    if not files:
        sys.exit(f"No PDFs found (is {LONG_PDFS} there?)")
    from importlib.metadata import version

    names = {
        "pypdf": f"pypdf {version('pypdf')} (previous)",
        "pdfium": f"PDFium, pypdfium2 {version('pypdfium2')} (now)",
    }
    print(f"{len(files)} PDFs; limits {TIMEOUT} s and {MEMORY_MB} MB per file and engine\n")
    results: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
    for path in files:
        line = []
        for engine in ENGINES:
            result = run(engine, path)
            results[engine].append(result)
            line.append(
                f"{engine} {result['error']}"
                if "error" in result
                else f"{engine} {result['pages']} pages {result['seconds']:.2f} s"
            )
        print(f"{path.name}: " + " | ".join(line), flush=True)

    print("\n| engine | parsed | pages | characters | seconds | pages/s |")
    print("|---|---|---|---|---|---|")
    for engine in ENGINES:
        ok = [r for r in results[engine] if "error" not in r]
        print(
            f"| {names[engine]} | {len(ok)}/{len(files)} | {sum(r['pages'] for r in ok)} "
            f"| {sum(r['chars'] for r in ok)} | {sum(r['seconds'] for r in ok):.1f} "
            f"| {rate(ok):.1f} |"
        )
    both = [i for i in range(len(files)) if all("error" not in results[e][i] for e in ENGINES)]
    old, new = ([results[e][i] for i in both] for e in ENGINES)
    old_chars, new_chars = sum(r["chars"] for r in old), sum(r["chars"] for r in new)
    print(f"\non the {len(both)} files both parse ({sum(r['pages'] for r in new)} pages):")
    print(f"PDFium / pypdf pages/s: {rate(new) / max(rate(old), 1e-9):.1f}x")
    print(f"PDFium / pypdf characters: {new_chars / max(old_chars, 1):.3f}")
    text = [i for i in both if not any(results[e][i]["ocr"] for e in ENGINES)]
    old, new = ([results[e][i] for i in text] for e in ENGINES)
    print(
        f"without files where a page went through OCR ({len(both) - len(text)}): pypdf "
        f"{rate(old):.1f}, PDFium {rate(new):.1f} pages/s, {rate(new) / max(rate(old), 1e-9):.1f}x"
    )
    for engine in ENGINES:
        for path, result in zip(files, results[engine], strict=True):
            if "error" in result:
                print(f"{engine} failed on {path.name}: {result['error']}")


if __name__ == "__main__":
    main()
