"""The one SQL predicate that keeps a caller to their divisions.

A :class:`~gridmap.domain.access.Scope` is a set of code prefixes; a row is in scope when its
division or grid code starts with one of them. Queries written with SQLAlchemy use
:func:`in_scope`; hand-written ``.sql`` files take the same patterns as the ``scope``
parameter (``CAST(:scope AS text[]) IS NULL OR code LIKE ANY(CAST(:scope AS text[]))``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Text, any_, cast, literal, true

from gridmap.domain.access import Scope


def in_scope(column: Any, scope: Scope) -> ColumnElement[bool]:
    """``column LIKE ANY(patterns)``, or TRUE for a caller who sees everything. A NULL code
    (a point outside every grid) is in no one's scope but everything's."""
    patterns = scope.patterns()
    if patterns is None:
        return true()
    return cast(column, Text).like(any_(literal(patterns, ARRAY(Text))))


def scope_param(scope: Scope) -> list[str] | None:
    """The ``scope`` parameter of the ``.sql`` files."""
    return scope.patterns()
