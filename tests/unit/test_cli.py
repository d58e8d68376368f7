"""The provsec command's dispatch: each area registers the sub-command AREAS says, and a sub-command imports
only its own area (a timer's `provsec scan run` must not pay for the reports' or the notifier's imports)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from provsec.cli import AREAS, build_parser, main


@pytest.mark.parametrize(("command", "module"), sorted(AREAS.items()))
def test_each_area_registers_exactly_its_command(command: str, module: str) -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(sub)
    assert list(sub.choices) == [command]


def test_the_full_parser_offers_every_area() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == list(AREAS)


def test_a_command_imports_only_its_own_area() -> None:
    probe = ("import sys; from provsec.cli import main\n"
             "try:\n    main(['scan', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules\n"
             "             if m.startswith('provsec.') and m.endswith('cli') and m != 'provsec.cli'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "['provsec.scan.cli']"


def test_an_unknown_command_lists_every_area(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nosuch"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err and all(f"'{c}'" in err for c in AREAS)
