"""Tag a dataset of {id, text} documents with arabtag on Spark, into
Parquet (structured columns) and JSONL (the CLI's own lines).

    python examples/spark/tag_spark.py --input docs.jsonl --output out/ \
        --model models/default.toml --how pandas --master 'local[2]'

--how pandas: mapInPandas with the Python package (pip install the wheel
of `make python` on every worker); one Tagger per Python worker.
--how pipe: RDD.pipe through the arabtag CLI (`--arabtag PATH` on every
worker); one process, and one model load, per partition.

Input: JSONL (`.jsonl`/`.json`) or Parquet (anything else) with string
columns `id` and `text`, read with an explicit schema. Output: OUT/parquet
(id, entities, segments, error, record) and OUT/jsonl (part files whose
lines, in part order, are the CLI's records for the input in its order).
Threads: --threads per task (default: spark.task.cpus), given to the
tagger or to the CLI (--threads and RAYON_NUM_THREADS).
"""

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import arabtag_spark  # noqa: E402


def read_docs(spark, path):
    if path.lower().endswith((".jsonl", ".json")):
        return spark.read.schema(arabtag_spark.DOC_SCHEMA).json(path)
    return spark.read.parquet(path).select("id", "text")


def tag(spark, docs, how, model, threads, arabtag_bin):
    """(id, record) rows: each document's record as the CLI's JSON line."""
    model = os.path.abspath(model)
    if how == "pandas":
        return docs.mapInPandas(
            arabtag_spark.tag_batches(model, threads), schema=arabtag_spark.LINE_SCHEMA
        )
    command = [
        arabtag_bin, "tag", "--model", model, "--threads", str(threads),
        "--input-format", "jsonl", "-",
    ]
    lines = docs.rdd.map(arabtag_spark.doc_line).pipe(
        " ".join(command), env=arabtag_spark.pipe_env(threads)
    )
    return spark.createDataFrame(
        lines.map(lambda line: (__import__("json").loads(line)["id"], line)),
        schema=arabtag_spark.LINE_SCHEMA,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default=os.environ.get("ARABTAG_MODEL", "models/default.toml"))
    parser.add_argument("--how", choices=["pandas", "pipe"], default="pandas")
    parser.add_argument("--master", default=None, help="e.g. local[2]; default: spark-submit's")
    parser.add_argument("--threads", type=int, default=None, help="threads per task")
    parser.add_argument("--partitions", type=int, default=None, help="spread the input over N tasks (order kept)")
    parser.add_argument("--arabtag", default="arabtag", help="the CLI, for --how pipe")
    args = parser.parse_args(argv)

    builder = SparkSession.builder.appName(f"arabtag-{args.how}")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    spark.sparkContext.addPyFile(os.path.join(HERE, "arabtag_spark.py"))
    threads = args.threads or int(spark.conf.get("spark.task.cpus", "1"))

    docs = read_docs(spark, args.input)
    if args.partitions:
        # Spread over N tasks, keeping the input order across the part files.
        docs = (
            docs.withColumn("_n", F.monotonically_increasing_id())
            .repartitionByRange(args.partitions, "_n")
            .sortWithinPartitions("_n")
            .drop("_n")
        )
    lines = tag(spark, docs, args.how, args.model, threads, args.arabtag).cache()
    records = lines.select(
        "id", F.from_json("record", arabtag_spark.RECORD_SCHEMA).alias("r"), "record"
    ).select("id", "r.entities", "r.segments", "r.error", "record")
    records.write.mode("overwrite").parquet(os.path.join(args.output, "parquet"))
    lines.select("record").write.mode("overwrite").text(os.path.join(args.output, "jsonl"))
    errors = records.filter(F.col("error").isNotNull()).count()
    print(f"{lines.count()} records, {errors} errors -> {args.output}", file=sys.stderr)
    spark.stop()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
