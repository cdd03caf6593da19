"""Search: one fused query inside the engine, a per-document cap, neighbouring chunks as context."""

from dataclasses import dataclass
from dataclasses import replace as replace_field

from django.conf import settings

from ingestion import lexical
from ingestion.index.embedder import embed, reranker
from ingestion.index.engine import MODES, Found, Query, ScopeMissing, engine
from ingestion.index.writes import indexed_text, point_id


@dataclass(frozen=True)
class Hit:
    point_id: str
    score: float
    collection_id: int
    document_id: int
    document_sha256: str
    chunk_no: int
    page: int
    title: str
    heading: str
    text: str  # the chunk itself: what a citation points to
    context: str = ""  # what the model reads: the chunk, joined to a neighbour at a boundary


def search(
    query: str,
    collection_ids: list[int],
    k: int,
    *,
    mode: str = "hybrid",
    per_document: int | None = None,
) -> list[Hit]:
    """Hybrid search restricted to the given collections. No filter, no search: ever.

    Hits come in fused rank order, at most `per_document` from one document (default
    RETRIEVAL_MAX_PER_DOCUMENT, 0 for no cap); each hit's score is its passage's cosine
    similarity to the query, comparable across queries (RETRIEVAL_MIN_SCORE is measured on it).
    """
    import numpy as np

    if not collection_ids:
        raise ScopeMissing("search needs at least one collection id")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    sparse = lexical.query_vector(query)
    if not sparse[0]:  # nothing but stop words: no lexical evidence
        if mode == "sparse":
            return []
        mode = "dense"
    cap = settings.RETRIEVAL_MAX_PER_DOCUMENT if per_document is None else per_document
    vector = embed([query])[0]
    # Over-fetch so that capping chunks per document still fills k slots.
    depth = k * 3 if cap else k
    rerank = reranker()
    if rerank is not None:
        depth = max(depth, settings.RERANK_CANDIDATES)
    found = engine().query(
        Query(
            dense=vector,
            sparse=sparse,
            collection_ids=list(collection_ids),
            limit=depth,
            mode=mode,
            candidates=max(depth, settings.RETRIEVAL_CANDIDATES),
            weights=(settings.RETRIEVAL_DENSE_WEIGHT, settings.RETRIEVAL_SPARSE_WEIGHT),
            rrf_k=settings.RETRIEVAL_RRF_K,
            scoped_idf=settings.RETRIEVAL_IDF_SCOPE == "searched",
        )
    )
    if rerank is not None and found:
        pairs = [(query, _indexed(p)) for p in found]
        order = rerank.predict(pairs, batch_size=len(pairs), show_progress_bar=False).argsort()
        found = [found[i] for i in order[::-1]]
    found = _live(found)
    hits: list[Hit] = []
    per_doc: dict[int, int] = {}
    for p in found:
        document_id = int(p.payload["document_id"])
        if cap and per_doc.get(document_id, 0) >= cap:
            continue
        per_doc[document_id] = per_doc.get(document_id, 0) + 1
        hits.append(
            Hit(
                point_id=p.id,
                score=round(float(np.dot(vector, p.dense or [])), 4),
                collection_id=int(p.payload["collection_id"]),
                document_id=document_id,
                document_sha256=p.payload["document_sha256"],
                chunk_no=int(p.payload["chunk_no"]),
                page=int(p.payload["page"]),
                title=p.payload["title"],
                heading=p.payload.get("heading", ""),
                text=p.payload["text"],
            )
        )
        if len(hits) == k:
            break
    if settings.RETRIEVAL_NEIGHBOURS:
        return _with_neighbours(hits, query, {str(c) for c in collection_ids})
    return [replace_field(h, context=h.text) for h in hits]


def _live(found: list[Found]) -> list[Found]:
    """Without the passages of documents being deleted (a worker removes their points soon).
    Points with no document row are kept: evaluate_retrieval's corpus has none."""
    from ingestion.models import Document

    ids = {int(p.payload["document_id"]) for p in found}
    deleting = Document.objects.filter(pk__in=ids, status=Document.Status.DELETING)
    gone = set(deleting.values_list("pk", flat=True))
    return [p for p in found if int(p.payload["document_id"]) not in gone]


def _indexed(found: Found) -> str:
    payload = found.payload
    return indexed_text(payload["title"], payload.get("heading", ""), payload["text"])


EDGE = 0.2  # query terms in a chunk's first or last fifth: the hit sits at a chunk boundary


def _with_neighbours(hits: list[Hit], query: str, scope: set[str]) -> list[Hit]:
    """Give each hit whose matching terms sit at its start or end the previous or next chunk of
    its document as context: what the question is about may go on across the boundary."""

    wanted = set(lexical.terms(query))
    sides: list[tuple[bool, bool]] = []
    for hit in hits:
        words = lexical.terms(hit.text)
        at = [i for i, word in enumerate(words) if word in wanted]
        edge = len(words) * EDGE
        sides.append(
            (
                bool(at) and hit.chunk_no > 0 and at[0] < edge,
                bool(at) and at[-1] >= len(words) - edge,
            )
        )
    wanted_ids = [
        point_id(hit.document_id, hit.document_sha256, hit.chunk_no + step)
        for hit, (before, after) in zip(hits, sides, strict=True)
        for step, side in ((-1, before), (1, after))
        if side
    ]
    found: dict[tuple[int, int], str] = {}
    # By id (ids are derived from document, version and chunk number): a lookup, no scan.
    for p in engine().retrieve(wanted_ids) if wanted_ids else []:
        # Neighbours of an authorised hit are in scope; checked all the same.
        if p.payload.get("collection_id") in scope:
            found[p.payload["document_id"], p.payload["chunk_no"]] = p.payload["text"]
    result = []
    for hit, (before, after) in zip(hits, sides, strict=True):
        context = hit.text
        previous = found.get((hit.document_id, hit.chunk_no - 1)) if before else None
        following = found.get((hit.document_id, hit.chunk_no + 1)) if after else None
        if previous:
            context = join(previous, context)
        if following:
            context = join(context, following)
        result.append(replace_field(hit, context=context))
    return result


def join(first: str, second: str) -> str:
    """Two consecutive chunks as one text, without the overlap the splitter repeated."""
    # The longest end of `first` that `second` starts with (8 characters at least).
    start = first.find(second[:1], max(0, len(first) - len(second)))
    while start != -1 and len(first) - start >= 8:
        if second.startswith(first[start:]):
            return first[:start] + second
        start = first.find(second[:1], start + 1)
    return f"{first}\n{second}"
