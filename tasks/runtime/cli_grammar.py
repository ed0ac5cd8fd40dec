"""One grammar for every ``clsbench`` subcommand: help texts that show defaults, and old spellings for one release.

The names themselves (``--datasets``, ``--output-dir``, ``--data-dir``, ``--model`` for one model and ``--models``
for several, ...) are declared by each subcommand; ``tests/test_cli_grammar.py`` walks every subcommand's parser
and holds them to one name per idea, so a new subcommand cannot drift. This module lives in the runtime layer so
that every room with a command line (the core CLI, ``clsbench clip``, ``clsbench report``) can use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# Old spellings keep working, with one line on stderr, until this release removes them.
REMOVED_IN = "0.5.0"


def default_text(value: object) -> str:
    """A default as a user would type it: lists space-separated, strings bare."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def shows_default(action: argparse.Action) -> bool:
    """Whether an option has a default worth printing (not None, not a flag's False, not an empty list)."""
    if action.help == argparse.SUPPRESS or action.default in (None, argparse.SUPPRESS) or action.nargs == 0:
        return False
    return action.default != [] and not isinstance(action.default, bool)


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help texts end with ``(default: ...)`` unless they already name their default; descriptions and epilogs
    keep their line breaks (the examples in ``clsbench clip --help``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if shows_default(action) and "default" not in text:
            text += " (default: " + default_text(action.default).replace("%", "%%") + ")"
        return text


class GrammarParser(argparse.ArgumentParser):
    """The parser class of every ``clsbench`` subcommand: defaults shown in ``--help`` unless a formatter is given."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def _get_formatter(self):
        """Usage lines show the options :func:`require_options` requires without brackets, as argparse shows its own
        required options (they are checked after parsing, so that their deprecated spellings still count)."""
        required = set(self._defaults.get("required_options", ()))
        for action in self._actions:
            if action.dest in required and action.option_strings and action.help != argparse.SUPPRESS:
                action.required = True  # read by the usage formatter only: parsing never sees it
        return super()._get_formatter()

    def parse_known_args(self, args=None, namespace=None):
        for action in self._actions:  # undo what formatting a usage line set (see _get_formatter)
            if action.dest in set(self._defaults.get("required_options", ())) and action.option_strings:
                action.required = False
        return super().parse_known_args(args, namespace)


def deprecation(prog: str, old: str, new: str) -> None:
    """The one line an old spelling prints."""
    print(
        f"{prog}: warning: {old} is deprecated, use {new} (the old spelling goes in clsbench {REMOVED_IN})",
        file=sys.stderr,
    )


class _DeprecatedOption(argparse.Action):
    def __init__(self, option_strings, dest, *, new: str, prog: str, **kwargs):
        self.new, self.prog = new, prog
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation(self.prog, option_string, self.new)
        setattr(namespace, self.dest, values)


def add_deprecated_option(
    parser: argparse.ArgumentParser, old: str, new: str, *, dest: str, nargs=None, type=None
) -> None:
    """Accept ``old`` for one release: it fills ``dest`` as ``new`` does and says so on stderr; hidden in --help."""
    parser.add_argument(
        old,
        dest=dest,
        nargs=nargs,
        type=type,
        action=_DeprecatedOption,
        new=new,
        prog=parser.prog,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


LEGACY_DEST = "legacy_positionals"


def add_legacy_positionals(parser: argparse.ArgumentParser, fields: Sequence[str], *, required: Sequence[str] = ()):
    """Accept the old positional form (``clsbench options food101 0``) for one release.

    Args:
        fields: the options the positionals stood for, in order (``("datasets", "index")``); a field ending in
            ``*`` takes the rest (``("datasets*",)``).
        required: options that must be given one way or the other (checked by :func:`apply_legacy_positionals`).
    """
    parser.add_argument(LEGACY_DEST, nargs="*", help=argparse.SUPPRESS)
    require_options(parser, required)
    parser.set_defaults(legacy_fields=tuple(fields))


def require_options(parser: argparse.ArgumentParser, required: Sequence[str]) -> None:
    """Options that must be given, by their new or their deprecated spelling (argparse's ``required=True`` would
    refuse the old one); checked by :func:`apply_legacy_positionals`."""
    for action in parser._actions:
        if action.dest in required and action.help != argparse.SUPPRESS and "(required)" not in (action.help or ""):
            action.help = f"{action.help or ''} (required)".strip()
    parser.set_defaults(legacy_fields=(), required_options=tuple(required), grammar_parser=parser)


def apply_legacy_positionals(args: argparse.Namespace) -> None:
    """Move old positionals into their options (with one deprecation line) and check the required options."""
    parser: argparse.ArgumentParser | None = getattr(args, "grammar_parser", None)
    if parser is None:
        return
    values = list(getattr(args, LEGACY_DEST, None) or [])
    fields = args.legacy_fields
    flags = {field.rstrip("*"): "--" + field.rstrip("*").replace("_", "-") for field in fields}
    if values:
        actions = {name: next(a for a in parser._actions if a.dest == name) for name in flags}
        # positionals fill the fields not given as options, in order (`options --datasets food101 0`: the index)
        open_fields = [f for f in fields if getattr(args, f.rstrip("*")) in (None, actions[f.rstrip("*")].default)]
        given: dict[str, object] = {}
        for position, field in enumerate(open_fields):
            if position >= len(values):
                break
            given[field.rstrip("*")] = values[position:] if field.endswith("*") else values[position]
        if len(values) > len(open_fields) and not (open_fields and open_fields[-1].endswith("*")):
            parser.error(f"unrecognized arguments: {' '.join(values[len(open_fields) :])}")
        for name, value in given.items():
            action = actions[name]
            converted = [value] if action.nargs in ("+", "*") and not isinstance(value, list) else value
            if action.type is not None and not isinstance(converted, list):
                try:
                    converted = action.type(converted)
                except (TypeError, ValueError):
                    parser.error(f"argument {flags[name]}: invalid value: {value!r}")
            setattr(args, name, converted)
        old = " ".join(name.upper() for name in given)
        new = " ".join(f"{flags[name]} {name.upper()}" for name in given)
        deprecation(parser.prog, f"the positional form `{parser.prog} {old}`", f"`{parser.prog} {new}`")
    missing = [name for name in args.required_options if getattr(args, name, None) in (None, [])]
    if missing:
        parser.error("the following arguments are required: " + ", ".join("--" + m.replace("_", "-") for m in missing))
