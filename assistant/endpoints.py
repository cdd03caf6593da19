"""The model registry and the policy over it: which model servers may read which collections.

The built-in model is the local vLLM server of the LLM_* settings (named LLM_NAME); admins add
others (ModelEndpoint rows). A collection is *restricted* (on-premises models only) or
*internal* (on-premises models, or external ones the admin approved for it). A question's scope
decides the models allowed to answer it; what the user picked is used only if it is among them.
Every decision is recorded on the query record: the model, its endpoint class, and the rule.
"""

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_noop

from assistant.models import ModelEndpoint
from ingestion.models import Collection

ON_PREMISES, EXTERNAL = ModelEndpoint.Location.ON_PREMISES, ModelEndpoint.Location.EXTERNAL
AUTO = "auto"
RESTRICTED = Collection.Sensitivity.RESTRICTED


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    model: str
    location: str
    context_length: int = 8192
    input_price: Decimal = Decimal(0)  # per million tokens
    output_price: Decimal = Decimal(0)
    hard_questions: bool = False
    key_env: str = ""
    key_file: str = ""
    builtin_key: str = ""
    default: bool = False  # the admin's default (ModelEndpoint.default)
    pk: int | None = None  # None: the built-in model

    @property
    def external(self) -> bool:
        return self.location == EXTERNAL

    def api_key(self) -> str:
        """Read at each use, so a rotated secret file takes effect without a restart."""
        if self.key_file:
            try:
                return Path(self.key_file).read_text().strip()
            except OSError:
                return ""
        if self.key_env:
            return os.environ.get(self.key_env, "")
        return self.builtin_key or "not-needed"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        million = Decimal(1_000_000)
        return (prompt_tokens * self.input_price + completion_tokens * self.output_price) / million


def builtin() -> Endpoint:
    return Endpoint(
        name=settings.LLM_NAME,
        base_url=settings.LLM_BASE_URL,
        model=settings.LLM_MODEL,
        location=ON_PREMISES,
        context_length=settings.LLM_CONTEXT_LENGTH,
        builtin_key=settings.LLM_API_KEY,
    )


def of(row: ModelEndpoint) -> Endpoint:
    return Endpoint(
        name=row.name,
        base_url=row.base_url,
        model=row.model,
        location=row.location,
        context_length=row.context_length,
        input_price=row.input_price,
        output_price=row.output_price,
        hard_questions=row.hard_questions,
        key_env=row.api_key_env,
        key_file=row.api_key_file,
        default=row.default,
        pk=row.pk,
    )


def registered() -> list[Endpoint]:
    """Every enabled model: the built-in first, then the default, then by name."""
    rows = ModelEndpoint.objects.filter(enabled=True).order_by("-default", "name")
    return [builtin(), *(of(row) for row in rows if row.name != settings.LLM_NAME)]


def named(name: str) -> Endpoint | None:
    return next((e for e in registered() if e.name == name), None)


def approved(endpoint: Endpoint) -> set[int]:
    """The ids of the collections an external model was approved for."""
    if endpoint.pk is None:
        return set()
    rows = ModelEndpoint.approved_collections.through.objects.filter(modelendpoint_id=endpoint.pk)
    return set(rows.values_list("collection_id", flat=True))


def may_read(endpoint: Endpoint, collections: Sequence[Collection]) -> bool:
    """On-premises models read anything; an external one only collections that are internal
    and approved for it (a restricted collection, never)."""
    if not endpoint.external:
        return True
    ids = approved(endpoint)
    return all(c.sensitivity != RESTRICTED and c.pk in ids for c in collections)


def allowed(collections: Sequence[Collection]) -> list[Endpoint]:
    return [e for e in registered() if may_read(e, collections)]


def default(candidates: Sequence[Endpoint]) -> Endpoint:
    """The admin's default where allowed, else the built-in (always allowed)."""
    return next((e for e in candidates if e.default), candidates[0])


def auto_offered(candidates: Sequence[Endpoint]) -> bool:
    """ "Auto" means something only when an allowed model takes hard questions."""
    return any(e.hard_questions for e in candidates)


@dataclass
class Decision:
    endpoint: Endpoint
    policy: dict[str, Any]


def decide(collections: Sequence[Collection], picked: str, hard: str = "") -> Decision:
    """The model that answers a question over `collections`: the one picked if the policy
    allows it, else the default. `hard` (Auto only) is why the question may need a larger model
    (routing.hard_reason); Auto then takes an allowed model marked for hard questions."""
    candidates = allowed(collections)
    restricted = [c.pk for c in collections if c.sensitivity == RESTRICTED]
    policy: dict[str, Any] = {"picked": picked or "", "restricted": restricted}
    chosen = default(candidates)
    if picked == AUTO:
        larger = next((e for e in candidates if e.hard_questions and e != chosen), None)
        if hard and larger is not None:
            chosen = larger
            policy["route"] = hard
        else:
            policy["route"] = "default"
    elif picked:
        match = next((e for e in candidates if e.name == picked), None)
        if match is not None:
            chosen = match
        else:
            policy["refused"] = refusal(picked, restricted)
    policy["rule"] = (
        gettext_noop("external model approved for every collection in scope, none restricted")
        if chosen.external
        else gettext_noop("on-premises model: may read every collection")
    )
    policy["model"] = chosen.name
    return Decision(chosen, policy)


def refusal(picked: str, restricted: list[int]) -> str:
    """Why a picked model was not used (recorded; the chat shows the model that answered)."""
    if named(picked) is None:
        return "not a registered, enabled model"
    if restricted:
        return "a restricted collection is in scope: on-premises models only"
    return "not approved for every collection in scope"


def turns_for(
    endpoint: Endpoint, exchanges: Iterable[tuple[str, str, list[int] | None]]
) -> list[tuple[str, str]]:
    """The conversation's earlier turns an endpoint may see: for an external one, only
    exchanges whose every searched collection it may read now (a question asked over a
    restricted collection, and its answer, never travel)."""
    exchanges = list(exchanges)
    if not endpoint.external:
        return [(role, content) for role, content, _ in exchanges]
    ids = {pk for _, _, scope in exchanges for pk in scope or ()}
    readable = Collection.objects.filter(pk__in=ids).exclude(sensitivity=RESTRICTED)
    cleared = set(readable.values_list("pk", flat=True)) & approved(endpoint)
    return [
        (role, content)
        for role, content, scope in exchanges
        if scope is not None and set(scope) <= cleared
    ]


def hard_reason(sources: Sequence[dict], previous: Any = None) -> str:
    """Why Auto would send a question to a larger model, or "": its passages span several
    documents, or the conversation's previous answer failed its grounding check."""
    documents = {s["document_id"] for s in sources}
    if len(documents) >= settings.ROUTE_MIN_DOCUMENTS:
        return f"the passages span {len(documents)} documents"
    grounding = getattr(previous, "grounding", None) or {}
    if grounding.get("unsupported") or grounding.get("dangling"):
        return "the previous answer failed its grounding check"
    return ""
