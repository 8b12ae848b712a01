import sys; sys.path.insert(0,"eval/experiments/stance")
from lib import *
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
S=load_states(["target/stance-states.jsonl","target/stance-states-b.jsonl","target/stance-states-d.jsonl"])
# Round 1 only: these ran before the round-2 rows joined the split.
r1=lambda rows: [r for r in rows if not r["id"].startswith("news-")]
tr=r1(load_rows(["data/stance/train.jsonl"])); dv=r1(load_rows(["data/stance/dev.jsonl"]))
news={x:load_rows([f"data/stance/raw/news-{x}.jsonl"]) for x in "abcd"}
def X(rows,keys=("e",)): return np.array([np.concatenate([S[r["id"]][k] for k in keys]) for r in rows])
def fitpred(Xtr,Ytr,Xs,mk):
    outs=[[] for _ in Xs]
    for j in range(3):
        m=mk(); m.fit(Xtr,Ytr[:,j])
        for o,x in zip(outs,Xs): o.append(m.predict_proba(x)[:,1])
    return [np.array(o).T for o in outs]
def evalset(name,mk,keys=("e",),add_news=True):
    res=[]
    for held in "abcd":
        trrows=tr+([r for x in "abcd" if x!=held for r in news[x]] if add_news else [])
        P,Q=fitpred(X(trrows,keys),Y(trrows),[X(dv,keys),X(news[held],keys)],mk)
        T=[fit_thr(P[:,j],Y(dv)[:,j]) for j in range(3)]
        res.append((macro(P,Y(dv),T)[0],macro(Q,Y(news[held]),T)[0],macro(Q,Y(news[held]),[.5]*3)[0]))
    r=np.array(res)
    print(f"{name:40} olddev {r[:,0].mean():.3f}  heldnews(thr dev) {r[:,1].mean():.3f} {np.round(r[:,1],3)}  @.5 {r[:,2].mean():.3f}",flush=True)
lr=lambda C: (lambda: LogisticRegression(C=C,max_iter=3000))
evalset("old train only, lr C=10",lr(10),add_news=False)
evalset("+news, lr C=10",lr(10))
evalset("+news, lr C=3",lr(3))
evalset("+news, lr C=30",lr(30))
evalset("+news, e+e8 lr C=10",lr(10),keys=("e","e8"))
evalset("+news, mlp 256",lambda: MLPClassifier((256,),alpha=1e-3,max_iter=300,early_stopping=False,random_state=0))
