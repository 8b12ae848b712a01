"""Shared fixtures of the Python tests: they run against the installed
arabtag wheel (`make test-python` builds and installs it) and the release
CLI (`target/release/arabtag`), with the real model files."""

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The release CLI: ARABTAG_CLI, else cargo's target folder (CARGO_TARGET_DIR
# when set, as `make release` builds it there).
CLI = Path(
    os.environ.get("ARABTAG_CLI")
    or Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release" / "arabtag"
)
MODEL = ROOT / "models" / "default.toml"


def required(var):
    return os.environ.get(var) == "1"


@pytest.fixture(scope="session")
def cli():
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make release`")
    return CLI


@pytest.fixture(scope="session")
def model():
    if not (ROOT / "models" / "e5-small" / "e5-small-q4.bin").exists():
        if required("ARABTAG_REQUIRE_MODELS"):
            pytest.fail("the model files are missing and ARABTAG_REQUIRE_MODELS=1: run `make models`")
        pytest.skip("run `make models`")
    return MODEL


@pytest.fixture(scope="session")
def seeds():
    """The seed articles as {id, text} documents, in file order."""
    return [
        {"id": p.stem, "text": p.read_text(encoding="utf-8")}
        for p in sorted((ROOT / "seeds").glob("*.txt"))
    ]


@pytest.fixture(scope="session")
def tagger(model):
    import arabtag

    return arabtag.Tagger(str(model))


def write_jsonl(path, docs):
    path.write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
    )


def java():
    return shutil.which("java")
