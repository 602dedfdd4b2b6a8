"""The incident workflow of digital city management (GB/T 30428, CJ/T 315): stages, actions,
who may act, and the incident categories with their handling limits.

Pure rules, no I/O except reading the packaged category file. The seven stages of the
standard — 信息收集、案件建立、任务派遣、任务处理、处理反馈、核查结案、综合评价 — become the
stored status values below; a case may also be cancelled (不予立案 / 作废) or sent back by its
handler (退回) for re-dispatch::

    collected ─register→ registered ─dispatch→ dispatched ─accept→ handling ─feed_back→
    reported ─verify→ verified ─close→ closed ─evaluate→ evaluated

    collected ─cancel→ cancelled          reported ─reject→ handling   (verification failed)
    dispatched, handling ─return→ returned ─dispatch→ dispatched, or ─cancel→ cancelled

``cancelled`` and ``evaluated`` are final. Returning, rejecting and cancelling need a reason
(:data:`NEEDS_REASON`).
"""

from __future__ import annotations

import csv
import enum
import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Literal, cast, get_args

from gridmap.domain.access import Role
from gridmap.domain.worktime import WorkCalendar, deadline


class Stage(enum.StrEnum):
    collected = "collected"    # 信息收集: reported by a worker, a resident or a camera
    registered = "registered"  # 案件建立: accepted as a case (立案)
    dispatched = "dispatched"  # 任务派遣: sent to a grid / responsible unit; the clock starts
    handling = "handling"      # 任务处理: the handler has accepted it
    reported = "reported"      # 处理反馈: the handler reports it done (fed back)
    verified = "verified"      # 核查结案 (核查): checked on site
    closed = "closed"          # 核查结案 (结案): closed by the centre
    evaluated = "evaluated"    # 综合评价: counted in the evaluation; final
    returned = "returned"      # 退回: sent back by the handler, awaiting re-dispatch
    cancelled = "cancelled"    # 不予立案 / 作废; final


class Action(enum.StrEnum):
    register = "register"
    cancel = "cancel"
    dispatch = "dispatch"
    accept = "accept"
    return_ = "return"
    feed_back = "feed_back"
    reject = "reject"
    verify = "verify"
    close = "close"
    evaluate = "evaluate"


TRANSITIONS: dict[Stage, dict[Action, Stage]] = {
    Stage.collected: {Action.register: Stage.registered, Action.cancel: Stage.cancelled},
    Stage.registered: {Action.dispatch: Stage.dispatched},
    Stage.dispatched: {Action.accept: Stage.handling, Action.return_: Stage.returned},
    Stage.handling: {Action.feed_back: Stage.reported, Action.return_: Stage.returned},
    Stage.reported: {Action.verify: Stage.verified, Action.reject: Stage.handling},
    Stage.verified: {Action.close: Stage.closed},
    Stage.closed: {Action.evaluate: Stage.evaluated},
    Stage.evaluated: {},
    Stage.returned: {Action.dispatch: Stage.dispatched, Action.cancel: Stage.cancelled},
    Stage.cancelled: {},
}

NEEDS_REASON: frozenset[Action] = frozenset({Action.return_, Action.reject, Action.cancel})

_CENTRE = frozenset({Role.admin.value, Role.dispatcher.value})
_HANDLER = _CENTRE | {Role.grid_worker.value}
# Who may take each action; planners, analysts and the public never act on cases.
ACTORS: dict[Action, frozenset[str]] = {
    Action.register: _CENTRE,
    Action.cancel: _CENTRE,
    Action.dispatch: _CENTRE,
    Action.accept: _HANDLER,
    Action.return_: _HANDLER,
    Action.feed_back: _HANDLER,
    Action.reject: _CENTRE,
    Action.verify: _CENTRE,
    Action.close: _CENTRE,
    Action.evaluate: _CENTRE,
}

# Labels for pages. The seven stages carry the standard's names; ``verified`` is the
# standard's 核查结案 stage (checked, awaiting closure) and ``closed`` its outcome, 已结案;
# the side states read as outcomes: 已退回, 已取消.
STAGE_LABELS: dict[Stage, str] = {
    Stage.collected: "信息收集",
    Stage.registered: "案件建立",
    Stage.dispatched: "任务派遣",
    Stage.handling: "任务处理",
    Stage.reported: "处理反馈",
    Stage.verified: "核查结案",
    Stage.closed: "已结案",
    Stage.evaluated: "综合评价",
    Stage.returned: "已退回",
    Stage.cancelled: "已取消",
}

ACTION_LABELS: dict[Action, str] = {
    Action.register: "立案",
    Action.cancel: "取消",
    Action.dispatch: "派遣",
    Action.accept: "接单",
    Action.return_: "退回",
    Action.feed_back: "反馈",
    Action.reject: "核查不通过",
    Action.verify: "核查通过",
    Action.close: "结案",
    Action.evaluate: "评价",
}

_PARTICIPLES: dict[Action, str] = {
    Action.register: "registered", Action.cancel: "cancelled", Action.dispatch: "dispatched",
    Action.accept: "accepted", Action.return_: "returned", Action.feed_back: "fed back",
    Action.reject: "rejected", Action.verify: "verified", Action.close: "closed",
    Action.evaluate: "evaluated",
}


class IllegalTransition(ValueError):
    """An action the case's stage does not allow; ``allowed`` lists the ones it does."""

    def __init__(self, stage: Stage, action: Action, allowed: list[Action]) -> None:
        self.stage = stage
        self.action = action
        self.allowed = allowed
        nxt = ", ".join(a.value for a in allowed) if allowed else f"nothing, {stage} is final"
        case = "a case in handling" if stage == Stage.handling else (
            f"{'an' if stage[0] in 'aeiou' else 'a'} {stage} case")
        super().__init__(f"{case} cannot be {_PARTICIPLES[action]}: allowed next: {nxt}")


class MissingReason(ValueError):
    """Returning, rejecting or cancelling without a reason."""


def allowed_actions(stage: Stage | str) -> list[Action]:
    """The actions a case at *stage* may take next, in workflow order.

    Examples
    --------
    >>> [a.value for a in allowed_actions(Stage.dispatched)]
    ['accept', 'return']
    >>> allowed_actions("evaluated")
    []
    """
    return list(TRANSITIONS[Stage(stage)])


def next_stage(stage: Stage | str, action: Action | str) -> Stage:
    """The stage a case at *stage* moves to when *action* is taken.

    Raises
    ------
    IllegalTransition
        When *stage* does not allow *action*; the message names the allowed ones.

    Examples
    --------
    >>> next_stage(Stage.reported, Action.reject)
    <Stage.handling: 'handling'>
    >>> next_stage("dispatched", "close")
    Traceback (most recent call last):
    ...
    gridmap.domain.incidents.IllegalTransition: a dispatched case cannot be closed: allowed next: accept, return
    """  # noqa: E501
    stage, action = Stage(stage), Action(action)
    moves = TRANSITIONS[stage]
    if action not in moves:
        raise IllegalTransition(stage, action, list(moves))
    return moves[action]


def may_act(role: str, action: Action | str) -> bool:
    """Whether a user holding *role* may take *action*.

    Examples
    --------
    >>> may_act("grid_worker", Action.feed_back), may_act("grid_worker", "close")
    (True, False)
    >>> may_act("planner", "register")
    False
    """
    return role in ACTORS[Action(action)]


def check_reason(action: Action | str, reason: str | None) -> None:
    """Raise :class:`MissingReason` when *action* needs a reason and *reason* is blank.

    Examples
    --------
    >>> check_reason("accept", None)
    >>> check_reason("return", "  ")
    Traceback (most recent call last):
    ...
    gridmap.domain.incidents.MissingReason: return needs a reason
    """
    action = Action(action)
    if action in NEEDS_REASON and not (reason and reason.strip()):
        raise MissingReason(f"{action} needs a reason")


# --- categories --------------------------------------------------------------------------

Kind = Literal["部件", "事件"]  # component (a facility) / event (a situation)
LimitUnit = Literal["working_hours", "working_days", "emergency_hours"]

# Responsible unit types a category may name.
UNIT_TYPES: frozenset[str] = frozenset({
    "环卫", "市政", "城管执法", "交警", "园林", "社区", "水务", "燃气", "供电", "通信",
    "住建", "消防", "市场监管", "生态环境", "公安",
})
# Urgent cases are registered and dispatched within 10 minutes, others within 30.
DISPATCH_MINUTES: dict[bool, int] = {True: 10, False: 30}
# On-site verification after feed-back (Taiyuan rule).
VERIFY_HOURS: dict[str, int] = {"urban": 1, "rural": 2}

COLUMNS = ("code", "kind", "major", "minor", "unit_type", "limit", "limit_unit", "urgent",
           "closing_condition")


@dataclass(frozen=True)
class Category:
    """One incident category (部件/事件, major and minor class) and its handling limit."""

    code: str  # "事件/市容环境/暴露垃圾"
    kind: Kind
    major: str
    minor: str
    unit_type: str
    limit: float
    limit_unit: LimitUnit
    urgent: bool
    closing_condition: str

    @property
    def dispatch_within(self) -> timedelta:
        """How soon after collection the case must be registered and dispatched."""
        return timedelta(minutes=DISPATCH_MINUTES[self.urgent])

    def handle_due(self, dispatched_at: datetime, cal: WorkCalendar) -> datetime:
        """When handling is due for a case of this category dispatched at *dispatched_at*.

        Examples
        --------
        >>> cat = load_categories()["事件/市容环境/暴露垃圾"]  # 1 working day
        >>> cal = WorkCalendar()
        >>> cat.handle_due(datetime(2026, 9, 30, 16, 0, tzinfo=cal.zone), cal).isoformat()
        '2026-10-08T16:00:00+08:00'
        """
        return deadline(dispatched_at, self.limit, self.limit_unit, cal)


def load_categories(path: Path | None = None) -> dict[str, Category]:
    """The incident categories by code, from *path* or the packaged ``categories.csv``.

    The file is UTF-8 CSV (a byte-order mark, as spreadsheets write, is allowed) with the
    columns of :data:`COLUMNS`.

    Raises
    ------
    ValueError
        Naming the file, the line and the problem: a missing column, an unknown kind or unit
        type, a limit that is not a positive number, an unknown limit unit, an urgent flag
        other than true/false, a code that is not kind/major/minor, a duplicate code.

    Examples
    --------
    >>> cats = load_categories()
    >>> c = cats["事件/违法建设/违法建筑"]
    >>> c.unit_type, c.limit, c.limit_unit, c.urgent
    ('城管执法', 15.0, 'working_days', False)
    """
    if path is None:
        source = "categories.csv"
        text = files("gridmap.domain.data").joinpath("categories.csv").read_text("utf-8-sig")
    else:
        source = str(path)
        text = path.read_text(encoding="utf-8-sig")
    return _parse_categories(text, source)


def _parse_categories(text: str, source: str) -> dict[str, Category]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(COLUMNS)}")
    out: dict[str, Category] = {}
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        category = _category(row, f"{source} line {line}")
        if category.code in out:
            raise ValueError(f"{source} line {line} ({category.code}): duplicate code, first "
                             f"on line {first_line[category.code]}")
        out[category.code] = category
        first_line[category.code] = line
    if not out:
        raise ValueError(f"{source}: no categories")
    return out


def _category(row: dict[str, str | None], where: str) -> Category:
    cell = {c: (row.get(c) or "").strip() for c in COLUMNS}
    code = cell["code"]
    where = f"{where} ({code})" if code else where

    def bad(problem: str) -> ValueError:
        return ValueError(f"{where}: {problem}")

    for c in ("code", "kind", "major", "minor", "unit_type", "limit", "limit_unit", "urgent"):
        if not cell[c]:
            raise bad(f"{c} is empty")
    kind = cell["kind"]
    if kind not in get_args(Kind):
        raise bad(f"kind {kind!r} is neither 部件 nor 事件")
    if code != f"{kind}/{cell['major']}/{cell['minor']}":
        raise bad(f"code should be kind/major/minor: {kind}/{cell['major']}/{cell['minor']}")
    if cell["unit_type"] not in UNIT_TYPES:
        raise bad(f"unknown unit type {cell['unit_type']!r}; known: "
                  f"{', '.join(sorted(UNIT_TYPES))}")
    try:
        limit = float(cell["limit"])
    except ValueError:
        raise bad(f"limit {cell['limit']!r} is not a number") from None
    if not (math.isfinite(limit) and limit > 0):
        raise bad(f"limit {cell['limit']} must be a positive number")
    unit = cell["limit_unit"]
    if unit not in get_args(LimitUnit):
        raise bad(f"limit_unit {unit!r} is not one of {', '.join(get_args(LimitUnit))}")
    urgent = cell["urgent"].lower()
    if urgent not in ("true", "false"):
        raise bad(f"urgent {cell['urgent']!r} is neither true nor false")
    return Category(code=code, kind=cast(Kind, kind), major=cell["major"],
                    minor=cell["minor"], unit_type=cell["unit_type"], limit=limit,
                    limit_unit=cast(LimitUnit, unit), urgent=urgent == "true",
                    closing_condition=cell["closing_condition"])


# The deadline a case is held to while it is at a stage: (deadline name, column of the case).
# The overdue queue, the overdue job, KPIs and a case's ``overdue`` all read it from here.
STAGE_DEADLINES: dict[Stage, tuple[str, str]] = {
    Stage.collected: ("dispatch", "dispatch_due"),
    Stage.registered: ("dispatch", "dispatch_due"),
    Stage.returned: ("dispatch", "dispatch_due"),
    Stage.dispatched: ("handling", "handle_due"),
    Stage.handling: ("handling", "handle_due"),
    Stage.reported: ("verification", "verify_due"),
}
