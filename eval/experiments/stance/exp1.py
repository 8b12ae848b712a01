import sys; sys.path.insert(0,"eval/experiments/stance")
from lib import *
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
S=load_states(["target/stance-states.jsonl","target/stance-states-b.jsonl"])
# Round 1 only: these ran before the round-2 rows joined the split.
r1=lambda rows: [r for r in rows if not r["id"].startswith("news-")]
tr=r1(load_rows(["data/stance/train.jsonl"])); dv=r1(load_rows(["data/stance/dev.jsonl"]))
nw=load_rows(["data/stance/raw/news-a.jsonl","data/stance/raw/news-b.jsonl","data/stance/raw/news-c.jsonl"])
def feats(rows,keys,ctx):
    docs=docs_of(rows); out=[]
    for i,r in enumerate(rows):
        v=[np.concatenate([S[r["id"]][k] for k in keys])]
        if ctx:
            def get(j):
                if 0<=j<len(rows) and docs[j]==docs[i]: return np.concatenate([S[rows[j]["id"]][k] for k in keys])
                return np.zeros_like(v[0])
            nb=(get(i-1)+get(i+1))/2
            v.append(nb)
            if ctx>1:
                # doc first segment (headline)
                j=i
                while j>0 and docs[j-1]==docs[i]: j-=1
                v.append(get(j))
        out.append(np.concatenate(v))
    return np.array(out)
def run(keys,ctx,clf):
    Xtr,Xdv,Xnw=[feats(r,keys,ctx) for r in (tr,dv,nw)]
    Ytr,Ydv,Ynw=Y(tr),Y(dv),Y(nw)
    P=[];Q=[]
    for j in range(3):
        m=clf(); m.fit(Xtr,Ytr[:,j])
        P.append(m.predict_proba(Xdv)[:,1]); Q.append(m.predict_proba(Xnw)[:,1])
    P=np.array(P).T; Q=np.array(Q).T
    T=[fit_thr(P[:,j],Ydv[:,j]) for j in range(3)]
    a=macro(P,Ydv,T); b=macro(Q,Ynw,T); c=macro(Q,Ynw,[0.5]*3)
    print(f"{'+'.join(keys):12} ctx{ctx} {clf.__name__ if hasattr(clf,'__name__') else ''} dev {a[0]:.3f} {a[1]}  news {b[0]:.3f} {b[1]} news@.5 {c[0]:.3f}",flush=True)
lr=lambda C: (lambda: LogisticRegression(C=C,max_iter=3000))
for keys in (["e"],["e8"],["ner"],["e","ner"],["e","e8"],["e","e8","ner"]):
    for C in (1,10):
        f=lr(C); f.__name__=f"lr C={C}"
        run(keys,0,f)
for keys in (["e"],["e","ner"]):
    for ctx in (1,2):
        f=lr(10); f.__name__="lr C=10"; run(keys,ctx,f)
