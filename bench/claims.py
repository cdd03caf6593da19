"""Claim-check benchmark: does assistant/grounding.check() flag answers with a planted wrong
value, and leave correct restatements alone? Against today's rule (before values were
checked: a sentence is flagged only when its words are far from its passages), in the same run,
on the same answers. Prints catch and false-flag rates and the ratios. Not a test: run it by hand.

    python bench/claims.py                  # every SciFact abstract with evidence (182)
    python bench/claims.py --passages 20    # fewer

Two sets of answers:
- Handbook: the demo handbook (ingestion/demo/handbook) parsed and chunked by the real pipeline;
  answers written by hand, as a model would phrase them, each checked against the chunks of its
  document: correct ones restate figures in other forms (words for digits, €45 for 45 euros,
  March 31 for 31 March), planted ones change one number, date or name.
- SciFact: sentences of the abstracts that have evidence in ../shared/eval/scifact, each
  checked against its abstract and the next four (as if retrieved with it). Generated with a
  seed, by rules of this file, not by the checker's own parser: a correct answer rewrites every
  figure (small integers as words, 1,234 <-> 1234, 1.4 -> 1.40, 5% -> 5 percent) after "According
  to the study, "; a planted one changes one digit of one figure, or puts a capitalised word
  (a name, an acronym) from another abstract in place of one, so that the planted value is in
  none of the five passages. Also, outside the target: a figure swapped for another figure of
  the same abstract, which a look-up cannot catch by design.
"""

import argparse
import json
import random
import re
import sys
import tempfile
import time
from decimal import Decimal

from ingest import ROOT, SCIFACT, setup_django

HANDBOOK = ROOT / "ingestion" / "demo" / "handbook"
DISTRACTORS = 4  # other abstracts given with each one, as retrieval would
SENTENCES_PER_ABSTRACT = 2
MIN_WORDS = 6

# (document, answer, planted value or "" for a correct answer)
HANDBOOK_ANSWERS = [
    ("leave-policy.md", "Full-time employees get twenty-seven days of paid annual leave each "
     "calendar year, plus public holidays.", ""),
    ("leave-policy.md", "You can carry over up to 5 unused days into the first quarter; anything "
     "beyond that expires on March 31.", ""),
    ("leave-policy.md", "Absences of more than 3 days must be requested through the HR portal at "
     "least 2 weeks in advance.", ""),
    ("leave-policy.md", "Your line manager approves or declines within five working days.", ""),
    ("leave-policy.md", "During the winter peak, from December 1 to January 15, no more than a "
     "third of a team may be on leave at the same time.", ""),
    ("leave-policy.md", "Report sickness to your manager before 9 am on the first day; from the "
     "4th consecutive day a doctor's note is required.", ""),
    ("leave-policy.md", "Birth parents receive twenty weeks of fully paid leave and the second "
     "parent receives eight weeks.", ""),
    ("leave-policy.md", "The second parent's 8 weeks can be taken in up to three blocks within "
     "the child's first year.", ""),
    ("leave-policy.md", "Full-time employees get 25 days of paid annual leave each year.", "25"),
    ("leave-policy.md", "Up to five unused days may be carried over; anything beyond that "
     "expires on 30 April.", "30 April"),
    ("leave-policy.md", "Leave requests go through the HR portal at least three weeks in "
     "advance.", "three weeks"),
    ("leave-policy.md", "Your line manager decides within ten working days.", "ten"),
    ("leave-policy.md", "During the winter peak (1 December to 15 February) no more than a "
     "third of a team may be on leave.", "15 February"),
    ("leave-policy.md", "Report sickness to your manager before 10:00 on the first day.", "10:00"),
    ("leave-policy.md", "Birth parents receive 24 weeks of fully paid leave.", "24 weeks"),
    ("leave-policy.md", "At Southwind Care, birth parents receive 20 weeks of paid leave.",
     "Southwind"),
    ("security-basics.txt", "Passwords must be at least fourteen characters long, and "
     "multi-factor authentication is mandatory for email and the HR portal.", ""),
    ("security-basics.txt", "Report a lost laptop or a phishing email to the security desk on "
     "extension 4400 within one hour.", ""),
    ("security-basics.txt", "Under GDPR, the supervisory authority must be told within 72 hours "
     "of the company becoming aware of a personal data breach.", ""),
    ("security-basics.txt", "Company laptops are encrypted and lock after 5 minutes of "
     "inactivity.", ""),
    ("security-basics.txt", "Passwords must be at least 12 characters long.", "12"),
    ("security-basics.txt", "Report incidents to the security desk on extension 4040.", "4040"),
    ("security-basics.txt", "Under GDPR the company must notify the supervisory authority "
     "within 48 hours.", "48 hours"),
    ("security-basics.txt", "Under HIPAA the company must notify the authority within 72 hours.",
     "HIPAA"),
    ("security-basics.txt", "Company laptops lock after fifteen minutes of inactivity.",
     "fifteen minutes"),
    ("expenses.html", "The daily meal allowance is €45 in the home country and €60 abroad.", ""),
    ("expenses.html", "Hotel nights are reimbursed up to 140 euros, or 190 euros in capital "
     "cities.", ""),
    ("expenses.html", "Submit claims within thirty days with itemised receipts; claims over "
     "EUR 500 need a second approval from Finance.", ""),
    ("expenses.html", "Second-class rail is the default for journeys under 4 hours.", ""),
    ("expenses.html", "Flights need a director's approval; rail journeys under four hours go "
     "second class.", ""),
    ("expenses.html", "The daily meal allowance abroad is 65 euros.", "65 euros"),
    ("expenses.html", "Hotel nights in capital cities are reimbursed up to €210.", "€210"),
    ("expenses.html", "Claims above 1,000 euros need a second approval from Finance.",
     "1,000 euros"),
    ("expenses.html", "Submit claims within 60 days, with itemised receipts.", "60 days"),
    ("expenses.html", "Hotel nights are reimbursed up to 140 euros, or 180 euros in capital "
     "cities.", "180 euros"),
    ("expenses.html", "Claims above 500 euros need a second approval from Procurement.",
     "Procurement"),
    ("remote-work.pdf", "Staff in administrative and IT roles may work remotely up to 3 days a "
     "week, agreed with their line manager.", ""),
    ("remote-work.pdf", "Up to €300 a year is reimbursed for office furniture.", ""),
    ("remote-work.pdf", "Working from another country is limited to twenty working days per "
     "year and needs prior approval from HR.", ""),
    ("remote-work.pdf", "Administrative and IT staff may work remotely up to four days per week.",
     "four days"),
    ("remote-work.pdf", "Up to 500 euros per year is reimbursed for office furniture.",
     "500 euros"),
    ("remote-work.pdf", "Working from another country is limited to 30 working days per year.",
     "30"),
    ("remote-work.pdf", "Working from abroad needs prior approval from Legal.", "Legal"),
    ("onboarding.docx", "New employees complete the onboarding steps in their first 2 weeks.", ""),
    ("onboarding.docx", "Collect your badge and laptop from the IT desk on day 1, and complete "
     "the data-protection e-learning in week 1.", ""),
    ("onboarding.docx", "The fire safety walk-through is in week two.", ""),
    ("onboarding.docx", "New employees complete these steps in their first three weeks.",
     "three weeks"),
    ("onboarding.docx", "The fire safety walk-through is in week 3.", "3"),
    ("onboarding.docx", "Collect your badge and laptop from the Facilities desk on day 1.",
     "Facilities"),
]  # fmt: skip

SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# A figure on its own: not part of a code or a reference (IL-6, 2q35, injury2-4).
FIGURE = re.compile(r"(?<![\w.,-])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w-]|\.\d)")
DIGITS = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+")
CAPITALISED = re.compile(r"(?<=[a-z,;] )[A-Z][A-Za-z]{2,}\b")


def in_words(n: int) -> str:
    return SMALL[n] if n < 20 else TENS[n // 10 - 2] + (f"-{SMALL[n % 10]}" if n % 10 else "")


def restated(sentence: str) -> str:
    """Every figure in another form, after a lead-in; nothing else changed."""

    def other_form(m: re.Match[str]) -> str:
        figure = m.group()
        if "," in figure:
            return figure.replace(",", "")
        if "." in figure:
            return figure + "0"
        if len(figure) >= 5:
            return f"{int(figure):,}"
        after = sentence[m.end() : m.end() + 1]
        if int(figure) < 100 and not figure.startswith("0") and after not in ("-", "/", ":"):
            return in_words(int(figure))
        return figure

    text = FIGURE.sub(other_form, re.sub(r"(\d)\s?%(?![\w-])", r"\1 percent", sentence))
    if text[1:2].islower():
        text = text[0].lower() + text[1:]
    return f"According to the study, {text}"


def figures(text: str) -> set[Decimal]:
    """Every run of digits in `text`, wherever it stands, as a value; and numbers under 100
    written in words. A planted figure is none of these."""
    found = {Decimal(f.replace(",", "")) for f in DIGITS.findall(text)}
    words = set(re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()))
    return found | {Decimal(n) for n in range(100) if in_words(n) in words}


def planted_figure(sentence: str, passages: str, rng: random.Random) -> tuple[str, str] | None:
    """One digit of one figure changed, so that the new figure is in no passage."""
    known = figures(passages)
    matches = list(FIGURE.finditer(sentence))
    for _ in range(20):
        m = rng.choice(matches)
        digits = [i for i, c in enumerate(m.group()) if c.isdigit()]
        i = rng.choice(digits)
        new_digit = rng.choice([d for d in "0123456789" if d != m.group()[i]])
        if i == digits[0] and new_digit == "0":
            continue
        new = m.group()[:i] + new_digit + m.group()[i + 1 :]
        if Decimal(new.replace(",", "")) not in known:
            return sentence[: m.start()] + new + sentence[m.end() :], new
    return None


def swapped_figure(sentence: str, abstract: str, rng: random.Random) -> tuple[str, str] | None:
    """A figure replaced by another figure of the same abstract."""
    m = rng.choice(list(FIGURE.finditer(sentence)))
    others = sorted({f for f in FIGURE.findall(abstract) if f != m.group()})
    if not others:
        return None
    new = rng.choice(others)
    return sentence[: m.start()] + new + sentence[m.end() :], new


def planted_name(
    sentence: str, passages: str, names: list[str], rng: random.Random
) -> tuple[str, str] | None:
    matches = list(CAPITALISED.finditer(sentence))
    known = passages.lower()
    candidates = [n for n in names if not re.search(rf"\b{n.lower()}\b", known)]
    if not matches or not candidates:
        return None
    m, new = rng.choice(matches), rng.choice(candidates)
    return sentence[: m.start()] + new + sentence[m.end() :], new


def handbook_cases() -> list[dict]:
    from ingestion import pipeline
    from ingestion.parsing import parse_file

    chunks: dict[str, list[dict]] = {}
    for path in sorted(HANDBOOK.iterdir()):
        parsed = parse_file(path, path.suffix, timeout=60, memory_mb=1024)
        chunks[path.name] = [
            {"n": n, "title": path.stem, "text": c.text}
            for n, c in enumerate(pipeline.chunk(parsed.pages), start=1)
        ]
    return [
        {
            "set": "handbook",
            "kind": "planted" if planted else "correct",
            "answer": answer,
            "planted": planted,
            "sources": chunks[document],
        }
        for document, answer, planted in HANDBOOK_ANSWERS
    ]


def scifact_cases(limit: int | None, seed: int) -> list[dict]:
    from assistant import grounding

    corpus = {}
    for line in (SCIFACT / "corpus.jsonl").open():
        row = json.loads(line)
        corpus[row["_id"]] = row
    with_evidence = list(
        dict.fromkeys(json.loads(line)["doc_id"] for line in (SCIFACT / "evidence.jsonl").open())
    )[:limit]
    names = sorted(
        {n for d in with_evidence for n in CAPITALISED.findall(corpus[d]["text"]) if n.isalpha()}
    )
    rng = random.Random(seed)
    cases = []
    for position, doc_id in enumerate(with_evidence):
        near = [with_evidence[(position + k) % len(with_evidence)] for k in range(DISTRACTORS + 1)]
        sources = [
            {"n": n, "title": corpus[d]["title"], "text": corpus[d]["text"]}
            for n, d in enumerate(near, start=1)
        ]
        passages = "\n".join(f"{s['title']}\n{s['text']}" for s in sources)
        abstract = corpus[doc_id]["text"]
        # Whole sentences: the splitter also leaves fragments such as "(Fig. 3)."
        whole = [s for s in grounding.sentences(abstract) if len(s.split()) >= MIN_WORDS]
        with_figures = [s for s in whole if FIGURE.search(s)]
        chosen = rng.sample(with_figures, min(SENTENCES_PER_ABSTRACT, len(with_figures)))
        made: list[tuple[str, tuple[str, str] | None]] = []
        for sentence in chosen:
            made.append(("correct", (restated(sentence), "")))
            made.append(("planted", planted_figure(sentence, passages, rng)))
            made.append(("swapped", swapped_figure(sentence, abstract, rng)))
        named = [s for s in whole if CAPITALISED.search(s)]
        if named:
            made.append(("planted", planted_name(rng.choice(named), passages, names, rng)))
        cases += [
            {
                "set": "scifact",
                "kind": kind,
                "answer": answer,
                "planted": planted,
                "sources": sources,
            }
            for kind, pair in made
            if pair
            for answer, planted in [pair]
        ]
    return cases


def run(cases: list[dict]) -> None:
    from assistant import grounding, prompts

    for case in cases:
        started = time.perf_counter()
        case["new"] = grounding.check(case["answer"], case["sources"]).unsupported
        case["new_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        by_number = {s["n"]: prompts.source_text(s) for s in case["sources"]}
        # Today's rule, as check() ran it: dangling citations dropped, then words compared.
        text, _ = grounding.drop_dangling(case["answer"], set(by_number))
        case["old"] = grounding.unsupported_claims(text, by_number)
        case["old_ms"] = (time.perf_counter() - started) * 1000


def rate(cases: list[dict], rule: str) -> str:
    if not cases:
        return "n/a"
    flagged = sum(1 for c in cases if c[rule])
    return f"{100 * flagged / len(cases):.1f}% ({flagged}/{len(cases)})"


def named(cases: list[dict]) -> str:
    """Planted answers whose flag names the planted value itself."""
    hits = sum(
        1
        for c in cases
        if any(c["planted"].lower() in v.lower() for e in c["new"] for v in e["values"])
    )
    return f"{100 * hits / len(cases):.1f}% ({hits}/{len(cases)})" if cases else "n/a"


def report(cases: list[dict]) -> None:
    print("| set | answers | rule | caught (planted flagged) | false flags (correct flagged) |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("handbook", "scifact", "all"):
        these = [c for c in cases if name in ("all", c["set"])]
        planted = [c for c in these if c["kind"] == "planted"]
        correct = [c for c in these if c["kind"] == "correct"]
        for rule, label in (("new", "values + support (new)"), ("old", "support only (old)")):
            print(
                f"| {name} | {len(planted)} planted, {len(correct)} correct | {label} | "
                f"{rate(planted, rule)} | {rate(correct, rule)} |"
            )
    planted = [c for c in cases if c["kind"] == "planted"]
    correct = [c for c in cases if c["kind"] == "correct"]
    new_caught = sum(1 for c in planted if c["new"]) / len(planted)
    old_caught = sum(1 for c in planted if c["old"]) / len(planted)
    print(f"\ncaught, new: {100 * new_caught:.1f}%, old: {100 * old_caught:.1f}%", end="")
    print(f" ({new_caught / old_caught:.1f}x)" if old_caught else " (old caught none)")
    new_false = sum(1 for c in correct if c["new"]) / len(correct)
    old_false = sum(1 for c in correct if c["old"]) / len(correct)
    print(f"false flags, new: {100 * new_false:.1f}%, old: {100 * old_false:.1f}%")
    print(f"planted value named in the flag (new): {named(planted)}")
    swapped = [c for c in cases if c["kind"] == "swapped"]
    print(
        f"outside the target, a figure swapped for another of the same abstract: caught new "
        f"{rate(swapped, 'new')}, old {rate(swapped, 'old')}"
    )
    new_ms = sorted(c["new_ms"] for c in cases)
    old_ms = sorted(c["old_ms"] for c in cases)
    print(
        f"time per answer, median: new {new_ms[len(new_ms) // 2]:.2f} ms, "
        f"old {old_ms[len(old_ms) // 2]:.2f} ms "
        f"(new / old {new_ms[len(new_ms) // 2] / old_ms[len(old_ms) // 2]:.2f}x)"
    )
    missed = [c for c in planted if not c["new"]]
    wrongly = [c for c in correct if c["new"]]
    for label, these in (("missed", missed), ("false flags", wrongly)):
        if these:
            print(f"\n{label} (first 10):")
            for c in these[:10]:
                print(f"- [{c['set']}] {c['answer']}  (planted: {c['planted']!r}, "
                      f"flagged: {[e['values'] for e in c['new']]})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, help="SciFact abstracts (default: all 182)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    if not SCIFACT.exists():
        sys.exit(f"{SCIFACT} is absent (it exists only in the team's checkouts and CI)")
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        setup_django(var_dir)
        from ingestion import index

        index.embedder()  # loaded once, outside the timings, as a running server has it
        cases = handbook_cases() + scifact_cases(args.passages, args.seed)
        run(cases)
    print(
        f"corpus: {len(HANDBOOK_ANSWERS)} handbook answers, "
        f"{sum(c['set'] == 'scifact' for c in cases)} SciFact answers from "
        f"{args.passages or 'all'} abstracts with evidence (seed {args.seed})\n"
    )
    report(cases)


if __name__ == "__main__":
    main()
