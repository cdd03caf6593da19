"""Hybrid retrieval: BM25 sparse vectors next to the dense ones, fused inside Qdrant."""

import logging

import pytest
from django.conf import settings

from ingestion import index, lexical, pipeline
from ingestion.index import Chunk
from ingestion.parsing import Page
from tests.factories import make_collection, make_document

# The contract both engines are held to (see tests/ingestion/test_engines.py for the rest).
pytestmark = pytest.mark.usefixtures("any_engine")


def put(document_id: int, collection_id: int, texts: list[str], title: str = "T") -> None:
    chunks = [Chunk(chunk_no=n, page=1, text=t) for n, t in enumerate(texts)]
    index.replace(
        collection_id=collection_id,
        document_id=document_id,
        sha256="a" * 64,
        title=title,
        chunks=chunks,
    )


def test_terms_are_lower_cased_stemmed_and_free_of_stop_words() -> None:
    assert lexical.terms("The Runners were RUNNING to the studies of QX-7731") == [
        "runner",
        "run",
        "studi",
        "qx",
        "7731",
    ]


def test_term_ids_are_stable_across_processes() -> None:
    # A salted hash would change on every start and silently break every stored vector.
    assert lexical.term_id("run") == 1518968264


def test_term_weights_saturate_and_are_normalised_by_length() -> None:
    [once], [w1] = lexical.document_vector("pump")
    [thrice], [w3] = lexical.document_vector("pump pump pump")
    assert once == thrice and w1 < w3 < 3 * w1
    ids, weights = lexical.document_vector("pump " + "valve " * 300)
    assert weights[ids.index(once)] < w1  # the same word counts for less in a long chunk


def test_a_query_of_stop_words_has_no_lexical_terms() -> None:
    assert lexical.query_vector("what is the") == ([], [])


@pytest.mark.parametrize("mode", index.MODES)
def test_every_mode_stays_inside_the_given_collections(mode: str) -> None:
    # The out-of-scope chunk is the best match by far, lexically and densely.
    put(1, collection_id=20, texts=["Error QX-7731 means the coolant pump valve is stuck."])
    put(2, collection_id=10, texts=["The cafeteria serves pasta on Fridays."])
    hits = index.search("error QX-7731 coolant pump valve", [10], 5, mode=mode)
    assert {h.collection_id for h in hits} <= {10}
    assert all(h.document_id != 1 for h in hits)


def test_sparse_search_finds_exact_identifiers() -> None:
    put(1, collection_id=10, texts=["Error QX-7731 means the coolant pump valve is stuck."])
    put(2, collection_id=10, texts=["Error QX-7735 means the fan is blocked."])
    put(3, collection_id=10, texts=["Pumps and valves need yearly maintenance."])
    [first, *_] = index.search("QX-7731", [10], 3, mode="sparse")
    assert first.document_id == 1
    assert index.search("QX-7731", [10], 3, mode="hybrid")[0].document_id == 1


def test_a_search_without_lexical_terms_falls_back_to_dense() -> None:
    put(1, collection_id=10, texts=["Anything at all."])
    assert index.search("what is the", [10], 3, mode="sparse") == []
    assert [h.document_id for h in index.search("what is the", [10], 3)] == [1]


def test_scores_are_cosine_similarities_in_fused_order() -> None:
    put(1, collection_id=10, texts=["Refunds take 14 days after the return arrives."])
    put(2, collection_id=10, texts=["The cafeteria serves pasta on Fridays."])
    hits = index.search("How long do refunds take?", [10], 2, mode="dense")
    assert hits[0].document_id == 1
    assert 0.4 < hits[0].score <= 1.0 and hits[1].score < 0.3


def test_one_document_cannot_fill_every_slot() -> None:
    put(
        1,
        collection_id=10,
        texts=[f"Refunds policy, part {n}: refunds take 14 days." for n in range(6)],
    )
    put(2, collection_id=10, texts=["Refund requests go to the billing team."])
    hits = index.search("how long do refunds take", [10], 4)
    assert [h.document_id for h in hits].count(1) == settings.RETRIEVAL_MAX_PER_DOCUMENT == 2
    assert 2 in {h.document_id for h in hits}
    uncapped = index.search("how long do refunds take", [10], 4, per_document=0)
    assert [h.document_id for h in uncapped].count(1) >= 3


def test_chunks_carry_the_section_heading_they_sit_in() -> None:
    pages = [
        Page(1, "Intro text.\n\n## Parental leave\nSixteen weeks, fully paid."),
        Page(2, "It may be split in two blocks.\n# Expenses\nReceipts within 30 days."),
    ]
    chunks = pipeline.chunk(pages)
    assert [(c.page, c.heading) for c in chunks] == [
        (1, ""),
        (1, "Parental leave"),
        (2, "Parental leave"),
        (2, "Expenses"),
    ]


def test_the_heading_is_indexed_with_the_chunk(db) -> None:
    collection = make_collection("Handbook")
    text = (
        b"# Parental leave\n\nSixteen weeks, fully paid.\n\n# Expenses\n\nReceipts within 30 days."
    )
    document = make_document(collection, "handbook.md", text)
    pipeline.ingest(document.pk)
    [hit] = index.search("parental", [collection.pk], 1, mode="sparse")
    assert "Sixteen weeks" in hit.text and "Receipts" not in hit.text


FILLER = "Hotels are booked through the travel desk. Trains are preferred for short trips. "
BOUNDARY = [
    "Chapter two covers bookings and approvals. " * 6,
    FILLER * 3 + "Claims for the meal allowance abroad are paid as follows:",
    "60 euros for each full day and 30 euros for a half day. " + FILLER * 3,
]


def test_a_hit_at_a_chunk_boundary_brings_the_next_chunk_as_context() -> None:
    put(1, collection_id=10, texts=BOUNDARY)
    [hit] = index.search("meal allowance abroad", [10], 1)
    assert hit.chunk_no == 1 and hit.text == BOUNDARY[1]  # the citation is the chunk itself
    assert hit.context == BOUNDARY[1] + "\n" + BOUNDARY[2]  # the model reads on
    assert "60 euros" in hit.context and BOUNDARY[0] not in hit.context


def test_a_hit_whose_terms_sit_mid_chunk_keeps_its_own_text() -> None:
    middle = FILLER * 2 + "The meal allowance abroad is 60 euros. " + FILLER * 2
    put(1, collection_id=10, texts=[FILLER * 3, middle, FILLER * 3])
    [hit] = index.search("meal allowance abroad", [10], 1)
    assert hit.chunk_no == 1 and hit.context == hit.text == middle


def test_a_hit_at_its_start_brings_the_previous_chunk() -> None:
    texts = [FILLER * 3 + "The meal allowance", "abroad is paid per day. " + FILLER * 3]
    put(1, collection_id=10, texts=texts)
    [hit] = index.search("allowance abroad paid", [10], 1, per_document=1)
    assert hit.chunk_no == 1 and hit.context == texts[0] + "\n" + texts[1]


def test_neighbours_come_from_the_searched_collections_only() -> None:
    # Impossible with real ids (a document sits in one collection), but checked all the same:
    # the neighbour's point exists, in another collection.
    sha = "a" * 64
    index.put([index.Source(10, 1, sha, "T", [Chunk(chunk_no=1, page=1, text=BOUNDARY[1])])])
    index.put([index.Source(20, 1, sha, "T", [Chunk(chunk_no=2, page=1, text=BOUNDARY[2])])])
    assert index.count(1) == 2
    [hit] = index.search("meal allowance abroad", [10], 1)
    assert hit.context == BOUNDARY[1]
    [hit] = index.search("meal allowance abroad", [10, 20], 1, per_document=1)
    assert hit.context == BOUNDARY[1] + "\n" + BOUNDARY[2]


def test_neighbours_can_be_switched_off(settings) -> None:
    settings.RETRIEVAL_NEIGHBOURS = False
    put(1, collection_id=10, texts=BOUNDARY)
    [hit] = index.search("meal allowance abroad", [10], 1)
    assert hit.context == hit.text == BOUNDARY[1]


def test_joining_chunks_drops_the_overlap_the_splitter_repeated() -> None:
    assert index.join("One. Two. Three.", "Two. Three. Four.") == "One. Two. Three. Four."
    assert index.join("One.", "Four.") == "One.\nFour."
    # Real chunks from the splitter, with its overlap: joined back, they are the text again.
    text = " ".join(f"Sentence number {n} of the long handbook." for n in range(120))
    first, second, *_ = [c.text for c in pipeline.chunk([Page(1, text)])]
    assert index.join(first, second) in text


RERANK_TEXTS = [
    "Refunds take 14 days after the return arrives.",
    "Refund requests go to the billing team.",
    "Damaged goods are refunded in full.",
    "The cafeteria serves pasta on Fridays.",
    "Returns need the original receipt.",
    "Refunds are paid to the original card.",
]


def test_a_configured_cross_encoder_reorders_the_fused_candidates(settings, tmp_path) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    # No cross-encoder is installable offline here: one is built from the MiniLM weights with a
    # seeded head. Its scores mean nothing; what is tested is that search follows them.
    torch.manual_seed(0)
    CrossEncoder(index.model_path(), num_labels=1, local_files_only=True).save(str(tmp_path))
    for n, text in enumerate(RERANK_TEXTS, start=1):
        put(n, collection_id=10, texts=[text])
    query = "how are refunds paid"
    fused = [h.document_id for h in index.search(query, [10], 6, per_document=0)]
    settings.RERANK_MODEL = str(tmp_path)
    index.reranker.cache_clear()
    try:
        reranked = [h.document_id for h in index.search(query, [10], 6, per_document=0)]
        scores = index.reranker().predict([(query, f"T\n{t}") for t in RERANK_TEXTS])
    finally:
        index.reranker.cache_clear()
    assert reranked == [int(i) + 1 for i in scores.argsort()[::-1]]
    assert reranked != fused and sorted(reranked) == sorted(fused)


def test_a_cross_encoder_that_cannot_be_loaded_leaves_the_fused_order(
    settings, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    for n, text in enumerate(RERANK_TEXTS, start=1):
        put(n, collection_id=10, texts=[text])
    fused = index.search("how are refunds paid", [10], 6, per_document=0)
    settings.RERANK_MODEL = str(tmp_path / "not-downloaded")
    index.reranker.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert index.search("how are refunds paid", [10], 6, per_document=0) == fused
    finally:
        index.reranker.cache_clear()
    assert "cannot be loaded offline" in caplog.text
