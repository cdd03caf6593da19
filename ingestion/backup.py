"""Backup and restore of a whole installation.

A backup is a folder: the database (SQLite's online backup API, or pg_dump's custom format), the
uploaded files (MEDIA_ROOT), the vector index (a flushed copy of the Edge shard, or a Qdrant
server's collection snapshot), the embedded profile's generated secret key, and manifest.json:
format, time, profile, row counts and the audit chain's head as the dump holds them, and a
SHA-256 of every file. The manifest is written last: a folder without one is no backup.

Restore checks every checksum first, then brings an empty installation to the backed-up state
and verifies the audit chain against the head in the manifest.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from assistant import audit
from assistant.audit.models import ChainHead
from ingestion import index
from ingestion.index.edge import EdgeEngine
from ingestion.index.server import ServerEngine
from ingestion.reconcile import Report, reconcile

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_DUMP, POSTGRES_DUMP = "database.sqlite3", "database.pgdump"
MEDIA, SHARD, SNAPSHOT, SECRET = "media", "index", "index.snapshot", "secret_key"
CHECKPOINT = "audit_checkpoint.json"  # for `verify_audit --checkpoint` on the restored copy
# A database holding rows of any of these is in use: restore will not overwrite it unforced.
IN_USE = ("auth.user", "ingestion.collection", "ingestion.document", "assistant.queryrecord")
SNAPSHOT_TIMEOUT = 3600.0  # seconds: a large collection's snapshot takes a while to write


class BackupError(Exception):
    """Why a backup or restore cannot go on; the message says what to do."""


# --- backup ----------------------------------------------------------------------------------
def backup(target: Path) -> dict[str, Any]:
    """Write a backup of this installation into `target` (new or empty); return its manifest.

    The database goes first: it is the record of what exists. Files and vectors of documents
    added while the backup runs may come along too; `reconcile_index` tidies them after restore.
    """
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: give a new folder for the backup.")
    engine = index.engine()  # opened first: a running server holding the shard stops us here
    target.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds every document and secret
    counts, head = dump_database(target)
    media = Path(settings.MEDIA_ROOT)
    if media.exists():
        shutil.copytree(media, target / MEDIA)
    else:
        (target / MEDIA).mkdir()
    vectors = dump_index(engine, target)
    if not os.environ.get("SECRET_KEY") and (Path(settings.VAR_DIR) / SECRET).exists():
        # The generated key signs sessions and audit checkpoints: the restored copy keeps both.
        shutil.copy2(Path(settings.VAR_DIR) / SECRET, target / SECRET)
    # The dump's head, signed as audit_checkpoint signs it (the live head may have moved on).
    checkpoint = {**head, "at": timezone.now().isoformat()}
    checkpoint["signature"] = audit.sign(checkpoint, settings.SECRET_KEY)
    (target / CHECKPOINT).write_text(json.dumps(checkpoint, indent=2) + "\n")
    manifest = {
        "format": FORMAT,
        "version": enclave_version(),
        "created_at": timezone.now().isoformat(),
        "profile": {"database": connection.vendor, "index": vectors["engine"]},
        "counts": counts,
        "points": vectors["points"],
        "audit_head": head,
        "files": checksums(target),
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def enclave_version() -> str:
    try:
        return version("enclave")
    except PackageNotFoundError:
        return "unknown"


def dump_database(target: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Copy the database into the backup; return the row counts and chain head of the copy."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        with closing(sqlite3.connect(target / SQLITE_DUMP)) as copy:
            # Online, in one step under a read lock: one moment's state; writers wait meanwhile.
            connection.connection.backup(copy)
            return describe(copy.cursor())
    with transaction.atomic(), connection.cursor() as cursor:
        # pg_dump reads the snapshot of this transaction: the counts describe exactly the dump.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        postgres(
            "pg_dump", "--format=custom", f"--snapshot={snapshot}", "-f", target / POSTGRES_DUMP
        )
        return describe(cursor)


def describe(cursor: Any) -> tuple[dict[str, int], dict[str, Any]]:
    """Rows per table, and the audit chain's head, as the cursor's database holds them."""
    counts = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            cursor.execute(f'SELECT count(*) FROM "{model._meta.db_table}"')  # noqa: S608 (model tables)
            counts[model._meta.label_lower] = int(cursor.fetchone()[0])
    cursor.execute(f'SELECT seq, hash FROM "{ChainHead._meta.db_table}" WHERE id = 1')  # noqa: S608
    row = cursor.fetchone()
    head = {"seq": int(row[0]), "hash": row[1]} if row else {"seq": 0, "hash": audit.GENESIS}
    return counts, head


def postgres(program: str, *args: str | Path) -> None:
    """Run pg_dump or pg_restore against Django's database, the password in the environment."""
    db = connection.settings_dict
    given = {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGPASSWORD": db.get("PASSWORD"),
        "PGDATABASE": db.get("NAME"),
        "PGSSLMODE": (db.get("OPTIONS") or {}).get("sslmode"),
    }
    env = {**os.environ, **{k: str(v) for k, v in given.items() if v}}
    try:
        done = subprocess.run([program, *map(str, args)], env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupError(
            f"{program} is not installed: install the PostgreSQL client of the server's major "
            "version (package postgresql-client)"
        ) from None
    if done.returncode:
        raise BackupError(f"{program} failed: {done.stderr.strip()[-2000:]}")


def dump_index(engine: Any, target: Path) -> dict[str, Any]:
    points = engine.count()
    if isinstance(engine, EdgeEngine):
        engine.copy_to(target / SHARD)
        return {"engine": "edge", "points": points}
    assert isinstance(engine, ServerEngine)
    download_snapshot(engine, target / SNAPSHOT)
    return {"engine": "server", "points": points}


def snapshot_url(engine: ServerEngine, name: str = "") -> str:
    base = f"{settings.QDRANT_URL.rstrip('/')}/collections/{engine.collection}/snapshots"
    return f"{base}/{name}" if name else base


def http_client() -> Any:
    import httpx

    headers = {"api-key": settings.QDRANT_API_KEY} if settings.QDRANT_API_KEY else {}
    return httpx.Client(headers=headers, timeout=httpx.Timeout(30.0, read=SNAPSHOT_TIMEOUT))


def download_snapshot(engine: ServerEngine, path: Path) -> None:
    """Have the server snapshot the collection, stream it here, then delete it there."""
    from qdrant_client import QdrantClient

    # Not the engine's client: its 10 s timeout suits requests, not writing a snapshot.
    client = QdrantClient(
        url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY, timeout=int(SNAPSHOT_TIMEOUT)
    )
    made = client.create_snapshot(engine.collection, wait=True)
    assert made is not None  # wait=True: the description, not a pending operation
    try:
        # qdrant-client reads a download into memory; a snapshot can be gigabytes: stream it.
        with http_client() as http, http.stream("GET", snapshot_url(engine, made.name)) as got:
            got.raise_for_status()
            with path.open("wb") as out:
                for block in got.iter_bytes(1 << 20):
                    out.write(block)
    finally:
        client.delete_snapshot(engine.collection, made.name, wait=True)
        client.close()
    if made.checksum and sha256_of(path) != made.checksum:
        raise BackupError(f"the snapshot {made.name} arrived damaged (checksum differs)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_of(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


# --- restore ---------------------------------------------------------------------------------
def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every file it lists is there unchanged."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} has no {MANIFEST}: not a backup, or one cut short") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is a backup of format {manifest.get('format')}, not {FORMAT}")
    found = checksums(source)
    damaged = sorted(
        name for name in set(found) | set(manifest["files"])
        if found.get(name) != manifest["files"].get(name)
    )  # fmt: skip
    if damaged:
        raise BackupError(
            f"{len(damaged)} files of the backup are missing, changed or extra: "
            + ", ".join(damaged[:10])
        )
    return manifest


def in_use() -> list[str]:
    """What of this installation already holds data: restore would overwrite it."""
    found = []
    tables = set(connection.introspection.table_names())
    for label in IN_USE:
        model = apps.get_model(label)
        if model._meta.db_table in tables and model._default_manager.exists():
            found.append(f"the database has {model._meta.verbose_name_plural}")
    if any(p.is_file() for p in Path(settings.MEDIA_ROOT).rglob("*")):
        found.append(f"the media folder {settings.MEDIA_ROOT} has files")
    if index.engine().count():
        found.append("the vector index has points")
    return found


def restore(source: Path, *, force: bool = False) -> tuple[int, Report]:
    """Bring this installation to the backup's state; return the audit rows verified and what
    a comparison of the database with the restored index found."""
    manifest = read_manifest(source)
    engine = index.engine()  # opened now: a running server holding the shard stops us here
    profile = {"database": connection.vendor, "index": "edge"}
    if isinstance(engine, ServerEngine):
        profile["index"] = "server"
    if manifest["profile"] != profile:
        raise BackupError(
            f"the backup is of a {manifest['profile']} installation, this one is {profile}: "
            "restore into an installation of the same profile (DATABASE_URL, QDRANT_URL)"
        )
    if not force and (used := in_use()):
        raise BackupError(
            "this installation is not empty (" + "; ".join(used) + "). Restore into a new "
            "installation, or give --force to replace everything in it."
        )
    load_database(source)
    load_media(source)
    load_index(source, engine)
    if (source / SECRET).exists() and not os.environ.get("SECRET_KEY"):
        shutil.copy2(source / SECRET, Path(settings.VAR_DIR) / SECRET)  # used from the next start
    return verify(manifest), reconcile(repair=False)


def load_database(source: Path) -> None:
    connection.close()
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        with closing(sqlite3.connect(source / SQLITE_DUMP)) as dump:
            dump.backup(connection.connection)  # every page replaced, schema and triggers too
    else:
        # --clean drops what `migrate` made in the new database; one transaction: all or nothing.
        postgres(
            "pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
            "--single-transaction", "--exit-on-error",
            f"--dbname={connection.settings_dict['NAME']}", source / POSTGRES_DUMP,
        )  # fmt: skip
    connection.close()


def load_media(source: Path) -> None:
    media = Path(settings.MEDIA_ROOT)
    if media.exists():
        for child in media.iterdir():  # emptied, not removed: it may be a mounted volume
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    shutil.copytree(source / MEDIA, media, dirs_exist_ok=True)


def load_index(source: Path, engine: Any) -> None:
    if isinstance(engine, EdgeEngine):
        path = engine.path
        index.close()  # releases the shard's folder lock
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(source / SHARD, path)
        return
    import httpx

    snapshot = source / SNAPSHOT
    with http_client() as http, snapshot.open("rb") as f:
        # priority=snapshot: the snapshot's points replace whatever the collection held.
        done = http.post(
            snapshot_url(engine, "upload"),
            params={"priority": "snapshot", "wait": "true", "checksum": sha256_of(snapshot)},
            files={"snapshot": (snapshot.name, f)},
        )
    try:
        done.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise BackupError(f"the Qdrant server refused the snapshot: {done.text[:500]}") from exc


def verify(manifest: dict[str, Any]) -> int:
    """The restored state is the backed-up one: row counts, points, and an intact audit chain
    that ends exactly at the backed-up head. Returns the audit rows verified."""
    with connection.cursor() as cursor:
        counts, head = describe(cursor)
    differ = sorted(k for k in counts.keys() | manifest["counts"].keys()
                    if counts.get(k) != manifest["counts"].get(k))  # fmt: skip
    if differ:
        raise BackupError(f"restored row counts differ from the backup's: {', '.join(differ)}")
    points = index.engine().count()
    if points != manifest["points"]:
        raise BackupError(
            f"the restored index has {points} points, the backup {manifest['points']}"
        )
    if head != manifest["audit_head"]:
        raise BackupError(
            f"the restored audit chain ends at {head}, the backup's at {manifest['audit_head']}"
        )
    verified, problem = audit.verify(head if head["seq"] else None)
    if problem is not None:
        raise BackupError(f"the restored audit chain is BROKEN after {verified} rows: {problem}")
    return verified
