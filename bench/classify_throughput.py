"""Classification throughput, end to end from stored text to stored prediction.

Builds a temporary SQLite database with N synthetic tickets of ~300 characters, then times
``classify_pending`` (read batch → normalise → features → calibrated SVM → bulk insert of
predictions with the model version) with the champion model:
- 1 core: one process, all tickets;
- 2 cores: two processes, shards 0 and 1 (as the nightly DAG maps classify over shards).
Model loading is timed separately (once per process per night). Also prints the model's size on
disk and the resident memory it adds, and (``versus_char_svm``) the champion against a plain
character-SVM on the same texts in the same run.

    .venv/bin/python bench/classify_throughput.py [--n 12000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(tmp: str) -> None:
    os.environ["TRIAGE_VAR_DIR"] = tmp
    os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"


def make_db(tmp: str, n: int) -> float:
    _env(tmp)
    from sqlalchemy import insert

    from triage.store import Ticket, get_engine, upgrade
    from triage.synth import generate_tickets

    upgrade()
    df = generate_tickets(n, seed=42, labeled=False).tickets.fillna({"title": "", "text": ""})
    texts = df["text"].tolist()
    rows, now = [], dt.datetime(2026, 11, 20, 4, tzinfo=dt.UTC)
    for i, r in enumerate(df.itertuples()):
        body = r.text
        j = i + 1
        while len(r.title) + len(body) < 300:  # pad to ~300 characters with other tickets' text
            body += texts[j % n]
            j += 1
        body = body[: 300 - len(r.title)]
        rows.append({"ticket_id": f"B{i:07d}", "received_at": now, "received_date": now.date(), "night": now.date(),
                     "title": r.title, "text": body, "content_hash": hashlib.sha1(body.encode()).hexdigest(),
                     "shard": i % 16})  # fmt: skip
    with get_engine().begin() as c:
        c.execute(insert(Ticket), rows)
    return sum(len(r["title"]) + len(r["text"]) for r in rows) / len(rows)


def _rss_mb() -> float:
    """Current resident memory. (Not ru_maxrss: Linux keeps it across exec, so a spawned worker
    starts with its parent's high-water mark and the model's own memory never shows.)"""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(tmp: str, shard: int, n_shards: int, barrier, q) -> None:
    _env(tmp)
    from triage.classify.batch import classify_pending
    from triage.classify.registry import load_champion

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    m = load_champion()
    load_s = time.perf_counter() - t0
    m.estimator.predict_proba([["标题", "预热分词器"]])  # jieba dictionary load is part of start-up
    rss1 = _rss_mb()
    barrier.wait()
    t0 = time.perf_counter()
    r = classify_pending(shard, n_shards, batch_rows=5000)
    q.put({"shard": shard, "classified": r["classified"], "seconds": time.perf_counter() - t0,
           "load_seconds": load_s, "model_rss_mb": rss1 - rss0})  # fmt: skip


def run(tmp: str, n_shards: int) -> dict:
    _env(tmp)
    from sqlalchemy import delete

    from triage.store import Prediction, get_engine

    with get_engine().begin() as c:
        c.execute(delete(Prediction))
    ctx = mp.get_context("spawn")
    barrier, q = ctx.Barrier(n_shards + 1), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(tmp, k, n_shards, barrier, q)) for k in range(n_shards)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [q.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    n = sum(r["classified"] for r in results)
    return {"processes": n_shards, "tickets": n, "wall_seconds": round(wall, 2),
            "tickets_per_second": round(n / wall), "load_seconds": [round(r["load_seconds"], 1) for r in results],
            "model_rss_mb": round(max(r["model_rss_mb"] for r in results))}  # fmt: skip


def versus_char_svm(tmp: str) -> dict:
    """In one process, on the same stored texts: the champion's ``predict_proba`` vs a plain
    character 1–3-gram TF-IDF + LinearSVC (the reference of docs/classifier.md) trained on the
    same generated training file. Text to label only (no database), best of two timings; the
    reference's best of one call and chunks of ``PREDICT_CHUNK`` tickets."""
    _env(tmp)
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC
    from sqlalchemy import select

    from triage.classify.model import PREDICT_CHUNK
    from triage.classify.registry import load_champion
    from triage.store import Ticket, get_engine

    with get_engine().connect() as c:
        rows = c.execute(select(Ticket.title, Ticket.text)).all()
    X = np.array([[t or "", b or ""] for t, b in rows], dtype=object)
    whole = [f"{t}\n{b}" for t, b in X]
    train = pd.read_parquet(ROOT / "data_samples/training/labeled_tickets.parquet").fillna("")
    ref = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LinearSVC())
    ref.fit([f"{t}\n{b}" for t, b in zip(train["title"], train["text"], strict=True)], train["category"])
    est = load_champion().estimator
    est.predict_proba(X[:10])

    def best(f) -> float:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_model = best(lambda: est.predict_proba(X))
    # the reference as it runs fastest: one call, or chunks of PREDICT_CHUNK as the champion does
    t_ref = min(best(lambda: ref.predict(whole)),
                best(lambda: [ref.predict(whole[i : i + PREDICT_CHUNK]) for i in range(0, len(whole), PREDICT_CHUNK)]))  # fmt: skip
    return {"tickets": len(X), "model_per_second": round(len(X) / t_model), "char_svm_per_second": round(len(X) / t_ref),
            "ratio": round(t_ref / t_model, 2), "load_average": os.getloadavg()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/classify_throughput.json")
    args = ap.parse_args()
    from triage.classify.registry import champion_version, models_dir

    with tempfile.TemporaryDirectory() as tmp:
        mean_len = make_db(tmp, args.n)
        champ = champion_version()
        disk = (models_dir() / champ / "model.skops").stat().st_size / 1e6
        out = {"model": champ, "model_disk_mb": round(disk, 1), "mean_chars": round(mean_len), "cpus": os.cpu_count(),
               "load_average": os.getloadavg(), "runs": [run(tmp, 1), run(tmp, 2)],
               "versus_char_svm": versus_char_svm(tmp)}  # fmt: skip
    print(json.dumps(out, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
