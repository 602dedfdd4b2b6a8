"""What gridmap itself writes into stored records — timeline notes of a case (routing
warnings, the overdue job's warnings and escalations), details of the audit log — kept as
message keys with their values, so that each reader sees them in their own language
(:func:`gridmap.i18n.render_notes`), whichever language the writer spoke.

A record keeps a list of notes as JSON, ``[{"key": "on_edge", "values": {"grids": [...]}}]``,
beside the English text it always kept (``incident_event.note``, ``audit_log.detail``: what
SQL, exports and an older gridmap read). The English template of each key is its catalogue
id, so the catalogue carries the Chinese; a value whose name is a kind of label
(``{stage}``, ``{deadline}``) is shown as its label, a list as its items joined, any other
value as it was written (codes, names, a person's label of an API key: never translated).
Text a person wrote (a dispatcher's note, a reason) is stored as text, shown verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# key → English template; a key, once stored, keeps its meaning (add keys, never reuse one)
NOTES: dict[str, str] = {
    # the first timeline entry of a report (intake.sql)
    "outside_grid": "outside every grid: registered to township {township}; route it to a "
                    "grid (POST …/route)",
    "on_edge": "on the edge of grids {grids} too: check the routing",
    # the overdue job (escalate_overdue.sql)
    "deadline_near": "the {deadline} deadline {at} is near",
    "deadline_passed": "超期督办: the {deadline} deadline {at} has passed",
    # the audit log
    "step": "{stage} → {stage2}",
    "photos": "{count} photo(s)",
    "user_role": "role {role}",
    "key_for": "for {account}: {label}",
    "key_of": "of {account}: {label}",
    "too_many_sign_ins": "too many failed sign-ins",
    "wrong_password": "wrong account name or password",
    "account_disabled": "the account {name} is disabled",
    "read_reporter": "incident reporter",
    "read_worker_names": "worker names (incident KPIs)",
    "read_uncovered": "uncovered {facility_type}@{distance}",
    "read_uncovered_vulnerable": "uncovered {facility_type}@{distance} vulnerable",
    "draft_edit": "edit {seq} ({edit_op})",
    "read_worker_phones": "worker phones",
    "read_address_search": "address search",
    "emergency_circle": "emergency {radius} m around ({lon}, {lat})",
    "emergency_polygon": "emergency {shape} of {vertices} vertices, {km2} km²",
    "emergency_households": "{count} vulnerable households",
    "emergency_worker_phones": "{count} worker phones",
    "emergency_export": "exported as {export}",
    # notes of grid versions (and the audit entries of their publishing)
    "version_import": "import {source}",
    "version_draft": "draft {draft}: {title}",
    "version_draft_noted": "draft {draft}: {title} — {note}",
}
SEPARATOR = "; "  # between the notes of one record, in English


@dataclass(frozen=True)
class Note:
    """One thing gridmap says in a record: a key of :data:`NOTES` and its values."""

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in NOTES:
            raise KeyError(f"no note {self.key!r}: add it to NOTES and the catalogues")

    def stored(self) -> dict[str, Any]:
        """The note as the record's JSON keeps it."""
        return {"key": self.key, "values": dict(self.values)}

    def english(self) -> str:
        """The note as the record's English text (lists joined with commas)."""
        return NOTES[self.key].format(**{name: ", ".join(map(str, v)) if isinstance(
            v, list | tuple) else v for name, v in self.values.items()})


def note(key: str, **values: Any) -> Note:
    """A :class:`Note`, e.g. ``note("user_role", role="dispatcher")``.

    >>> note("step", stage="collected", stage2="registered").english()
    'collected → registered'
    """
    return Note(key, values)


def stored(notes: Note | Sequence[Note]) -> list[dict[str, Any]]:
    return [n.stored() for n in ([notes] if isinstance(notes, Note) else notes)]


def english(notes: Note | Sequence[Note]) -> str:
    """The English text of one note or several (joined with ``; ``)."""
    return SEPARATOR.join(n.english() for n in ([notes] if isinstance(notes, Note)
                                                else notes))
