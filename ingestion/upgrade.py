"""The embedded index at start-up: open the Edge shard, and rebuild it when it lost its points.

Releases before Qdrant Edge kept qdrant-client's local-mode index in var/qdrant. Its files are
not converted: every ready document is indexed again from its stored file, then the old folder
goes. A shard that was moved aside (see EdgeEngine's message) is rebuilt the same way.
"""

import logging
import shutil
from pathlib import Path

from django.conf import settings

from ingestion import index
from ingestion.models import Document
from ingestion.reconcile import Report, reconcile

log = logging.getLogger(__name__)


def upgrade() -> Report | None:
    """Open the index now, so a locked or damaged shard stops start-up instead of a request, and
    re-queue the ready documents it lacks. Returns what reconcile did, or None when nothing was
    missing. Raises index.IndexUnavailable, whose message says what to do."""
    legacy = Path(settings.LEGACY_QDRANT_PATH)
    path = Path(settings.INDEX_PATH) / settings.QDRANT_COLLECTION
    engine = index.engine()
    ready = Document.objects.filter(status=Document.Status.READY)
    if legacy.exists():
        log.warning(
            "Upgrading the vector index: the old index in %s (qdrant-client local mode) is "
            "replaced by a Qdrant Edge index in %s. Every ready document is indexed again from "
            "its stored file, in the background; until then it is missing from answers. The "
            "old folder is removed.",
            legacy,
            path,
        )
    elif engine.count() == 0 and ready.filter(chunks__gt=0).exists():
        log.warning(
            "The vector index %s is empty but documents are ready: every ready document is "
            "indexed again from its stored file, in the background.",
            path,
        )
    else:
        return None
    report = reconcile(repair=True)
    # Each re-queue committed inside reconcile: a crash before this line re-runs it next start.
    shutil.rmtree(legacy, ignore_errors=True)
    log.warning("Documents queued to be indexed again: %d.", len(report.requeued))
    return report
