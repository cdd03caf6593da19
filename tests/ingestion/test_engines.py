"""The vector-store contract, engine by engine: Qdrant Edge (embedded) and qdrant-client against a
Qdrant server (run here against its local mode, the stand-in: the same requests a server gets).
test_index.py and test_hybrid.py run the search-level contract on both engines too."""

import logging
import math
import random
import threading
import time
from pathlib import Path

import pytest

from ingestion import index
from ingestion.index import writes
from ingestion.index.edge import EdgeEngine
from ingestion.index.engine import Engine, Found, Point, Query, ScopeMissing
from ingestion.index.server import ServerEngine


def make_engine(kind: str, path: Path, **options: int) -> Engine:
    if kind == "edge":
        return EdgeEngine(path / "edge", **options)
    from qdrant_client import QdrantClient

    return ServerEngine(QdrantClient(path=str(path / "server")), "chunks")


@pytest.fixture(params=["edge", "server"])
def engine(request, tmp_path):
    opened = make_engine(request.param, tmp_path)
    yield opened
    opened.close()


def unit(rng: random.Random, size: int = index.VECTOR_SIZE) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(size)]
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


def synthetic(n: int, seed: int = 7, collections: int = 4) -> list[Point]:
    """Points shaped like Enclave's: a dense unit vector, ~20 weighted terms, the payload."""
    rng = random.Random(seed)
    points = []
    for i in range(n):
        terms = sorted(rng.sample(range(1, 400), 20))
        points.append(
            Point(
                id=writes.point_id(i // 5, "s" * 64, i % 5),
                dense=unit(rng),
                sparse=(terms, [round(rng.uniform(0.2, 2.0), 3) for _ in terms]),
                payload={
                    "collection_id": str(10 + i % collections),
                    "document_id": i // 5,
                    "chunk_no": i % 5,
                    "text": f"chunk {i}",
                },
            )
        )
    return points


def ask(rng: random.Random, collections: list[int], mode: str, **options: object) -> Query:
    terms = sorted(rng.sample(range(1, 400), 4))
    return Query(
        dense=unit(rng),
        sparse=(terms, [1.0] * len(terms)),
        collection_ids=collections,
        limit=10,
        mode=mode,
        **options,  # type: ignore[arg-type]
    )


def test_points_are_written_counted_and_read_back(engine: Engine) -> None:
    points = synthetic(40)
    engine.upsert(points)
    engine.upsert(points)  # deterministic ids: a second write overwrites
    assert engine.count() == 40 and engine.count(3) == 5
    [found] = engine.retrieve([points[7].id])
    assert found.payload["document_id"] == 1 and found.payload["chunk_no"] == 2
    assert found.dense is None  # vectors only when asked: a batch job ranks chunks by them
    [found] = engine.retrieve([points[7].id], dense=True)
    cosine = sum(a * b for a, b in zip(found.dense or [], points[7].dense, strict=True))
    assert math.isclose(cosine, 1, rel_tol=1e-3)
    chunk = engine.chunk(1, 2)
    assert chunk is not None and chunk.id == points[7].id and chunk.payload["text"] == "chunk 7"
    assert engine.chunk(1, 99) is None
    assert sorted(engine.document_ids()) == sorted(p.payload["document_id"] for p in points)


def test_delete_keeps_the_points_it_is_told_to_keep(engine: Engine) -> None:
    points = synthetic(20)
    engine.upsert(points)
    engine.delete(1, keep=[points[5].id, points[6].id])
    assert engine.count(1) == 2 and engine.count(2) == 5
    engine.delete(1)
    assert engine.count(1) == 0 and engine.count() == 15


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_no_mode_returns_a_point_outside_the_scope(engine: Engine, mode: str) -> None:
    engine.upsert(synthetic(200))
    rng = random.Random(1)
    for _ in range(10):
        found = engine.query(ask(rng, [11, 13], mode))
        assert found and {p.payload["collection_id"] for p in found} <= {"11", "13"}
        assert all(p.dense is not None and len(p.dense) == index.VECTOR_SIZE for p in found)


@pytest.mark.parametrize("scope", [[], None, ["10"], [10, "11"]])
def test_a_query_without_a_valid_collection_filter_cannot_be_built(scope: object) -> None:
    """Reliability #2: None, [] and non-integer scopes raise instead of searching unfiltered."""
    with pytest.raises(ScopeMissing):
        Query(dense=[0.0] * 384, sparse=([], []), collection_ids=scope, limit=5)  # type: ignore[arg-type]


def ranked(found: list[Found]) -> list[str]:
    return [p.id for p in found]


def test_both_engines_rank_the_same_data_alike(tmp_path: Path) -> None:
    edge, server = make_engine("edge", tmp_path), make_engine("server", tmp_path)
    points = synthetic(300)
    for opened in (edge, server):
        opened.upsert(points)
    rng = random.Random(3)
    overlap = []
    for _ in range(15):
        scope = [10, 12]
        state = rng.getstate()
        for mode in ("dense", "sparse", "hybrid"):
            rng.setstate(state)
            query = ask(rng, scope, mode)
            a, b = ranked(edge.query(query)), ranked(server.query(query))
            if mode == "hybrid":  # fused ranks may tie: the same set, nearly
                overlap.append(len(set(a) & set(b)) / len(a))
            else:
                assert a[:5] == b[:5] and len(set(a) & set(b)) >= 9, mode
    assert sum(overlap) / len(overlap) >= 0.9
    edge.close()
    server.close()


def test_term_statistics_can_cover_the_searched_collections_only(engine: Engine) -> None:
    # Term 7 is in every chunk of collection 20 (a common word there) and in one of collection
    # 10's fifty (a rare, telling word here).
    rng = random.Random(5)
    points = [
        Point(
            id=writes.point_id(n, "t" * 64, 0),
            dense=unit(rng),
            sparse=([7] if n == 0 or n >= 50 else [8 + n], [1.0]),
            payload={"collection_id": "10" if n < 50 else "20", "document_id": n, "chunk_no": 0},
        )
        for n in range(100)
    ]
    engine.upsert(points)
    query = Query(dense=unit(rng), sparse=([7], [1.0]), collection_ids=[10], limit=3, mode="sparse")
    [everywhere] = engine.query(query)
    [searched] = engine.query(Query(**{**query.__dict__, "scoped_idf": True}))
    assert everywhere.id == searched.id == points[0].id
    # IDF = ln(1 + (N - n + 0.5) / (n + 0.5)): 100 chunks, 51 with the term; or 50 and 1.
    assert everywhere.score == pytest.approx(math.log(1 + 49.5 / 51.5), rel=1e-3)
    assert searched.score == pytest.approx(math.log(1 + 49.5 / 1.5), rel=1e-3)


def test_payload_indexes_cover_tenant_document_and_chunk(tmp_path: Path) -> None:
    edge = EdgeEngine(tmp_path / "edge")
    assert edge.payload_indexes() == {"collection_id", "document_id", "chunk_no"}
    edge.close()
    # Local mode ignores payload indexes, so what the server receives is checked.
    from qdrant_client import QdrantClient

    class Recording(QdrantClient):
        created: list[tuple[str, object]] = []

        def create_payload_index(self, collection_name, field_name, field_schema=None, **kw):
            self.created.append((field_name, field_schema))
            return super().create_payload_index(collection_name, field_name, field_schema, **kw)

    server = ServerEngine(Recording(path=str(tmp_path / "server")), "chunks")
    server.count()
    schemas = dict(Recording.created)
    assert set(schemas) == {"collection_id", "document_id", "chunk_no"}
    assert schemas["collection_id"].is_tenant  # type: ignore[attr-defined]
    server.close()


def test_the_server_engine_recreates_an_old_single_vector_collection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "server"))
    client.create_collection(
        "chunks",
        vectors_config=models.VectorParams(size=index.VECTOR_SIZE, distance=models.Distance.COSINE),
    )
    server = ServerEngine(client, "chunks")
    with caplog.at_level(logging.ERROR, logger="ingestion.index.server"):
        server.upsert(synthetic(5))
    assert "old single-vector schema" in caplog.text
    params = client.get_collection("chunks").config.params
    assert set(params.vectors) == {"dense"}  # type: ignore[arg-type]
    assert params.sparse_vectors["lexical"].modifier == models.Modifier.IDF  # type: ignore[index]
    assert server.count() == 5
    server.close()


def test_edge_data_survives_closing_and_reopening(tmp_path: Path) -> None:
    edge = EdgeEngine(tmp_path / "edge")
    edge.upsert(synthetic(30))
    edge.close()
    again = EdgeEngine(tmp_path / "edge")
    assert again.count() == 30 and again.payload_indexes() >= {"collection_id"}
    again.close()


def test_edge_builds_hnsw_in_a_child_while_questions_and_writes_go_on(tmp_path: Path) -> None:
    edge = EdgeEngine(tmp_path / "edge", hnsw_min_points=500)
    points = synthetic(6000, collections=2)
    for start in range(0, len(points), 1000):
        edge.upsert(points[start : start + 1000])
    rng = random.Random(9)
    queries = [ask(rng, [10], "hybrid") for _ in range(20)]
    before = [ranked(edge.query(q)) for q in queries]
    late = synthetic(6010, seed=8)[6000:]  # written while the graph is being built
    optimised: list[bool] = []
    worker = threading.Thread(target=lambda: optimised.append(edge.optimize()))
    writer = threading.Thread(target=lambda: (time.sleep(0.3), edge.upsert(late)))
    gaps, last = [], time.perf_counter()
    worker.start()
    writer.start()
    while worker.is_alive():
        edge.query(queries[len(gaps) % len(queries)])
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    worker.join()
    writer.join()
    assert optimised == [True]
    # Questions were answered all along: no pause anywhere near the build's length.
    assert len(gaps) > 20 and max(gaps) < 0.5, (len(gaps), max(gaps))
    assert edge.indexed_vectors() >= 2 * 6000  # dense HNSW + sparse for what was there
    assert edge.count() == 6010  # the write made during the build is kept
    after = [ranked(edge.query(q)) for q in queries]
    # HNSW is approximate: nearly the same answers as exact search.
    same = sum(len(set(a) & set(b)) for a, b in zip(before, after, strict=True))
    assert same / sum(map(len, before)) >= 0.9
    assert not any(p.name.endswith((".old", ".optimizing")) for p in tmp_path.iterdir())
    assert edge.optimize() is False  # nothing left to index
    edge.close()


def test_edge_recovers_from_a_crash_between_the_optimiser_renames(tmp_path: Path) -> None:
    edge = EdgeEngine(tmp_path / "edge")
    edge.upsert(synthetic(10))
    edge.close()
    (tmp_path / "edge").rename(tmp_path / "edge.old")  # the crash left only the old shard
    (tmp_path / "edge.optimizing").mkdir()  # and a half-made copy
    again = EdgeEngine(tmp_path / "edge")
    assert again.count() == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge"]
    again.close()


@pytest.mark.embedded
def test_searches_go_on_while_a_document_is_embedded_and_written(monkeypatch) -> None:
    """No lock is held across embedding, and readers never see a document half-replaced."""
    index.replace(
        collection_id=10,
        document_id=1,
        sha256="a" * 64,
        title="Travel",
        chunks=[index.Chunk(0, 1, "The meal allowance abroad is 60 euros a day.")],
    )
    searched_while_embedding: list[float] = []
    embed = writes.embed

    def embed_and_search(texts: list[str]) -> list[list[float]]:
        thread = threading.Thread(
            target=lambda: searched_while_embedding.append(
                len(index.search("meal allowance abroad", [10], 3))
            )
        )
        thread.start()
        vectors = embed(texts)
        thread.join(timeout=30)
        assert not thread.is_alive(), "a search waited for the embedding to finish"
        return vectors

    monkeypatch.setattr(writes, "embed", embed_and_search)
    wrong: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            hits = index.search("refund policy days", [20], 5, per_document=0)
            if {h.collection_id for h in hits} - {20}:
                wrong.append("out of scope")
            if not hits and versions:
                wrong.append("the document was missing mid-replace")

    versions: list[str] = []
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for version in range(3):
        sha = str(version) * 64
        index.replace(
            collection_id=20,
            document_id=2,
            sha256=sha,
            title="Refunds",
            chunks=[
                index.Chunk(n, 1, f"Refund policy v{version}: refunds take {n + 10} days.")
                for n in range(4)
            ],
        )
        versions.append(sha)
        if version == 0:
            for thread in readers:
                thread.start()
    stop.set()
    for thread in readers:
        thread.join()
    assert searched_while_embedding and all(n == 1 for n in searched_while_embedding)
    # Between the write of a new version and the drop of the old, both may briefly answer;
    # what must never happen is a gap or a result from elsewhere.
    assert wrong == []
    assert index.count(2) == 4


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_the_worker_builds_hnsw_once_its_queue_drains(people, celery_worker, settings) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from ingestion.models import Document
    from tests.conftest import login, wait_for_documents

    settings.INDEX_HNSW_MIN_POINTS = 20  # read when the shard opens, in this test
    text = " ".join(f"Clause {n} sets the rule for case {n * 7}." for n in range(800))
    login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("rules.txt", text.encode())]},
    )
    document = Document.objects.get()
    wait_for_documents(document)
    assert document.status == Document.Status.READY and document.chunks >= 20
    engine = index.engine()
    assert isinstance(engine, EdgeEngine)
    deadline = time.monotonic() + 60
    while engine.indexed_vectors() < 2 * document.chunks:
        assert time.monotonic() < deadline, "the shard was not optimised after the burst"
        time.sleep(0.2)
    assert [h.document_id for h in index.search("clause 12 rule", [people.legal.pk], 1)] == [
        document.pk
    ]
