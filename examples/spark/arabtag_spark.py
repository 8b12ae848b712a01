"""Worker side of the Spark jobs in tag_spark.py: imported on the Python
workers (shipped with SparkContext.addPyFile), so that the tagger cached
here is loaded once per worker process, not once per task (a tagger held in
a pickled function's globals would be shipped and reloaded with each task).
"""

import json
import os

from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
)

#: The input: one row per document.
DOC_SCHEMA = StructType(
    [StructField("id", StringType(), False), StructField("text", StringType(), True)]
)

#: A record as arabtag tag writes it (seeds/ANNOTATION.md).
RECORD_SCHEMA = StructType(
    [
        StructField("id", StringType(), False),
        StructField(
            "entities",
            ArrayType(
                StructType(
                    [
                        StructField("start", IntegerType(), False),
                        StructField("end", IntegerType(), False),
                        StructField("type", StringType(), False),
                        StructField("text", StringType(), False),
                        StructField("score", DoubleType(), True),
                    ]
                )
            ),
        ),
        StructField(
            "segments",
            ArrayType(
                StructType(
                    [
                        StructField("start", IntegerType(), False),
                        StructField("end", IntegerType(), False),
                        StructField("labels", ArrayType(StringType()), False),
                        StructField("score", MapType(StringType(), DoubleType()), True),
                    ]
                )
            ),
        ),
        StructField("error", StringType(), True),
    ]
)

#: What the tagging step gives: the id and the record as the CLI's JSON line.
LINE_SCHEMA = "id string, record string"

_TAGGER = None
_TAGGER_KEY = None


def tagger(config, threads):
    """The worker's tagger for `config`, loaded on first use."""
    global _TAGGER, _TAGGER_KEY
    import arabtag

    key = (config, threads)
    if _TAGGER is None or _TAGGER_KEY != key:
        _TAGGER = arabtag.Tagger(config, threads=threads)
        _TAGGER_KEY = key
    return _TAGGER


def tag_batches(config, threads):
    """A mapInPandas function: each batch of (id, text) rows to (id, record)
    rows, the record being the CLI's JSON line for the document."""

    def run(batches):
        import pandas as pd

        t = tagger(config, threads)
        for batch in batches:
            docs = [
                {"id": i, "text": "" if x is None else x}
                for i, x in zip(batch["id"], batch["text"])
            ]
            lines = t.tag_jsonl(docs)
            ids = [json.loads(line)["id"] for line in lines]
            yield pd.DataFrame({"id": ids, "record": lines})

    return run


def doc_line(row):
    """A row as the JSONL line arabtag tag reads on standard input."""
    return json.dumps({"id": row["id"], "text": row["text"] or ""}, ensure_ascii=False)


def pipe_env(threads):
    """The environment of the arabtag processes RDD.pipe starts."""
    env = {"RAYON_NUM_THREADS": str(threads)}
    for key in ("ARABTAG_MODEL", "HF_HUB_OFFLINE", "PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env
