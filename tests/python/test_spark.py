"""examples/spark/tag_spark.py in local[2] mode, both ways (mapInPandas with
the package, RDD.pipe with the CLI): records equal to one CLI run, record
for record, in JSONL and in Parquet."""

import json
import os
import subprocess
import sys

import pytest

from conftest import MODEL, ROOT, java, required, write_jsonl

if required("ARABTAG_REQUIRE_SPARK"):
    import pyspark  # noqa: F401 (required: a missing pyspark fails, not skips)
else:
    pytest.importorskip("pyspark")
if java() is None:
    if required("ARABTAG_REQUIRE_SPARK"):
        raise RuntimeError("java is missing and ARABTAG_REQUIRE_SPARK=1 (Spark needs a JRE)")
    pytest.skip("no java: Spark cannot start", allow_module_level=True)

JOB = ROOT / "examples" / "spark" / "tag_spark.py"


@pytest.fixture(scope="module")
def corpus(seeds, tmp_path_factory):
    """30 documents: the first six paragraphs of each seed article."""
    docs = []
    for d in seeds:
        paragraphs = [p for p in d["text"].split("\n") if p.strip()]
        docs += [{"id": f"{d['id']}-{i}", "text": p} for i, p in enumerate(paragraphs[:6])]
    assert len(docs) >= 20
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    write_jsonl(path, docs)
    return path, docs


@pytest.fixture(scope="module")
def expected(cli, model, corpus):
    out = subprocess.run(
        [str(cli), "tag", "--model", str(model), str(corpus[0])],
        cwd=ROOT, capture_output=True, check=True,
    )
    return out.stdout.decode().splitlines()


def run_job(how, input_path, out_dir, cli):
    env = dict(os.environ)
    env.update(
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    done = subprocess.run(
        [sys.executable, str(JOB), "--input", str(input_path), "--output", str(out_dir),
         "--model", str(MODEL), "--how", how, "--master", "local[2]", "--partitions", "2",
         "--threads", "1", "--arabtag", str(cli)],
        cwd=ROOT, env=env, capture_output=True, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "30 records, 0 errors" in done.stderr.decode()


def jsonl_lines(out_dir):
    parts = sorted((out_dir / "jsonl").glob("part-*"))
    assert len(parts) >= 2, "two tasks, two part files"
    return [line for p in parts for line in p.read_text(encoding="utf-8").splitlines()]


def parquet_records(out_dir):
    import pyarrow.parquet as pq

    out = {}
    for row in pq.read_table(out_dir / "parquet").to_pylist():
        record = json.loads(row["record"])
        out[row["id"]] = record
        # The structured columns hold the same record.
        entities = [{k: v for k, v in e.items() if v is not None} for e in row["entities"]]
        assert entities == record["entities"], row["id"]
        segments = [dict(s, score=dict(s["score"])) for s in row["segments"]]
        assert segments == record["segments"], row["id"]
        assert row["error"] is None
    return out


@pytest.mark.parametrize("how", ["pandas", "pipe"])
def test_the_spark_job_gives_the_cli_records(how, cli, corpus, expected, tmp_path):
    run_job(how, corpus[0], tmp_path, cli)
    # JSONL: the CLI's own lines, in input order across the part files.
    assert jsonl_lines(tmp_path) == expected
    # Parquet: the same records.
    want = {json.loads(line)["id"]: json.loads(line) for line in expected}
    assert parquet_records(tmp_path) == want


def test_parquet_input(cli, corpus, expected, tmp_path):
    import pandas as pd

    source = tmp_path / "docs.parquet"
    pd.DataFrame(corpus[1]).to_parquet(source)
    run_job("pandas", source, tmp_path / "out", cli)
    assert jsonl_lines(tmp_path / "out") == expected
