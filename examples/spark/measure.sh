#!/bin/bash
# The scaling figures of the README ("From Python, and on Spark"): the CLI
# alone, the Spark job both ways in local[1] and local[2], Spark's fixed
# cost, the Tagger's load time; each output compared with the CLI's.
# Needs `make release python` and pyspark in target/pyenv (`make test-python`),
# and a corpus: CORPUS (default target/bench40.jsonl, which `arabtag bench` writes).
set -u
cd "$(dirname "$0")/../.."
export SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$PWD/target/pyenv/bin/python PYSPARK_DRIVER_PYTHON=$PWD/target/pyenv/bin/python
C=${CORPUS:-target/bench40.jsonl}
OUT=$(mktemp -d)
CLI=$PWD/target/release/arabtag
PY=target/pyenv/bin/python
lscpu | grep "Model name"
echo "corpus: $C, $(wc -l < "$C") documents, $(wc -c < "$C") bytes"
t() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>"$OUT/err" || { echo FAIL; tail -5 "$OUT/err"; }; echo "$(date +%s.%N) - $s" | bc; }
echo "cli, 2 threads: $(t "$CLI" tag "$C" -o "$OUT/cli.jsonl") s"
for how in pandas pipe; do
  echo "$how local[1], 2 threads a task: $(t $PY examples/spark/tag_spark.py --input "$C" --output "$OUT/$how-1" --how $how --master 'local[1]' --threads 2 --arabtag "$CLI") s"
  echo "$how local[2], 1 thread a task, 2 partitions: $(t $PY examples/spark/tag_spark.py --input "$C" --output "$OUT/$how-2" --how $how --master 'local[2]' --threads 1 --partitions 2 --arabtag "$CLI") s"
done
echo '{"id":"x","text":"قال"}' > "$OUT/one.jsonl"
echo "pandas local[2] on one document: $(t $PY examples/spark/tag_spark.py --input "$OUT/one.jsonl" --output "$OUT/one" --how pandas --master 'local[2]' --threads 1) s"
for i in 1 2 3 4 5; do $PY -c "
import time, arabtag
t = time.perf_counter(); arabtag.Tagger('models/default.toml'); print('Tagger load %.3f s' % (time.perf_counter() - t))"; done
for f in pandas-1 pandas-2 pipe-1 pipe-2; do
  cat "$OUT/$f"/jsonl/part-* | cmp - "$OUT/cli.jsonl" && echo "$f: the CLI's bytes"
done
rm -rf "$OUT"
