"""Photos of incidents: the image files under the deployment's photo folder, and their rows.

Why files and not large objects: photos are most of the bytes an incident system keeps
(~100,000 cases a year in a district, a few 1–3 MB photos each), and kept out of PostgreSQL
they leave its backups, replication and vacuum small, can live on cheaper disks (or a shared
mount when several machines serve), and are streamed to the client by the operating system
without holding a database connection. The rows hold what is needed to trust a file: the case
and the timeline step it came with, its type checked from its content, its size and digest.

A photo is written in two moves so that a step and its photos stay all or nothing:
:meth:`PhotoFiles.stage` writes each image to a temporary file (nothing is visible yet), the
step's transaction inserts the rows and calls :meth:`Staged.place` as its last act (an atomic
rename into place); if anything fails before the commit — or the commit itself —
:meth:`Staged.discard` removes what was written. A file without a row can only be left by a
machine that stops between the rename and the commit; a row never points at a missing file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from gridmap.domain.photos import EXTENSIONS, Photo
from gridmap.store import tables

photo_t = tables.incident_photo


@dataclass
class Staged:
    """Photos written to temporary files, waiting for their transaction."""

    folder: Path
    items: list[tuple[str, Photo, Path]] = field(default_factory=list)  # id, photo, temp
    placed: list[Path] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [i for i, _, _ in self.items]

    def rows(self, incident_id: str, event_id: int, taken_by: str | None
             ) -> list[dict[str, Any]]:
        return [{"id": i, "incident_id": incident_id, "event_id": event_id,
                 "media_type": p.media_type, "bytes": len(p.data), "width": p.width,
                 "height": p.height, "sha256": p.sha256, "taken_by": taken_by}
                for i, p, _ in self.items]

    def place(self) -> None:
        """Move the files into place (call last in the transaction that adds their rows)."""
        for photo_id, photo, temp in self.items:
            final = path_of(self.folder, photo_id, photo.media_type)
            os.replace(temp, final)
            self.placed.append(final)

    def discard(self) -> None:
        """Remove what was written (the transaction failed)."""
        for _, _, temp in self.items:
            temp.unlink(missing_ok=True)
        for final in self.placed:
            final.unlink(missing_ok=True)


class PhotoFiles:
    """The photo folder: ``<folder>/<first two hex digits of the id>/<id>.<jpg|png|webp>``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def stage(self, photos: Sequence[Photo]) -> Staged:
        staged = Staged(self.folder)
        try:
            for photo in photos:
                photo_id = uuid.uuid4().hex
                final = path_of(self.folder, photo_id, photo.media_type)
                final.parent.mkdir(parents=True, exist_ok=True)
                temp = final.with_name(f".{final.name}.part")
                with open(temp, "xb") as out:
                    out.write(photo.data)
                    out.flush()
                    os.fsync(out.fileno())
                staged.items.append((photo_id, photo, temp))
        except BaseException:
            staged.discard()
            raise
        return staged

    def path(self, photo_id: str, media_type: str) -> Path:
        return path_of(self.folder, photo_id, media_type)

    def files(self) -> Iterator[tuple[str, Path, float]]:
        """Every file in the folder's two-digit subfolders, as (the photo id its name
        gives, path, modification time): placed photos and staged ``.part`` files alike."""
        if not self.folder.is_dir():
            return
        for sub in sorted(self.folder.iterdir()):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for path in sorted(sub.iterdir()):
                if path.is_file():
                    photo_id = path.name.lstrip(".").split(".", 1)[0]
                    yield photo_id, path, path.stat().st_mtime


def path_of(folder: Path, photo_id: str, media_type: str) -> Path:
    return folder / photo_id[:2] / f"{photo_id}.{EXTENSIONS[media_type]}"


def insert_photos(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(photo_t), rows)


def known_ids(conn: Connection, photo_ids: Sequence[str]) -> set[str]:
    """Those of *photo_ids* that have a row."""
    if not photo_ids:
        return set()
    return set(conn.execute(select(photo_t.c.id).where(photo_t.c.id.in_(list(photo_ids))))
               .scalars())


def read_photos(conn: Connection, incident_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The photos of some cases, oldest first (callers have checked the cases are visible)."""
    if not incident_ids:
        return []
    c = photo_t.c
    rows = conn.execute(select(c.id, c.incident_id, c.event_id, c.media_type, c.bytes,
                               c.width, c.height, c.taken_by, c.at)
                        .where(c.incident_id.in_(list(incident_ids)))
                        .order_by(c.at, c.id)).mappings()
    return [dict(r) for r in rows]


def read_photo(conn: Connection, incident_id: str, photo_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(photo_t).where(photo_t.c.incident_id == incident_id,
                                             photo_t.c.id == photo_id)).mappings().first()
    return dict(row) if row else None
