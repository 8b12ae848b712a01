import json, numpy as np
L=["mediation","conflict","energy"]
def load_rows(paths):
    rows=[]
    for p in paths:
        for line in open(p,encoding="utf-8"):
            if line.strip(): rows.append(json.loads(line))
    return rows
def load_states(paths):
    d={}
    for p in paths:
        for line in open(p):
            r=json.loads(line); d[r["id"]]={k:np.array(v,dtype=np.float32) for k,v in r.items() if k!="id"}
    return d
def Y(rows): return np.array([[l in r["labels"] for l in L] for r in rows],dtype=int)
def docs_of(rows):
    # doc key: "doc" field, else topic (consecutive rows)
    return [r.get("doc") or ("topic:"+r["topic"]) for r in rows]
def f1(p,g):
    tp=(p&g).sum(); fp=(p&~g).sum(); fn=(~p&g).sum()
    return 2*tp/max(2*tp+fp+fn,1)
def fit_thr(s,g):
    best=(0,0.5)
    for t in np.unique(s):
        f=f1(s>=t,g.astype(bool))
        if f>best[0]: best=(f,t)
    return best[1]
def macro(S,G,T): return np.mean([f1(S[:,j]>=T[j],G[:,j].astype(bool)) for j in range(3)]), [round(f1(S[:,j]>=T[j],G[:,j].astype(bool)),3) for j in range(3)]
