"""The import graph is one-way: the contracts in pyproject.toml ([tool.importlinter]),
checked by import-linter on the source (no Django needed)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers import REPO_ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def copy_of_the_sources(destination: Path) -> Path:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for package in config["tool"]["importlinter"]["root_packages"]:
        shutil.copytree(REPO_ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_the_repository_keeps_every_import_contract():
    result = lint_imports(REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_notifications_module_importing_campaigns_breaks_the_layers(tmp_path):
    # given the sources, with the sender reading campaigns again (inside a function, too)
    root = copy_of_the_sources(tmp_path)
    sending = root / "notifications" / "sending.py"
    sending.write_text(sending.read_text() + "\n\ndef _status():\n    from campaigns.models import Campaign\n")

    # when the contracts are checked
    result = lint_imports(root)

    # then the layers contract is broken, by exactly that import
    assert result.returncode == 1
    assert "Campaigns fan out into the delivery ledger" in result.stdout and "BROKEN" in result.stdout
    assert "notifications.sending -> campaigns.models" in result.stdout


def test_an_app_importing_the_runner_breaks_its_contract(tmp_path):
    root = copy_of_the_sources(tmp_path)
    handlers = root / "orders" / "handlers.py"
    handlers.write_text(handlers.read_text() + "\nfrom workers.runner import ConsumerLoop  # noqa\n")

    result = lint_imports(root)

    assert result.returncode == 1
    assert "orders.handlers -> workers.runner" in result.stdout
