import pytest

from ingestion import index
from ingestion.index import Chunk

# The contract both engines are held to (see tests/ingestion/test_engines.py for the rest).
pytestmark = pytest.mark.usefixtures("any_engine")


def put(document_id: int, collection_id: int, texts: list[str], sha: str = "a" * 64) -> int:
    chunks = [Chunk(chunk_no=n, page=n + 1, text=t) for n, t in enumerate(texts)]
    return index.replace(
        collection_id=collection_id, document_id=document_id, sha256=sha, title="T", chunks=chunks
    )


def test_search_refuses_to_run_without_a_collection_filter() -> None:
    """Reliability #2."""
    with pytest.raises(index.ScopeMissing):
        index.search("anything", [], 5)


def test_search_stays_inside_the_given_collections() -> None:
    put(1, collection_id=10, texts=["The cafeteria serves pasta on Fridays."])
    put(2, collection_id=20, texts=["The cafeteria serves fish on Fridays."])
    hits = index.search("what does the cafeteria serve on Friday", [10], 10)
    assert hits and {h.collection_id for h in hits} == {10}
    both = index.search("what does the cafeteria serve on Friday", [10, 20], 10)
    assert {h.collection_id for h in both} == {10, 20}


def test_every_point_carries_the_provenance_payload() -> None:
    put(3, collection_id=10, texts=["alpha", "beta"], sha="b" * 64)
    [hit] = [h for h in index.search("beta", [10], 5) if h.text == "beta"]
    assert (hit.document_id, hit.document_sha256, hit.chunk_no, hit.page) == (3, "b" * 64, 1, 2)
    assert hit.point_id == index.point_id(3, "b" * 64, 1)


def test_point_ids_are_deterministic() -> None:
    assert index.point_id(1, "x", 0) == index.point_id(1, "x", 0)
    assert index.point_id(1, "x", 0) != index.point_id(1, "y", 0)
    assert index.point_id(1, "x", 0) != index.point_id(2, "x", 0)


def test_writing_the_same_document_twice_never_duplicates() -> None:
    put(4, collection_id=10, texts=["one", "two", "three"])
    put(4, collection_id=10, texts=["one", "two", "three"])
    assert index.count(4) == 3


def test_replace_drops_points_of_the_older_version() -> None:
    put(5, collection_id=10, texts=["old one", "old two", "old three"], sha="1" * 64)
    put(5, collection_id=10, texts=["new one"], sha="2" * 64)
    assert index.count(5) == 1
    assert [h.text for h in index.search("one", [10], 10)] == ["new one"]


def test_delete_removes_every_point_and_leaves_others() -> None:
    put(6, collection_id=10, texts=["a", "b"])
    put(7, collection_id=10, texts=["c"])
    index.delete(6)
    assert index.count(6) == 0
    assert index.count(7) == 1


def test_one_index_holds_everything() -> None:
    put(8, collection_id=10, texts=["x"])
    put(9, collection_id=30, texts=["y"])
    assert index.engine().count() == 2
