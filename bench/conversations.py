"""Conversation search (the sidebar's box) as conversations pile up. Not a test.

    python bench/conversations.py                        # 100, 1,000 and 5,000 conversations
    python bench/conversations.py --sizes 200,2000 --messages 10

One user has the given number of conversations, each of --messages messages; ten other users have
as many again (their messages hold the searched word too: none may be found). Each search
(icontains over titles and message text, the embedded profile's SQLite) is timed against the
sidebar the same chat page loads anyway (pinned plus the 50 most recent, by day: the baseline,
measured in the same run), and checked: every result is the user's own and contains the word.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import setup_django  # noqa: E402

WORDS = [
    "leave", "allowance", "expense", "claim", "travel", "hotel", "contract", "clause", "notice",
    "salary", "review", "laptop", "password", "breach", "report", "manager", "approval", "policy",
    "holiday", "sick", "parental", "remote", "office", "meeting", "budget", "invoice", "supplier",
    "deadline", "training", "onboarding", "pension", "insurance",
]  # fmt: skip
PLANTED = "sabbatical"  # in about one conversation in twenty
OTHERS = 10


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))).capitalize() + "."


def populate(size: int, messages: int, seed: int) -> tuple[object, int]:
    from django.contrib.auth.models import User

    from assistant.models import Conversation, Message

    rng = random.Random(seed)
    owner = User.objects.create(username=f"owner-{seed}")
    others = [User.objects.create(username=f"other-{seed}-{n}") for n in range(OTHERS)]
    planted = 0
    for user in [owner, *others]:
        count = size if user == owner else size // OTHERS
        batch = [Conversation(user=user, title=sentence(rng)[:80]) for _ in range(count)]
        Conversation.objects.bulk_create(batch)
        rows = []
        for conversation in batch:
            plant = rng.random() < 0.05 or user != owner
            planted += int(plant and user == owner)
            for n in range(messages):
                text = sentence(rng) + (f" {PLANTED.upper()} rules?" if plant and n == 1 else "")
                rows.append(Message(conversation=conversation, role="user", content=text))
        Message.objects.bulk_create(rows, batch_size=2000)
    return owner, planted


def timed(repeat: int, call, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="conversations of the user")
    parser.add_argument("--messages", type=int, default=8, help="messages a conversation")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    setup_django(tempfile.mkdtemp(prefix="enclave-bench-"))
    from assistant import conversations

    print(f"{'conversations':>13} {'messages':>9} {'search ms':>10} {'sidebar ms':>11} "
          f"{'ratio':>6} {'found':>6} {'planted':>8}")  # fmt: skip
    for seed, size in enumerate(int(s) for s in args.sizes.split(",")):
        owner, planted = populate(size, args.messages, seed)
        found = conversations.search(owner, PLANTED)
        assert all(c.user_id == owner.pk for c, _ in found), "another user's conversation found"
        assert all(PLANTED in (c.title + m).lower() for c, m in found), "a result does not match"
        assert len(found) == min(planted, conversations.MAX_RESULTS), (len(found), planted)
        search_ms = timed(args.repeat, conversations.search, owner, PLANTED)
        sidebar_ms = timed(args.repeat, conversations.grouped, owner)
        print(f"{size:>13} {size * args.messages:>9} {search_ms:>10.1f} {sidebar_ms:>11.1f} "
              f"{search_ms / sidebar_ms:>5.1f}x {len(found):>6} {planted:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
