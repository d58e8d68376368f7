"""scripts/role-readme: the README variable table follows meta/argument_specs.yml and defaults/main.yml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provsec.devtools import role_readme
from provsec.errors import InputError

REPO = Path(__file__).resolve().parents[2]

SPECS = """\
---
argument_specs:
  main:
    short_description: A demo role
    options:
      demo_enabled:
        type: bool
        description: Turn the demo on (concern C(demo)).
      demo_port:
        type: int
        description: Port the demo listens on; see O(demo_enabled).
      demo_names:
        type: list
        elements: str
        description:
          - Names to greet.
          - One per line.
      demo_mode:
        type: str
        choices: [fast, safe]
        description: How to run.
      demo_token:
        type: str
        required: true
        no_log: true
        description: Secret token.
"""

DEFAULTS = """\
---
demo_enabled: true
demo_port: 9100
demo_names: [a, b]
demo_mode: "{{ 'fast' if demo_enabled | bool else 'safe' }}"
"""

README = """\
# Role `demo`

Intro text stays.

## Variables

<!-- BEGIN VARIABLES -->
old table
<!-- END VARIABLES -->

Text after stays too.
"""


def make_role(root: Path, name: str = "demo", *, defaults: str = DEFAULTS, readme: str = README) -> Path:
    role = root / name
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(SPECS)
    (role / "defaults" / "main.yml").write_text(defaults)
    (role / "README.md").write_text(readme)
    return role


def test_the_table_is_generated_between_the_markers(tmp_path: Path) -> None:
    role = make_role(tmp_path)

    assert role_readme.main(["--roles-dir", str(tmp_path)]) == 0

    text = (role / "README.md").read_text()
    assert "old table" not in text
    assert text.startswith("# Role `demo`\n\nIntro text stays.\n")
    assert text.endswith("<!-- END VARIABLES -->\n\nText after stays too.\n")
    lines = text.splitlines()
    assert "| Variable | Type | Default | Description |" in lines
    assert "| `demo_enabled` | bool | `true` | Turn the demo on (concern `demo`). |" in lines
    assert "| `demo_port` | int | `9100` | Port the demo listens on; see `demo_enabled`. |" in lines
    assert '| `demo_names` | list of str | `["a", "b"]` | Names to greet. One per line. |' in lines
    # A pipe inside a default would end the cell: it is escaped.
    assert (
        "| `demo_mode` | str | `{{ 'fast' if demo_enabled \\| bool else 'safe' }}` | How to run. "
        "One of: `fast`, `safe`. |"
    ) in lines
    assert "| `demo_token` | str | required | Secret token. Secret (no_log). |" in lines
    # Rows follow the order of argument_specs.
    names = [line.split("`")[1] for line in lines if line.startswith("| `")]
    assert names == ["demo_enabled", "demo_port", "demo_names", "demo_mode", "demo_token"]


def test_a_second_run_changes_nothing_and_check_passes(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    assert role_readme.main(["--roles-dir", str(tmp_path)]) == 0
    first = (role / "README.md").read_text()

    assert role_readme.main(["--roles-dir", str(tmp_path)]) == 0
    assert role_readme.main(["--roles-dir", str(tmp_path), "--check"]) == 0
    assert (role / "README.md").read_text() == first


def test_check_fails_on_a_stale_table_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    role = make_role(tmp_path)
    assert role_readme.main(["--roles-dir", str(tmp_path)]) == 0
    # Someone changes a default without regenerating the README.
    (role / "defaults" / "main.yml").write_text(DEFAULTS.replace("9100", "9200"))
    before = (role / "README.md").read_text()

    assert role_readme.main(["--roles-dir", str(tmp_path), "--check"]) == 1

    assert (role / "README.md").read_text() == before
    assert "stale variable table in demo" in capsys.readouterr().err


def test_a_default_missing_from_argument_specs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_role(tmp_path, defaults=DEFAULTS + "demo_secret_switch: false\n")

    assert role_readme.main(["--roles-dir", str(tmp_path), "--check"]) == InputError.exit_code

    err = capsys.readouterr().err
    assert "demo_secret_switch" in err
    assert "not described in argument_specs.yml" in err


def test_a_readme_without_markers_is_an_error_naming_the_file(tmp_path: Path) -> None:
    role = make_role(tmp_path, readme="# Role `demo`\n\nNo table here.\n")

    with pytest.raises(InputError, match=r"README\.md: needs the marker comments"):
        role_readme.sync_role(role, check=False)
    assert (role / "README.md").read_text() == "# Role `demo`\n\nNo table here.\n"


def test_a_role_without_argument_specs_is_an_error(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    (role / "meta" / "argument_specs.yml").unlink()

    with pytest.raises(InputError, match=r"argument_specs\.yml: missing"):
        role_readme.load_role(role)


def test_the_script_runs_from_a_checkout_and_reports_through_its_exit_code(tmp_path: Path) -> None:
    """scripts/role-readme is what `make lint` calls: stale -> 1 with --check, then regenerated -> 0."""
    make_role(tmp_path)
    script = [sys.executable, str(REPO / "scripts" / "role-readme"), "--roles-dir", str(tmp_path)]

    stale = subprocess.run([*script, "--check"], capture_output=True, text=True, check=False)
    assert stale.returncode == 1, stale.stderr
    fixed = subprocess.run(script, capture_output=True, text=True, check=False)
    assert fixed.returncode == 0, fixed.stderr
    assert "updated demo/README.md" in fixed.stdout
    clean = subprocess.run([*script, "--check"], capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stderr
