"""Who may see what: roles, the divisions they hold, and how personal data is masked.

Pure rules, no I/O. A caller holds one :class:`Role` on a set of division codes (county,
township, community: 12 digits; grid: 15). Because the codes nest by prefix (county 6 digits
→ township 9 → community 12 → grid 15), the divisions a caller holds are a set of code
prefixes, and a row is in scope when its code starts with one of them. The store turns a
:class:`Scope` into one SQL predicate with the prefixes as a bound parameter.

What each role may read is a set of :class:`Resource` (``POLICY``); how the
personal fields of what it reads are shown is a :class:`FieldRules` per role (``FIELDS``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gridmap.domain.codes import division_level
from gridmap.domain.layers import CARE_FLAGS


class Role(enum.StrEnum):
    admin = "admin"
    planner = "planner"
    dispatcher = "dispatcher"
    grid_worker = "grid_worker"
    analyst = "analyst"
    public = "public"  # not signed in


class Resource(enum.StrEnum):
    boundaries = "boundaries"  # townships, communities, grids: geometry, codes, names
    counts = "counts"          # aggregates: households, residents, coverage and checks
    facilities = "facilities"
    households = "households"  # household rows
    workers = "workers"        # grid workers with their phones
    incidents = "incidents"    # incident rows
    users = "users"            # accounts and the audit log


# What a signed-in role may read, within its divisions. The public's row comes from the
# deployment's settings (``Settings.public``), boundaries only by default.
POLICY: dict[Role, frozenset[Resource]] = {
    Role.admin: frozenset(Resource),
    Role.planner: frozenset(Resource) - {Resource.users},
    Role.dispatcher: frozenset(Resource) - {Resource.users},
    Role.grid_worker: frozenset(Resource) - {Resource.users},
    Role.analyst: frozenset(Resource) - {Resource.users},
    Role.public: frozenset({Resource.boundaries}),
}
PUBLIC_CHOICES = (Resource.boundaries, Resource.counts, Resource.facilities)


class Show(enum.StrEnum):
    full = "full"
    masked = "masked"      # 张*, 138****5678
    building = "building"  # an address cut to its building: 翠华路152号晋昌社区1号楼
    hidden = "hidden"      # left out (care flags: counts per grid only)


@dataclass(frozen=True)
class FieldRules:
    """How one role sees personal fields."""

    household_name: Show = Show.full
    household_phone: Show = Show.full
    address: Show = Show.full
    care_flags: Show = Show.full
    worker_contact: Show = Show.full  # a worker's name and phone
    incident_description: Show = Show.full
    reporter: Show = Show.full  # who reported an incident, and how to call them back

    def unmasked(self, *fields: str) -> bool:
        """Whether any of *fields* is shown in full (such a read is audited)."""
        return any(getattr(self, f) == Show.full for f in fields)


FIELDS: dict[Role, FieldRules] = {
    Role.admin: FieldRules(),
    Role.planner: FieldRules(),
    Role.grid_worker: FieldRules(),
    # routes by building and calls the grid's worker: no resident's full identity
    Role.dispatcher: FieldRules(household_name=Show.masked, household_phone=Show.masked,
                                address=Show.building, care_flags=Show.hidden),
    # statistics: points and counts, nobody's identity
    Role.analyst: FieldRules(household_name=Show.hidden, household_phone=Show.hidden,
                             address=Show.hidden, care_flags=Show.hidden,
                             worker_contact=Show.masked, incident_description=Show.hidden,
                             reporter=Show.hidden),
    Role.public: FieldRules(household_name=Show.hidden, household_phone=Show.hidden,
                            address=Show.hidden, care_flags=Show.hidden,
                            worker_contact=Show.hidden, incident_description=Show.hidden,
                            reporter=Show.hidden),
}

GRANT_CODE = re.compile(r"^([0-9]{12}|[0-9]{15})$")


def code_prefix(code: str) -> str:
    """The prefix every code inside a division or grid starts with.

    Examples
    --------
    >>> code_prefix("610199000000"), code_prefix("610199001000")
    ('610199', '610199001')
    >>> code_prefix("610199001002"), code_prefix("610199001002003")
    ('610199001002', '610199001002003')
    """
    if not GRANT_CODE.match(code):
        raise ValueError(f"{code!r} is neither a 12-digit division code nor a 15-digit grid "
                         "code")
    if len(code) == 15:
        return code
    return {"county": code[:6], "township": code[:9], "community": code}[division_level(code)]


@dataclass(frozen=True)
class Scope:
    """The code prefixes a caller holds; ``everything`` for the admin and the public."""

    prefixes: tuple[str, ...] = ()
    everything: bool = False

    @classmethod
    def of(cls, codes: Iterable[str]) -> Scope:
        prefixes = sorted({code_prefix(c) for c in codes})
        # a prefix inside another adds nothing
        kept = tuple(p for p in prefixes if not any(p != q and p.startswith(q)
                                                    for q in prefixes))
        return cls(kept)

    def covers(self, code: str | None) -> bool:
        """Whether a row with this division or grid code is in scope.

        Examples
        --------
        >>> s = Scope.of(["610199001000"])
        >>> s.covers("610199001002"), s.covers("610199001002003"), s.covers("610199002001")
        (True, True, False)
        >>> s.covers(None), Scope(everything=True).covers(None)
        (False, True)
        """
        if self.everything:
            return True
        return code is not None and code.startswith(self.prefixes)

    def overlaps(self, code: str) -> bool:
        """Whether a division or grid shares rows with the scope (it is inside the scope,
        or holds part of it).

        Examples
        --------
        >>> s = Scope.of(["610199001002003"])
        >>> s.overlaps("610199001002"), s.overlaps("610199000000"), s.overlaps("610199002000")
        (True, True, False)
        """
        if self.everything:
            return True
        own = code_prefix(code)
        return any(own.startswith(p) or p.startswith(own) for p in self.prefixes)

    def patterns(self) -> list[str] | None:
        """LIKE patterns for SQL (``code LIKE ANY(:scope)``); None: no restriction."""
        return None if self.everything else [p + "%" for p in self.prefixes]


EVERYTHING = Scope(everything=True)


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and the last four digits.

    Examples
    --------
    >>> mask_phone("13812345678")
    '138****5678'
    >>> mask_phone("029-8888")
    '***8888'
    """
    if phone is None:
        return None
    digits = re.sub(r"[^0-9]", "", phone)
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 4, 3) + digits[-4:]


def mask_name(name: str | None) -> str | None:
    """Keep the family name (the first character, or the first word of a Latin name).

    Examples
    --------
    >>> mask_name("张三"), mask_name("欧阳娜娜"), mask_name("Anna Virtanen")
    ('张*', '欧***', 'Anna *')
    """
    if not name:
        return name
    if " " in name.strip():
        return name.split()[0] + " *"
    return name[0] + "*" * (len(name) - 1)


def address_to_building(address: str | None) -> str | None:
    """The address up to its building: unit, floor and room dropped.

    Examples
    --------
    >>> address_to_building("翠华路152号晋昌社区1号楼101室")
    '翠华路152号晋昌社区1号楼'
    >>> address_to_building("长安路8号3栋2单元502")
    '长安路8号3栋'
    >>> address_to_building("Mannerheimintie 5 A 12")
    'Mannerheimintie 5'
    """
    if not address:
        return address
    for marker in ("号楼", "栋", "幢", "座"):
        at = address.rfind(marker)
        if at >= 0:
            return address[:at + len(marker)]
    latin = re.match(r"^(.*?\d+[A-Za-z]?)\b", address)
    if latin and not re.search(r"[\u4e00-\u9fff]", address):
        return latin.group(1)
    at = address.rfind("号")
    return address[:at + 1] if at >= 0 else address


def show(value: str | None, how: Show, *, kind: str) -> str | None:
    """*value* as *how* says (``kind``: name, phone or address)."""
    if how == Show.full or value is None:
        return value
    if how == Show.hidden:
        return None
    if how == Show.building:
        return address_to_building(value)
    return mask_phone(value) if kind == "phone" else mask_name(value)


HOUSEHOLD_FIELDS = {"head_name": ("household_name", "name"),
                    "phone": ("household_phone", "phone"), "address": ("address", "address")}


def household_view(row: dict[str, object], rules: FieldRules) -> dict[str, object]:
    """A household record as *rules* let it be seen: hidden fields left out, the rest
    masked or whole.

    Examples
    --------
    >>> row = {"id": "H1", "head_name": "张三", "phone": "13812345678",
    ...        "address": "翠华路152号晋昌社区1号楼101室", "disabled": True}
    >>> household_view(row, FIELDS[Role.dispatcher])
    {'id': 'H1', 'head_name': '张*', 'phone': '138****5678', 'address': '翠华路152号晋昌社区1号楼'}
    >>> household_view(row, FIELDS[Role.analyst])
    {'id': 'H1'}
    """
    out: dict[str, object] = {}
    for key, value in row.items():
        if key in HOUSEHOLD_FIELDS:
            rule, kind = HOUSEHOLD_FIELDS[key]
            how = getattr(rules, rule)
            if how != Show.hidden:
                out[key] = show(value if isinstance(value, str) else None, how, kind=kind)
        elif key in CARE_FLAGS:
            if rules.care_flags == Show.full:
                out[key] = value
        else:
            out[key] = value
    return out


def household_fields_shown(rules: FieldRules) -> set[str]:
    """The personal household fields *rules* show in full (reading them is audited)."""
    full = {k for k, (rule, _) in HOUSEHOLD_FIELDS.items() if getattr(rules, rule) == Show.full}
    return full | (set(CARE_FLAGS) if rules.care_flags == Show.full else set())


def worker_view(worker: dict[str, object], rules: FieldRules) -> dict[str, object] | None:
    """A grid worker's name and phone as *rules* let them be seen (None: not at all)."""
    how = rules.worker_contact
    if how == Show.hidden:
        return None
    return {**worker, "name": show(str(worker.get("name") or ""), how, kind="name"),
            "phone": show(str(worker.get("phone") or ""), how, kind="phone")}
