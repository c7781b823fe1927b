"""The README's code really runs, and its set-up commands are the ones CI runs.

Every fenced block tagged exactly ``python`` is executed, in order, in one namespace (later
blocks may use names from earlier ones, as a reader would), inside a temporary directory so
that files the examples write do not land in the repository.  Test functions the README defines
(``def test_...``) are then called, so its property-test examples run too.  Use another tag
(``pycon``, ``text``) for code that is not meant to run as shown.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_blocks(text: str, tag: str) -> list[str]:
    return re.findall(rf"^```{tag}[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S)


def test_readme_has_the_sections_users_rely_on() -> None:
    for heading in ["## Set-up on a fresh machine", "## Check your own operation"]:
        assert heading in README
    assert len(fenced_blocks(README, "python")) >= 3


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for k, block in enumerate(fenced_blocks(README, "python")):
        code = compile(block, f"README.md python block {k}", "exec")
        exec(code, namespace)
    tests = {n: f for n, f in namespace.items() if n.startswith("test_") and callable(f)}
    assert tests, "the 'Check your own operation' section defines test functions"
    for fn in tests.values():
        fn()
    out = capsys.readouterr().out
    # The deliberately wrong Swish in "Check your own operation" is caught, and the message
    # says where.
    assert "gradcheck: the analytic gradient does not match" in out
    assert "worst element: index" in out and "tolerance:" in out


def test_readme_gradcheck_example_really_catches_the_typo(tmp_path, monkeypatch) -> None:
    """The README prints the GradcheckError in an ``except``; make sure it is raised at all."""
    import tinygrad_sgd as tg

    monkeypatch.chdir(tmp_path)
    block = next(b for b in fenced_blocks(README, "python") if "class SwishTypo" in b)
    ns: dict[str, object] = {}
    exec(compile(block.split("try:")[0], "README.md", "exec"), ns)
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(ns["SwishTypo"].apply, [ns["x"]])  # type: ignore[attr-defined]


def test_readme_test_command_is_what_ci_runs() -> None:
    """The README's test command must appear verbatim in .ci/run (keep the two in sync)."""
    setup = README.split("## Set-up on a fresh machine", 1)[1]
    bash = fenced_blocks(setup, "bash")
    assert len(bash) >= 2, "two set-up commands: the main job and the tests"
    test_command = next(b.strip() for b in bash if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines(), (test_command, ci)
    shlex.split(test_command)  # well-formed shell words


def test_readme_gradcheck_command_options_exist() -> None:
    """Options the README mentions for ``gradcheck`` are ones the command accepts."""
    import argparse

    from tinygrad_sgd.cli import gradcheck as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    known = {o for a in parser._actions for o in a.option_strings}
    section = README.split("## Check your own operation", 1)[1]
    mentioned = set(re.findall(r"(--[a-z][a-z-]*)", section.split("\n## ", 1)[0]))
    assert mentioned, "the section documents the command's options"
    assert mentioned <= known, mentioned - known


def _readme_layers() -> list[tuple[set[str], bool]]:
    """The "How it works" table's layers, bottom first: (module tails, independent siblings)."""
    section = README.split("## How it works", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    layers = []
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row)  # "\|" inside a cell is an escaped bar
        modules = cells[2]
        tails = {
            p.removeprefix("tinygrad_sgd/").removesuffix("/").removesuffix(".py")
            for p in re.findall(r"`([^`]+)`", modules)
        }
        layers.append((tails, ":" not in modules))
    return layers


def _contract_layers() -> list[tuple[set[str], bool]]:
    """The layers contract of pyproject.toml, bottom first (optional layers unwrapped)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers" and contract["containers"] == ["tinygrad_sgd"]
    layers = []
    for layer in reversed(contract["layers"]):
        parts = re.split(r"[|:]", layer)
        tails = {p.strip().removeprefix("(").removesuffix(")") for p in parts}
        layers.append((tails, ":" not in layer))
    return layers


def test_readme_layer_table_is_the_import_contract() -> None:
    """README's "How it works" table lists exactly the layers that lint-imports enforces, in
    the same order, with the same siblings."""
    readme = _readme_layers()
    assert readme, "the README's layer table was not found"
    assert readme == _contract_layers()


def test_ci_runs_the_import_contract() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.split("#")[0].strip() == "lint-imports" for line in ci.splitlines())
