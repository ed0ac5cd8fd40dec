"""One grammar (issue 26): every subcommand's parser is walked, so a new subcommand cannot drift.

One name per idea (``--datasets``, ``--output-dir``, ``--data-dir``, ``--model`` for one model, ``--models`` for
several), no flag with two meanings, help texts that show every default, and the old spellings still accepted
for one release with one deprecation line.
"""

from __future__ import annotations

import argparse

import pytest

from clsbench.tasks.cli.main import build_parser, main

# idea (the argparse dest) -> its one name
IDEAS = {
    "datasets": "--datasets",
    "output_dir": "--output-dir",
    "data_dir": "--data-dir",
    "model": "--model",
    "models": "--models",
    "gpus": "--gpus",
    "seed": "--seed",
    "n_options": "--n-options",
    "class_names": "--class-names",
    "pretrained": "--pretrained",
    "subset": "--subset",
}
# spellings that named one of those ideas before: never a visible option or positional again
RETIRED = {"--dataset", "--data", "--work-dir", "--output", "--out", "--output_path", "--dest", "--work_dir"}
RETIRED_POSITIONALS = {"dataset", "datasets", "dest", "output", "output_dir"}
PLURAL = {"datasets", "models"}  # ideas that take several values


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = dict(action.choices)
    from clsbench.clip_baselines.cli import add_arguments
    from clsbench.tasks.runtime.cli_grammar import DefaultsHelpFormatter

    # `python -m clsbench.clip_baselines` (what accelerate launch starts) is the same grammar
    found["python -m clsbench.clip_baselines"] = add_arguments(
        argparse.ArgumentParser(prog="clip_baselines", formatter_class=DefaultsHelpFormatter)
    )
    return found


def visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.help != argparse.SUPPRESS and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
    ]


def test_every_subcommand_is_walked():
    names = set(subcommands())
    assert {"list", "options", "questions", "prepare", "negatives", "lmms", "clip", "report", "vlmeval"} <= names
    assert {"export-vlmeval", "upstream-lmms-eval", "demo", "multilabel", "descriptions", "models"} <= names


def test_one_name_per_idea_and_one_idea_per_name():
    wrong = []
    dests_of_flag: dict[str, set[str]] = {}
    for command, parser in subcommands().items():
        for action in visible(parser):
            for flag in action.option_strings:
                dests_of_flag.setdefault(flag, set()).add(action.dest)
                if flag in RETIRED:
                    wrong.append(f"{command}: {flag} is a retired spelling")
            if not action.option_strings and action.dest in RETIRED_POSITIONALS:
                wrong.append(f"{command}: positional {action.dest!r}; use {IDEAS.get(action.dest, '--datasets')}")
            if action.dest in IDEAS and action.option_strings != [IDEAS[action.dest]]:
                wrong.append(f"{command}: {action.option_strings or action.dest} for {IDEAS[action.dest]}")
            several = action.nargs in ("+", "*")
            if action.dest in ("model", "models") and several != (action.dest in PLURAL):
                wrong.append(f"{command}: {action.option_strings} takes {'several' if several else 'one'}")
    wrong += [f"{flag} means {sorted(dests)}" for flag, dests in dests_of_flag.items() if len(dests) > 1]
    assert not wrong, "\n".join(wrong)


def test_model_pretrained_and_subset_mean_one_thing_each():
    """--model/--pretrained: a CLIP model and its open_clip tag wherever they appear (clip, negatives); --subset:
    report's class subset only (prepare's image-id file is --image-ids)."""
    helps: dict[str, set[str]] = {}
    for command, parser in subcommands().items():
        for action in visible(parser):
            for flag in set(action.option_strings) & {"--model", "--pretrained", "--subset"}:
                helps.setdefault(flag, set()).add(command)
                if flag == "--model":
                    assert "an open_clip name" in action.help and "hf-hub:ORG/REPO" in action.help, command
                if flag == "--pretrained":
                    assert "open_clip pretrained tag or checkpoint file" in action.help, command
                    assert "the model's own, or random weights" in action.help, command
    assert helps["--subset"] == {"report"}


def test_every_option_with_a_value_shows_its_default_in_help():
    """Help texts name the default of every option that takes a value and is not required (demo and report
    --data-dir hid theirs)."""
    wrong = []
    for command, parser in subcommands().items():
        formatter = parser._get_formatter()
        for action in visible(parser):
            if not action.option_strings or action.nargs == 0 or action.required:
                continue
            text = formatter._expand_help(action) if action.help else ""
            if "default" not in text and "required" not in text:
                wrong.append(f"{command} {action.option_strings[0]}: {text!r}")
    assert not wrong, "\n".join(wrong)


OLD_SPELLINGS = [  # (the old command line, what it must parse to, the new spelling its warning names)
    (["options", "food101", "3"], {"datasets": ["food101"], "index": 3}, "--datasets DATASETS --index INDEX"),
    (["questions", "food101", "--output", "q.pq"], {"datasets": ["food101"], "output": "q.pq"}, "--output-dir"),
    (["prepare", "gldv2", "--source", "r", "--subset", "i"], {"datasets": ["gldv2"], "image_ids": "i"}, "--image-ids"),
    (["negatives", "cub200", "--method", "text-similar"], {"datasets": ["cub200"]}, "--datasets DATASETS"),
    (["multilabel", "run", "--labels", "l.json", "--dataset", "pets"], {"datasets": ["pets"]}, "use --datasets"),
    (["upstream-lmms-eval", "kit"], {"output_dir": "kit"}, "--output-dir OUTPUT_DIR"),
    (["export-vlmeval", "food101", "cub200", "--output-dir", "o"], {"datasets": ["food101", "cub200"]}, "--datasets"),
    (
        ["vlmeval", "--model", "m", "--data", "food101", "--work-dir", "w"],
        {"models": ["m"], "datasets": ["food101"], "output_dir": "w"},
        "use --output-dir",
    ),
]


@pytest.mark.parametrize("old,expected,new", OLD_SPELLINGS, ids=[old[0] for old, _, _ in OLD_SPELLINGS])
def test_old_spellings_still_parse_with_one_deprecation_line(old, expected, new, capsys):
    from clsbench.tasks.runtime.cli_grammar import apply_legacy_positionals

    args, _ = build_parser().parse_known_args(old)
    apply_legacy_positionals(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines and all("is deprecated, use" in line and line.endswith("goes in clsbench 0.5.0)") for line in lines)
    assert new in err, err
    assert {name: getattr(args, name) for name in expected} == expected


def test_the_new_spellings_need_no_deprecation_line(tmp_path, capsys):
    assert main(["options", "--datasets", "food101", "--index", "0", "--label", "16"]) == 0
    captured = capsys.readouterr()
    assert '"class": "cheesecake"' in captured.out and "deprecated" not in captured.err
    assert main(["options", "food101", "0", "--label", "16"]) == 0  # the old form: same answer, one warning
    captured = capsys.readouterr()
    assert '"class": "cheesecake"' in captured.out and captured.err.count("deprecated") == 1
    with pytest.raises(SystemExit):
        main(["options", "--index", "0"])
    assert "the following arguments are required: --datasets" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # an old positional of the wrong type is a usage error, not a traceback
        main(["options", "food101", "x"])
    assert "argument --index: invalid value: 'x'" in capsys.readouterr().err


def test_lmms_takes_output_dir_as_output_path(monkeypatch):
    """--output-dir is clsbench's name for the folder everywhere; lmms keeps lmms-eval's --output_path too."""
    import sys

    cli = sys.modules[main.__module__]
    seen = {}
    monkeypatch.setattr(cli, "stop_on_known_bad", lambda command: False)
    monkeypatch.setattr(cli, "run_lmms", lambda args, data_dir: seen.setdefault("args", args) and (0, []))
    assert main(["lmms", "--model", "dummy", "--tasks", "cls_logo_mcq", "--output-dir", "out"]) == 0
    assert seen["args"][-2:] == ["--output_path", "out"]
    assert main(["lmms", "--model", "dummy", "--tasks", "cls_logo_mcq", "--output-dir", "a", "--output_path", "b"]) == 2


def test_help_is_plain_text_and_every_subcommand_describes_itself():
    """Before: ``clsbench`` and :mod:`...` markup showed in --help, and doctor / models had no description."""
    import re

    from clsbench.tasks.cli.main import build_parser

    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                assert sub.description, f"clsbench {name} --help has no description"
                texts.append(sub.format_help())
    for text in texts:
        assert "``" not in text and not re.search(r":[a-z]+:`", text), text[:300]


def test_required_options_show_without_brackets_and_old_spellings_still_parse(capsys):
    """Before: usage lines showed required options in brackets ([--datasets ...]) beside '(required)'."""
    from clsbench.tasks.cli.main import build_parser, main

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["options"]
    usage = sub.format_usage()
    assert "--datasets DATASET" in usage and "[--datasets" not in usage and "[--index" not in usage, usage
    assert main(["options", "logo", "0", "--label", "3"]) == 0  # parsed after a usage line was formatted
    assert "deprecated" in capsys.readouterr().err
