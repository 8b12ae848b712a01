import sys; sys.path.insert(0,"eval/experiments/stance")
from lib import *
from sklearn.linear_model import LogisticRegression
S=load_states(["target/stance-states.jsonl","target/stance-states-b.jsonl","target/stance-states-d.jsonl"])
u=np.load("target/use-states.npz")
for i,e in zip(u["ids"],u["E"]): S[str(i)]["u"]=e/np.linalg.norm(e)
# Round 1 only: these ran before the round-2 rows joined the split.
r1=lambda rows: [r for r in rows if not r["id"].startswith("news-")]
tr=r1(load_rows(["data/stance/train.jsonl"])); dv=r1(load_rows(["data/stance/dev.jsonl"]))
news={x:load_rows([f"data/stance/raw/news-{x}.jsonl"]) for x in "abcd"}
def X(rows,keys): return np.array([np.concatenate([S[r["id"]][k] for k in keys]) for r in rows])
def fitpred(Xtr,Ytr,Xs,C):
    outs=[[] for _ in Xs]
    for j in range(3):
        m=LogisticRegression(C=C,max_iter=3000); m.fit(Xtr,Ytr[:,j])
        for o,x in zip(outs,Xs): o.append(m.predict_proba(x)[:,1])
    return [np.array(o).T for o in outs]
def evalset(name,ens,C=10):
    # ens: list of key tuples; probabilities averaged
    res=[]
    for held in "abcd":
        trrows=tr+[r for x in "abcd" if x!=held for r in news[x]]
        Ps=[fitpred(X(trrows,k),Y(trrows),[X(dv,k),X(news[held],k)],C) for k in ens]
        P=np.mean([p[0] for p in Ps],0); Q=np.mean([p[1] for p in Ps],0)
        T=[fit_thr(P[:,j],Y(dv)[:,j]) for j in range(3)]
        res.append((macro(P,Y(dv),T)[0],macro(Q,Y(news[held]),T)[0],macro(Q,Y(news[held]),[.5]*3)[0]))
    r=np.array(res)
    print(f"{name:34} olddev {r[:,0].mean():.3f}  heldnews {r[:,1].mean():.3f} {np.round(r[:,1],3)}  @.5 {r[:,2].mean():.3f}",flush=True)
evalset("use",[("u",)])
evalset("use C=30",[("u",)],30)
evalset("e+e8",[("e","e8")])
evalset("e+e8+u concat",[("e","e8","u")])
evalset("e+u concat",[("e","u")])
evalset("ens(e+e8, u)",[("e","e8"),("u",)])
