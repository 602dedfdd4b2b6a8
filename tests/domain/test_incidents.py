from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridmap.domain.access import Role
from gridmap.domain.incidents import (
    ACTION_LABELS,
    ACTORS,
    COLUMNS,
    DISPATCH_MINUTES,
    NEEDS_REASON,
    STAGE_LABELS,
    TRANSITIONS,
    UNIT_TYPES,
    VERIFY_HOURS,
    Action,
    IllegalTransition,
    MissingReason,
    Stage,
    allowed_actions,
    check_reason,
    load_categories,
    may_act,
    next_stage,
)
from gridmap.domain.worktime import WorkCalendar

S, A = Stage, Action

# The workflow written out independently of TRANSITIONS: (from, action) -> to.
EXPECTED: dict[tuple[Stage, Action], Stage] = {
    (S.collected, A.register): S.registered,
    (S.collected, A.cancel): S.cancelled,
    (S.registered, A.dispatch): S.dispatched,
    (S.dispatched, A.accept): S.handling,
    (S.dispatched, A.return_): S.returned,
    (S.handling, A.return_): S.returned,
    (S.handling, A.feed_back): S.reported,
    (S.reported, A.reject): S.handling,
    (S.reported, A.verify): S.verified,
    (S.verified, A.close): S.closed,
    (S.closed, A.evaluate): S.evaluated,
    (S.returned, A.dispatch): S.dispatched,
    (S.returned, A.cancel): S.cancelled,
}


def test_stage_and_action_values() -> None:
    assert {s.value for s in Stage} == {
        "collected", "registered", "cancelled", "dispatched", "handling", "reported",
        "verified", "closed", "evaluated", "returned"}
    assert Action("return") is Action.return_
    assert {a.value for a in Action} == {
        "register", "cancel", "dispatch", "accept", "return", "feed_back", "reject", "verify",
        "close", "evaluate"}
    assert set(TRANSITIONS) == set(Stage)


@pytest.mark.parametrize(("stage", "action"), sorted(EXPECTED))
def test_every_allowed_transition(stage: Stage, action: Action) -> None:
    assert next_stage(stage, action) == EXPECTED[stage, action]
    assert next_stage(stage.value, action.value) == EXPECTED[stage, action]  # stored strings
    assert action in allowed_actions(stage)


DISALLOWED = [(s, a) for s, a in itertools.product(Stage, Action) if (s, a) not in EXPECTED]


@pytest.mark.parametrize(("stage", "action"), DISALLOWED)
def test_every_disallowed_transition_names_the_allowed_ones(stage: Stage,
                                                            action: Action) -> None:
    allowed = [a for (s, a) in EXPECTED if s == stage]
    with pytest.raises(IllegalTransition) as caught:
        next_stage(stage, action)
    err = caught.value
    assert isinstance(err, ValueError)
    assert sorted(err.allowed) == sorted(allowed)
    assert err.stage == stage and err.action == action
    message = str(err)
    assert "cannot be" in message and "allowed next: " in message
    for a in allowed:
        assert a.value in message.split("allowed next: ")[1]


def test_the_message_reads_well() -> None:
    with pytest.raises(IllegalTransition, match=r"^a dispatched case cannot be closed: allowed "
                                                r"next: accept, return$"):
        next_stage(S.dispatched, A.close)
    with pytest.raises(IllegalTransition, match=r"^an evaluated case cannot be returned: allowed "
                                                r"next: nothing, evaluated is final$"):
        next_stage(S.evaluated, A.return_)
    with pytest.raises(IllegalTransition, match=r"^a case in handling cannot be verified: "
                                                r"allowed next: feed_back, return$"):
        next_stage(S.handling, A.verify)


def test_unknown_values_are_refused() -> None:
    with pytest.raises(ValueError):
        next_stage("archived", A.close)
    with pytest.raises(ValueError):
        next_stage(S.collected, "approve")


def test_a_full_walk_to_evaluated() -> None:
    stage = S.collected
    path = [A.register, A.dispatch, A.accept, A.feed_back, A.verify, A.close, A.evaluate]
    seen = [stage]
    for action in path:
        stage = next_stage(stage, action)
        seen.append(stage)
    assert seen == [S.collected, S.registered, S.dispatched, S.handling, S.reported,
                    S.verified, S.closed, S.evaluated]
    assert allowed_actions(stage) == []


def test_a_return_and_a_re_dispatch() -> None:
    stage = next_stage(next_stage(S.collected, A.register), A.dispatch)
    stage = next_stage(stage, A.accept)
    stage = next_stage(stage, A.return_)  # not ours: wrong grid
    assert stage == S.returned
    assert allowed_actions(stage) == [A.dispatch, A.cancel]
    stage = next_stage(stage, A.dispatch)  # to another grid
    assert stage == S.dispatched
    assert next_stage(stage, A.return_) == S.returned  # returned straight from dispatch too
    assert next_stage(S.returned, A.cancel) == S.cancelled


def test_a_rejected_feed_back_goes_back_to_handling() -> None:
    stage = next_stage(S.handling, A.feed_back)
    stage = next_stage(stage, A.reject)  # on-site check failed
    assert stage == S.handling
    assert next_stage(next_stage(stage, A.feed_back), A.verify) == S.verified


def test_terminal_stages_have_no_actions() -> None:
    for stage in (S.cancelled, S.evaluated):
        assert allowed_actions(stage) == []
        for action in Action:
            with pytest.raises(IllegalTransition, match="is final"):
                next_stage(stage, action)
    # every other stage has a way on
    assert all(allowed_actions(s) for s in Stage if s not in (S.cancelled, S.evaluated))


def test_reasons() -> None:
    assert {A.return_, A.reject, A.cancel} == NEEDS_REASON
    for action in NEEDS_REASON:
        for blank in (None, "", "   "):
            with pytest.raises(MissingReason, match="needs a reason"):
                check_reason(action, blank)
        check_reason(action, "不属于本网格")
    for action in set(Action) - NEEDS_REASON:
        check_reason(action, None)


def test_actors() -> None:
    centre = {"admin", "dispatcher"}
    handler = {"admin", "dispatcher", "grid_worker"}
    expected = {A.register: centre, A.cancel: centre, A.dispatch: centre, A.verify: centre,
                A.reject: centre, A.close: centre, A.evaluate: centre,
                A.accept: handler, A.return_: handler, A.feed_back: handler}
    assert {a: set(r) for a, r in ACTORS.items()} == expected
    for action in Action:
        for role in Role:
            assert may_act(role.value, action) == (role.value in expected[action])
            assert may_act(role, action) == (role.value in expected[action])
        assert not may_act("planner", action)
        assert not may_act("analyst", action)
        assert not may_act("public", action)
        assert not may_act("nobody", action)


def test_labels() -> None:
    assert set(STAGE_LABELS) == set(Stage)
    assert set(ACTION_LABELS) == set(Action)
    # the seven stages of GB/T 30428, in order along the main path
    main = [S.collected, S.registered, S.dispatched, S.handling, S.reported, S.verified,
            S.evaluated]
    assert [STAGE_LABELS[s] for s in main] == [
        "信息收集", "案件建立", "任务派遣", "任务处理", "处理反馈", "核查结案", "综合评价"]
    assert STAGE_LABELS[S.cancelled] == "已取消"
    assert STAGE_LABELS[S.returned] == "已退回"
    assert STAGE_LABELS[S.closed] == "已结案"
    assert len(set(STAGE_LABELS.values())) == len(Stage)


# --- categories ---------------------------------------------------------------------------

DEMO_CODES = {
    "事件/市容环境/暴露垃圾", "事件/街面秩序/占道经营", "事件/矛盾纠纷/邻里纠纷",
    "部件/交通设施/路灯不亮", "事件/安全隐患/消防通道堵塞", "部件/公用设施/井盖破损",
    "事件/宣传广告/违规张贴", "部件/园林绿化/树木倒伏",
}


def test_the_packaged_categories_load() -> None:
    cats = load_categories()
    assert set(cats) >= DEMO_CODES
    assert len(cats) >= 20
    for code, c in cats.items():
        assert code == c.code == f"{c.kind}/{c.major}/{c.minor}"
        assert c.kind in ("部件", "事件") and c.unit_type in UNIT_TYPES and c.limit > 0
        assert c.closing_condition
    rubbish = cats["事件/市容环境/暴露垃圾"]
    assert (rubbish.limit, rubbish.limit_unit, rubbish.urgent) == (1, "working_days", False)
    for code in ("事件/安全隐患/消防通道堵塞", "部件/公用设施/井盖破损", "部件/园林绿化/树木倒伏"):
        assert cats[code].urgent, code
        assert cats[code].dispatch_within.total_seconds() == 600
    assert rubbish.dispatch_within.total_seconds() == 1800
    dirty = cats["事件/市容环境/道路不洁"]
    assert (dirty.limit, dirty.limit_unit) == (5, "working_hours")
    illegal = cats["事件/违法建设/违法建筑"]
    assert (illegal.limit, illegal.limit_unit) == (15, "working_days")
    parking = cats["事件/街面秩序/违章停车"]
    assert (parking.limit, parking.limit_unit) == (3, "emergency_hours")


def test_a_category_knows_its_handling_deadline() -> None:
    cal = WorkCalendar()
    eve = datetime(2026, 9, 30, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    cats = load_categories()
    # 1 working day over the National Day holiday (1–7 Oct 2026) → Thu 8 Oct 16:00
    assert cats["事件/市容环境/暴露垃圾"].handle_due(eve, cal) == eve.replace(month=10, day=8)
    # 5 working hours: 1.5 h on 30 Sep, 3.5 h on 8 Oct → 12:00
    assert cats["事件/市容环境/道路不洁"].handle_due(eve, cal) == eve.replace(
        month=10, day=8, hour=12)
    # 3 emergency hours through the night
    assert cats["事件/街面秩序/违章停车"].handle_due(eve, cal) == eve.replace(hour=19)
    for c in cats.values():
        assert c.handle_due(eve, cal) > eve


def test_constants() -> None:
    assert DISPATCH_MINUTES == {True: 10, False: 30}
    assert VERIFY_HOURS == {"urban": 1, "rural": 2}


GOOD = "事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,1,working_days,false,清运完毕"


def write(tmp_path: Path, *rows: str, header: str = ",".join(COLUMNS),
          encoding: str = "utf-8") -> Path:
    path = tmp_path / "categories.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding=encoding)
    return path


def test_an_edited_file_loads(tmp_path: Path) -> None:
    # a spreadsheet's byte-order mark, blank lines and stray spaces are fine
    path = write(tmp_path, GOOD, "",
                 " 部件/交通设施/路灯不亮 ,部件,交通设施,路灯不亮,市政,0.5,working_days,TRUE,亮灯",
                 encoding="utf-8-sig")
    cats = load_categories(path)
    assert set(cats) == {"事件/市容环境/暴露垃圾", "部件/交通设施/路灯不亮"}
    lamp = cats["部件/交通设施/路灯不亮"]
    assert lamp.limit == 0.5 and lamp.urgent


@pytest.mark.parametrize(("row", "problem"), [
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,物业公司,1,working_days,false,x",
     r"line 2 \(事件/市容环境/暴露垃圾\): unknown unit type '物业公司'"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,0,working_days,false,x",
     r"line 2 \(事件/市容环境/暴露垃圾\): limit 0 must be a positive number"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,-2,working_days,false,x",
     "limit -2 must be a positive number"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,一天,working_days,false,x",
     "limit '一天' is not a number"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,nan,working_days,false,x",
     "must be a positive number"),
    ("其他/市容环境/暴露垃圾,其他,市容环境,暴露垃圾,环卫,1,working_days,false,x",
     "kind '其他' is neither 部件 nor 事件"),
    ("事件/市容环境/暴露垃圾,部件,市容环境,暴露垃圾,环卫,1,working_days,false,x",
     "code should be kind/major/minor: 部件/市容环境/暴露垃圾"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,1,working_weeks,false,x",
     "limit_unit 'working_weeks' is not one of"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,环卫,1,working_days,是,x",
     "urgent '是' is neither true nor false"),
    ("事件/市容环境/暴露垃圾,事件,市容环境,暴露垃圾,,1,working_days,false,x",
     "unit_type is empty"),
])
def test_a_bad_row_is_refused_with_its_line_and_problem(tmp_path: Path, row: str,
                                                        problem: str) -> None:
    path = write(tmp_path, row)
    with pytest.raises(ValueError, match=problem) as caught:
        load_categories(path)
    assert str(path) in str(caught.value)


def test_a_duplicate_code_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, GOOD.replace(",1,", ",2,"))
    with pytest.raises(ValueError, match=r"line 3 \(事件/市容环境/暴露垃圾\): duplicate code, "
                                         r"first on line 2"):
        load_categories(path)


def test_a_missing_column_or_an_empty_file_is_refused(tmp_path: Path) -> None:
    header = ",".join(c for c in COLUMNS if c != "urgent")
    with pytest.raises(ValueError, match="missing column"):
        load_categories(write(tmp_path, "x", header=header))
    with pytest.raises(ValueError, match="no categories"):
        load_categories(write(tmp_path))
