"""What ships: the sdist, the wheel and their metadata.

* The sdist holds every file that git tracks (the tests with their ``conftest.py``, the
  examples, the docs, the licences, ...), and a quick part of the suite passes when run from the
  unpacked sdist alone.
* The wheel, built from that sdist as ``python -m build`` does, holds exactly the package's files
  (a module or data file left out fails here, by name), the licences and the metadata.
* The metadata says what CI tests: the Python classifiers run from the oldest Python that
  ``.ci/run`` tests to the newest, and the NumPy lower bound is the NumPy that ``.ci/run`` tests.
* The README works on PyPI's page, where a relative link leads nowhere.

The builds run offline: the setuptools of this environment is called directly (PEP 517 without
build isolation), which is why ``dev`` requires ``setuptools>=77``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Files the sdist's build adds beside the repository's own.
GENERATED = re.compile(r"PKG-INFO|setup\.cfg|tinygrad_sgd\.egg-info/.*")

# Run from the unpacked sdist: tests that read the files around the package (README.md, .ci/run,
# pyproject.toml, docs/, examples/, benchmarks/, the digits the package ships) or use the fixtures
# of tests/conftest.py, which the sdist once lacked.
FROM_THE_SDIST = [
    "tests/test_readme.py",
    "tests/test_internals_doc.py",
    "tests/test_data.py",
    "tests/test_nn.py",
    "tests/test_optim.py",
    "tests/test_functional.py",
    "tests/test_examples.py::test_the_required_examples_exist",
    "tests/test_examples.py::test_custom_function_catches_the_wrong_backward",
    "-k",
    "not torch",  # the PyTorch oracles take seconds to import torch and test nothing of the sdist
]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tracked_files() -> list[str]:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs the git checkout: git's file list says what the sdist must hold")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return sorted(f for f in out.split("\0") if f)


def _build(kind: str, source: Path, out: Path) -> Path:
    """``build_meta.build_sdist`` or ``build_wheel`` of the ``source`` tree, as a PEP 517
    front end calls it, in a subprocess (setuptools changes the working directory)."""
    code = f"import sys, setuptools.build_meta as b; print(b.build_{kind}(sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist built from a copy of the tracked files (as in a fresh clone), unpacked, and
    the wheel built from the unpacked sdist."""
    tmp = tmp_path_factory.mktemp("packaging")
    clone = tmp / "clone"
    for name in _tracked_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, clone / name)
    sdist = _build("sdist", clone, tmp / "dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = _build("wheel", unpacked, tmp / "dist")
    return {"sdist": sdist, "unpacked": unpacked, "wheel": wheel}


def test_the_sdist_holds_every_tracked_file(built) -> None:
    with tarfile.open(built["sdist"]) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    tracked = set(_tracked_files())
    missing = sorted(tracked - names)
    assert not missing, f"the sdist lacks {missing}: add them to MANIFEST.in"
    extra = sorted(n for n in names - tracked if not GENERATED.fullmatch(n))
    assert not extra, extra
    for name in ["tests/conftest.py", "LICENSE", "NOTICE", "docs/adding_an_operation.md"]:
        assert name in names


def test_a_quick_part_of_the_suite_passes_from_the_unpacked_sdist(built) -> None:
    """The sdist's own package, tests and files, and nothing from this checkout: the tests run
    in the unpacked folder, with it (alone) on PYTHONPATH for the scripts they start."""
    env = dict(os.environ, PYTHONPATH=str(built["unpacked"]), HYPOTHESIS_PROFILE="quick")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FROM_THE_SDIST],
        cwd=built["unpacked"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", summary) and "error" not in summary, summary
    where = subprocess.run(
        [sys.executable, "-c", "import tinygrad_sgd; print(tinygrad_sgd.__file__)"],
        cwd=built["unpacked"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(built["unpacked"]), where


def test_the_wheel_holds_exactly_the_package_and_the_licences(built) -> None:
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = set(whl.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = HeaderParser().parsestr(whl.read(metadata).decode("utf-8"))
    package = {n for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    expected = {n for n in _tracked_files() if n.startswith("tinygrad_sgd/")}
    assert sorted(expected - package) == [], "files of the package missing from the wheel"
    assert sorted(package - expected) == [], "files in the wheel that the repository lacks"
    dist_info = metadata.rsplit("/", 1)[0]
    assert {f"{dist_info}/licenses/LICENSE", f"{dist_info}/licenses/NOTICE"} <= names
    assert meta["License-Expression"] == "MIT AND CC-BY-4.0"
    assert meta["Requires-Python"] == ">=3.10"
    assert sorted(meta.get_all("License-File")) == ["LICENSE", "NOTICE"]
    assert "progress" not in (meta.get_all("Provides-Extra") or [])
    assert "cpu" not in str(meta).lower().replace("cpus", ""), "no claim about a CPU build"


def test_licence_files_say_what_the_readme_says() -> None:
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License")
    # The README's attribution of the shipped digits, repeated in the notice.
    attribution = README.split("## Data and attribution", 1)[1].split("\n## ", 1)[0]
    for fact in ["E. Alpaydin and C. Kaynak", "1998", "https://doi.org/10.24432/C50P49"]:
        assert fact in attribution and fact in notice, fact
    assert "CC BY 4.0" in attribution
    assert "https://creativecommons.org/licenses/by/4.0/" in notice
    assert "tinygrad_sgd/data/digits.npz" in notice


def _ci_pythons() -> list[tuple[int, int]]:
    """The Python versions that .ci/run tests: the extra interpreters it names, and the one
    that runs the main suite (.ci/run's `python3`, this interpreter in CI)."""
    found = re.findall(r"/versions/3\.(\d+)\.\d+/bin/python", CI)
    return sorted({(3, int(minor)) for minor in found} | {sys.version_info[:2]})


def test_the_python_versions_claimed_are_the_ones_ci_tests() -> None:
    config = _pyproject()
    project = config["project"]
    claimed = sorted(
        tuple(int(p) for p in c.rsplit(" ", 1)[1].split("."))
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    oldest, newest = _ci_pythons()[0], _ci_pythons()[-1]
    assert claimed == [(3, m) for m in range(oldest[1], newest[1] + 1)]
    assert project["requires-python"] == f">={oldest[0]}.{oldest[1]}"
    assert config["tool"]["mypy"]["python_version"] == f"{oldest[0]}.{oldest[1]}"
    assert config["tool"]["ruff"]["target-version"] == f"py{oldest[0]}{oldest[1]}"
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "tinygrad_sgd" / "py.typed").is_file()


def test_the_numpy_lower_bound_is_the_numpy_ci_tests() -> None:
    (numpy,) = [d for d in _pyproject()["project"]["dependencies"] if d.startswith("numpy")]
    lower = re.fullmatch(r"numpy>=([\d.]+)", numpy)
    assert lower, numpy
    pins = {Version(v) for v in re.findall(r"numpy==([\d.]+)", CI)}
    assert pins == {Version(lower.group(1))}, (pins, numpy)


def test_every_extra_installs_something() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    assert all(extras.values()), [name for name, reqs in extras.items() if not reqs]


def test_readme_links_work_on_pypi() -> None:
    """PyPI shows the README without the repository around it: a relative link leads nowhere.
    Links into the repository are absolute, under its Source URL, and name a file it holds."""
    source = _pyproject()["project"]["urls"]["Source"].rstrip("/")
    links = re.findall(r"\]\(([^)\s]+)\)", README) + re.findall(r"<(https?://[^>]+)>", README)
    assert links
    relative = [x for x in links if not re.match(r"https?://", x)]  # PyPI adds no heading anchors
    assert not relative, relative
    inside = [x for x in links if x.startswith(source + "/")]
    assert len(inside) >= 8, inside
    for link in inside:
        path = re.fullmatch(re.escape(source) + r"/(?:blob|tree)/main/([^#?]+)", link)
        assert path, f"{link}: not a link to a file of the main branch"
        assert (ROOT / path.group(1)).exists(), link


def test_readme_install_line_names_the_published_package() -> None:
    name = _pyproject()["project"]["name"]
    assert re.search(rf"^pip install {re.escape(name)}\b", README, flags=re.M)
