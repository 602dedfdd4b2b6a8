"""What gridmap says, in Simplified Chinese (the default) or English.

The texts live in gettext catalogues, ``gridmap/locale/<locale>/LC_MESSAGES/gridmap.po``,
kept with Babel (``pybabel extract / update``) and read with Babel when first needed (no
compiled ``.mo`` files to keep in step). The English text is the message id, so code raises
and prints English and the catalogue carries the Chinese; a message with values names them in
braces (``"no account named {name}"``), and :func:`translate` finds the values again in an
English text that was formatted before it was translated (how typed exceptions reach the
API's error handlers); a value whose name is a kind of label (``{role}``, ``{resource}``) is
given its label.

Labels of the domain's vocabulary (roles, worker roles, incident stages and actions, facility
types, band states, partition defects) are catalogue entries too, under a context naming
their kind: :func:`label` and :func:`labels` (what ``GET /api/locale`` gives the pages).

The language of a request: the page's choice (cookie ``gridmap_lang``), else the first
supported one in ``Accept-Language``, else the deployment's setting ``GRIDMAP_LANGUAGE``.
The CLI speaks the setting's language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from babel.messages.pofile import read_po

from gridmap.domain.access import Resource, Role
from gridmap.domain.incidents import Action, Stage
from gridmap.domain.layers import WORKER_ROLES
from gridmap.domain.lifecircle import FACILITY_TYPES, LEVEL_DISTANCE_M
from gridmap.domain.notes import NOTES, SEPARATOR, Note

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT: Language = "zh-CN"
COOKIE = "gridmap_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_FOLDER: dict[Language, str] = {"zh-CN": "zh_CN", "en": "en"}

LabelKind = Literal["role", "resource", "worker_role", "stage", "action", "facility_type", "band",
                    "defect", "change", "draft_status", "column", "urban_rural", "level",
                    "unit", "compliance", "deadline", "solver_status", "model"]
BANDS = ("below", "within", "above", "over_residents")
CHANGES = ("added", "reshaped", "renamed", "retired")  # what a new grids version does to a grid
DRAFT_STATUSES = ("open", "submitted", "approved", "published", "abandoned")
URBAN_RURAL = ("urban", "rural")  # a division's standard: urban or rural grid sizes


def vocabulary() -> dict[LabelKind, tuple[str, ...]]:
    """The values of each kind of label, from the domain (and the partition check's
    defects)."""
    from gridmap.analysis.partition import Defect  # geopandas: only when labels are asked

    return {"role": tuple(Role), "resource": tuple(Resource), "worker_role": WORKER_ROLES,
            "stage": tuple(Stage), "action": tuple(Action),
            "facility_type": tuple(FACILITY_TYPES), "band": BANDS,
            "defect": get_args(Defect), "change": CHANGES,
            "draft_status": DRAFT_STATUSES, "urban_rural": URBAN_RURAL,
            "level": tuple(LEVEL_DISTANCE_M)}


_current: ContextVar[Language] = ContextVar("gridmap_language", default=DEFAULT)


def parse_language(value: str | None) -> Language | None:
    """A supported language for a tag such as ``zh``, ``zh-Hans-CN``, ``en-GB``; None for
    others (``zh-TW`` included: traditional script is not offered).

    >>> parse_language("zh-Hans-CN"), parse_language("EN_gb"), parse_language("fr")
    ('zh-CN', 'en', None)
    """
    if not value:
        return None
    tag = value.strip().lower().replace("_", "-")
    if tag in ("zh", "zh-cn", "zh-hans", "zh-hans-cn", "zh-sg"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> Language | None:
    """The supported language an ``Accept-Language`` header likes best, if any.

    >>> from_accept_language("fr-FR, en;q=0.5, zh-CN;q=0.8")
    'zh-CN'
    """
    choices: list[tuple[float, int, Language]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = parse_language(tag)
        if language is not None and quality > 0:
            choices.append((-quality, i, language))
    return min(choices)[2] if choices else None


def choose(*, cookie: str | None, accept_language: str | None,
           default: Language = DEFAULT) -> Language:
    """The language to answer in: the page's choice, the client's, the deployment's."""
    return parse_language(cookie) or from_accept_language(accept_language) or default


@cache
def _messages(language: Language) -> dict[tuple[str | None, str], str]:
    path = LOCALE_DIR / _FOLDER[language] / "LC_MESSAGES" / "gridmap.po"
    with path.open("rb") as f:
        catalog = read_po(f, locale=_FOLDER[language])
    out: dict[tuple[str | None, str], str] = {}
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string \
                and not message.fuzzy:
            out[(message.context, message.id)] = str(message.string)
    return out


@cache
def _patterns(language: Language) -> list[tuple[re.Pattern[str], str]]:
    """Messages with ``{values}``, as patterns that find the values in an English text, the
    most specific first (the most fixed text: ``the {role} role may not read {resource}``
    before ``the {role} role may not {what}``)."""
    out = []
    for (context, msgid), text in _messages(language).items():
        if context is None and "{" in msgid:
            parts = re.split(r"\{(\w+)\}", msgid)
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)"
                            for i, p in enumerate(parts))
            fixed = sum(len(p) for p in parts[::2])
            out.append((fixed, re.compile(f"^{regex}$", re.DOTALL), text))
    out.sort(key=lambda entry: -entry[0])
    return [(pattern, text) for _, pattern, text in out]


def gettext(message: str, language: Language | None = None, **values: object) -> str:
    """*message* (English, the catalogue's id) in *language* (the current one by default),
    with *values* filled in.

    >>> gettext("no account named {name}", "zh-CN", name="'li'")
    "没有名为 'li' 的账号"
    """
    text = _messages(language or _current.get()).get((None, message), message)
    return text.format(**values) if values else text


_ = gettext


def translate(text: str, language: Language | None = None) -> str:
    """An English text already formatted (an exception's message) in *language*: its
    catalogue entry, found whole or by the pattern of an entry with values; the text
    itself when the catalogue has none.

    >>> translate("no account named 'li'", "zh-CN")
    "没有名为 'li' 的账号"
    >>> translate("the analyst role may not read households", "zh-CN")
    '分析员角色无权查看住户'
    """
    language = language or _current.get()
    whole = _messages(language).get((None, text))
    if whole is not None:
        return whole
    for pattern, translation in _patterns(language):
        hit = pattern.match(text)
        if hit:
            values = {name: _value(name, value, language)
                      for name, value in hit.groupdict().items()}
            return translation.format(**values)
    return text


def _value(name: str, value: str, language: Language) -> str:
    """A value found in an English text, in *language*: its label when the value's name
    (without a trailing digit: ``{stage2}``) is a kind of label, each item's label when it
    is a list (``a, b or c``), else the value as it was."""
    messages = _messages(language)
    kind = name.rstrip("0123456789")
    whole = messages.get((kind, value))
    if whole is not None:
        return whole
    parts = re.split(r"(, | or )", value)
    if len(parts) > 1 and all((kind, part) in messages for part in parts[::2]):
        return "".join(messages[("separator", part)] if i % 2 else messages[(kind, part)]
                       for i, part in enumerate(parts))
    return value


def render_notes(notes: Sequence[Mapping[str, Any]] | None, text: str | None,
                 language: Language | None = None) -> str | None:
    """What a record says, in *language*: its notes (what gridmap wrote, as keys and values:
    :mod:`gridmap.domain.notes`) rendered, else its *text* as it was stored (a person's
    note, or a record written before notes were kept).

    >>> render_notes([{"key": "on_edge", "values": {"grids": ["610102001001002"]}}],
    ...              "on the edge of grids 610102001001002 too: check the routing", "zh-CN")
    '也位于网格 610102001001002 的边线上：请核对分派'
    >>> render_notes(None, "门口有积水", "en")
    '门口有积水'
    """
    if not notes:
        return text
    language = language or _current.get()
    separator = _messages(language).get(("separator", SEPARATOR), SEPARATOR)
    return separator.join(_render_note(n, language) for n in notes)


def _render_note(stored: Mapping[str, Any], language: Language) -> str:
    """One stored note: its catalogue text with the values' labels; without a translation
    (English) the template with the values as written, the text the record keeps. A key
    this version does not know shows as key and values."""
    key, values = str(stored.get("key")), stored.get("values") or {}
    template = NOTES.get(key)
    if template is None:
        return f"{key} {json.dumps(values, ensure_ascii=False)}"
    messages = _messages(language)
    text = messages.get((None, template))
    if text is None:
        return Note(key, values).english()
    separator = messages.get(("separator", ", "), ", ")
    return text.format(**{
        name: separator.join(_value(name, str(v), language) for v in value)
        if isinstance(value, list) else _value(name, str(value), language)
        for name, value in values.items()})


def label(kind: LabelKind, value: str, language: Language | None = None) -> str:
    """The name of a value of the domain's vocabulary, e.g. ``label("role",
    "grid_worker")`` → 网格员; the value itself when it has none.

    >>> label("stage", "dispatched", "zh-CN"), label("stage", "dispatched", "en")
    ('任务派遣', 'Dispatched')
    """
    return _messages(language or _current.get()).get((kind, str(value)), str(value))


def pgettext(context: str, message: str, language: Language | None = None) -> str:
    """*message* as the catalogue says it under *context*: the words of a library that has
    no catalogue of its own (context ``typer``: ``Options``, ``Usage: ``); *message* itself
    when there is none.

    >>> pgettext("typer", "Options", "zh-CN"), pgettext("typer", "Options", "en")
    ('选项', 'Options')
    """
    return _messages(language or _current.get()).get((context, message), message)


def labels(language: Language | None = None) -> dict[str, dict[str, str]]:
    """Every label of the vocabulary, by kind and value."""
    return {kind: {str(v): label(kind, v, language) for v in values}
            for kind, values in vocabulary().items()}


def current() -> Language:
    return _current.get()


@contextmanager
def speaking(language: Language) -> Iterator[None]:
    """Make *language* the current one within the block (a request, a CLI command)."""
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def use(language: Language) -> None:
    """Make *language* the current one from now on in this context (the CLI at start)."""
    _current.set(language)
