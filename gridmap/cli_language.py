"""The command line in the deployment's language: gridmap's help texts, and the words Typer
says around them (``Usage:``, the panels' titles, ``Show this message and exit.``, its
refusals of a command line such as ``No such option``).

Typer takes the help texts when the commands are defined, at import, before the settings
name the language. So the command line's root group, :class:`LocalizedGroup`, speaks when it
starts, before it parses anything (``--help`` is answered while parsing): each command's,
option's and argument's help is looked up in the catalogue (its English text is the message
id; the English is kept for the next run).

Typer's own words are no gettext messages: it carries its own copy of click with the English
written in (``typer/_click``), and only ``typer.rich_utils`` passes its texts (panel titles,
``[default: …]``, the error box) through the standard library's ``gettext``, in the default
domain and once at import. Binding a translation there would take a compiled catalogue and
the process's ``LANGUAGE`` (which initdb and pg_ctl would inherit), and would still come too
late. So those texts are set from the catalogue (context ``typer``) when the command line
starts, the usage line gets its prefix from a formatter of the context (click's
``Context.formatter_class``), and a refusal of the command line is said again from the
catalogue, piece by piece (which option, what is wrong with it), before Typer prints it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from typer import _click
from typer.core import HAS_RICH, TyperGroup

from gridmap import i18n
from gridmap.i18n import Language, _

CONTEXT = "typer"  # the catalogue's context of Typer's words
# typer.rich_utils' texts: module constants it reads whenever it prints help or an error
RICH_TEXTS = ("ARGUMENTS_PANEL_TITLE", "OPTIONS_PANEL_TITLE", "COMMANDS_PANEL_TITLE",
              "ERRORS_PANEL_TITLE", "DEFAULT_STRING", "ENVVAR_STRING", "REQUIRED_LONG_STRING",
              "DEPRECATED_STRING", "ABORTED_TEXT", "RICH_HELP")
_RICH_ENGLISH: dict[str, str] = {}
_RICH_MAKE_TEXT: list[Any] = []  # typer.rich_utils._make_rich_text as Typer defined it
_ENGLISH = "_gridmap_english"  # where a command or parameter keeps its English texts


def startup_language() -> Language:
    """The language of this run: the settings' (``GRIDMAP_LANGUAGE``); when the settings are
    not valid, ``GRIDMAP_LANGUAGE`` as far as it names one, else the default (their error is
    said in it)."""
    from pydantic import ValidationError

    from gridmap.settings import get_settings

    try:
        return get_settings().language
    except ValidationError:
        return i18n.parse_language(os.environ.get("GRIDMAP_LANGUAGE")) or i18n.DEFAULT


def speak(command: _click.Command, language: Language) -> None:
    """Put *command* (the whole tree below it) and Typer's words in *language*."""
    for each in commands(command):
        _localize(each, language)
    if HAS_RICH:
        from typer import rich_utils

        if not _RICH_ENGLISH:
            _RICH_ENGLISH.update({name: getattr(rich_utils, name) for name in RICH_TEXTS})
        for name, english in _RICH_ENGLISH.items():
            setattr(rich_utils, name, i18n.pgettext(CONTEXT, english, language))
        if not _RICH_MAKE_TEXT:
            _RICH_MAKE_TEXT.append(rich_utils._make_rich_text)
        make_text = _RICH_MAKE_TEXT[0]
        rich_utils._make_rich_text = make_text if language == "en" else _folding(make_text)


def _folding(make_text: Any) -> Any:
    """Typer's maker of help texts, its texts folded where a line is full: rich breaks lines
    at spaces only, and a help text in a table cell that has none (Chinese) would be cut
    short with an ellipsis."""
    from rich.text import Text

    def make_folding_text(**options: Any) -> Any:
        text = make_text(**options)
        if isinstance(text, Text) and text.overflow is None:
            text.overflow = "fold"
        return text

    return make_folding_text


def commands(command: _click.Command) -> Iterator[_click.Command]:
    """*command* and every command below it."""
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from commands(sub)


def help_texts(command: _click.Command) -> Iterator[str]:
    """Every help text of *command*'s tree, in English (the catalogue's message ids)."""
    for each in commands(command):
        for owner, attr in _texts(each):
            english = _english(owner, attr)
            if english:
                yield english


def _texts(command: _click.Command) -> Iterator[tuple[Any, str]]:
    """The objects and attributes that hold *command*'s own help texts."""
    yield from ((command, attr) for attr in ("help", "short_help", "epilog"))
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        if param is not None and hasattr(param, "help"):
            yield param, "help"


def _english(owner: Any, attr: str) -> Any:
    """*owner*'s *attr* as it was defined (before any run put it in another language)."""
    kept = owner.__dict__.setdefault(_ENGLISH, {})
    if attr not in kept:
        kept[attr] = getattr(owner, attr, None)
    return kept[attr]


def _localize(command: _click.Command, language: Language) -> None:
    for owner, attr in _texts(command):
        english = _english(owner, attr)
        if english:
            setattr(owner, attr, i18n.gettext(english, language))
    command.context_class = LocalizedContext
    for attr in ("options_metavar", "subcommand_metavar"):
        english = _english(command, attr)
        if english:
            setattr(command, attr, i18n.pgettext(CONTEXT, english, language))


class LocalizedFormatter(_click.HelpFormatter):
    """Click's help formatter with the usage line's prefix in the current language."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, i18n.pgettext(CONTEXT, "Usage: ")
                            if prefix is None else prefix)


class LocalizedContext(_click.Context):
    formatter_class = LocalizedFormatter


def said_again(exc: _click.exceptions.UsageError) -> _click.exceptions.UsageError:
    """A refusal of the command line in the current language: Typer's English looked up in
    the catalogue piece by piece (the option it names, then what is wrong); *exc* itself in
    English or when it carries help rather than a refusal."""
    errors = _click.exceptions
    if i18n.current() == "en" or isinstance(exc, errors.NoArgsIsHelpError):
        return exc
    if isinstance(exc, errors.MissingParameter):
        text = _missing(exc)
    elif isinstance(exc, errors.BadParameter):
        hint = _hint(exc)
        problem = i18n.translate(exc.message)
        text = _("Invalid value for {option}: {problem}", option=hint, problem=problem) \
            if hint else _("Invalid value: {problem}", problem=problem)
    elif isinstance(exc, errors.NoSuchOption) and exc.possibilities:
        text = i18n.translate(exc.message) + _(
            "(Possible options: {options})", options=", ".join(sorted(exc.possibilities)))
    else:
        text = i18n.translate(exc.message)
    again = errors.UsageError(text, ctx=exc.ctx)
    again.exit_code = exc.exit_code
    return again


def _hint(exc: _click.exceptions.BadParameter) -> str | None:
    hint: Sequence[str] | str | None = exc.param_hint
    if hint is None and exc.param is not None:
        hint = exc.param.get_error_hint()
    if hint is not None and not isinstance(hint, str):
        hint = " / ".join(repr(h) for h in hint)
    return hint


def _missing(exc: _click.exceptions.MissingParameter) -> str:
    hint = _hint(exc) or ""
    kind = exc.param_type or (exc.param.param_type_name if exc.param is not None else "")
    text = {"argument": _("Missing argument {name}.", name=hint),
            "option": _("Missing option {name}.", name=hint)}.get(
                kind, _("Missing parameter {name}.", name=hint))
    extra = exc.param.get_missing_message(ctx=exc.ctx) if exc.param is not None else ""
    choose = "Choose from:"
    if extra and extra.startswith(choose):
        extra = i18n.pgettext(CONTEXT, choose) + extra[len(choose):]
    return text + extra if extra else text  # said only in Chinese: no space after 。


class LocalizedGroup(TyperGroup):
    """The root of the command line: speaks the run's language from the start (help texts,
    Typer's words), and says a refusal of the command line in it."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        language = startup_language()
        i18n.use(language)
        speak(self, language)
        return super().main(*args, **kwargs)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: _click.Context | None = None, **extra: Any) -> _click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _click.exceptions.UsageError as exc:
            again = said_again(exc)
            if again is exc:
                raise
            raise again from exc

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _click.exceptions.UsageError as exc:
            again = said_again(exc)
            if again is exc:
                raise
            raise again from exc
