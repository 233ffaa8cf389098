"""Regenerate ``data_samples/`` from the seeded generator (`make samples`). Deterministic: the
same code gives byte-identical CSV/JSONL files (Parquet/XLSX carry writer metadata).

Layout written:
  inbox/2026-11-20/       the sample night, split by intake channel into the five formats the
                          hotline's systems export (CSV UTF-8, CSV GB18030, JSONL, Parquet, XLSX),
                          with a few deliberate export glitches for the quarantine to catch
  history/                the 41 nights before it, for baselines, and how each was handled
                          (closed-ticket extract: 签收, 办结, 结案 times and the call-back's satisfaction)
  training/               labelled tickets for the classifier (synthetic + real, relabelled)
  truth/                  what the generator injected (surges, events) and the true labels of the night
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.synth import generate_tickets  # noqa: E402
from triage.tables import write_table  # noqa: E402

NIGHT = dt.date(2026, 11, 20)
START = dt.date(2026, 10, 10)
N_TOTAL = 40_000
SEED = 20261120
OUT = ROOT / "data_samples"
TRUTH_COLS = ["category", "true_street_code", "true_community_code"]
INPUT_COLS = ["ticket_id", "received_at", "title", "text", "address", "district", "street", "community",
              "channel", "caller_phone", "lat", "lon"]  # fmt: skip

# Chinese headers as the hotline's phone system exports them
CN_HEADERS = {
    "ticket_id": "工单编号", "received_at": "受理时间", "title": "诉求标题", "text": "诉求内容",
    "address": "诉求地址", "district": "所属区", "street": "街乡镇", "community": "社区",
    "channel": "来源渠道", "caller_phone": "来电号码", "lat": "纬度", "lon": "经度",
}  # fmt: skip


HISTORY_FILE = f"tickets_{START}_{NIGHT - dt.timedelta(days=1)}.parquet"
CLOSED_FILE = f"closed_{START}_{NIGHT - dt.timedelta(days=1)}.parquet"


def history_handling(history: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """How the history was handled, as the centre's closed-ticket extract lists it: every ticket
    closed before the sample night, 签收 and 办结 times drawn against the deadline its true category
    gets from the router (so some streets answer late), and the call-back's satisfaction (some
    citizens not reached). Each street has its own pace and satisfaction, so the three-rates
    scoreboard has something to rank. Deterministic: seeded per street and by SEED."""
    from triage.route import load_routing
    from triage.taxonomy import load_taxonomy

    tz = "Asia/Shanghai"
    tax, table = load_taxonomy(), load_routing()
    df = history[["ticket_id", "received_at", "title", "text"]].merge(
        truth[["ticket_id", "category", "true_street_code"]], on="ticket_id", how="left"
    )
    received = pd.to_datetime(df["received_at"]).dt.tz_localize(tz)
    hours = np.array([
        tax.tiers[table.tier_for(tax, c, f"{ti or ''} {te}", r.to_pydatetime())[0]].hours
        for c, ti, te, r in zip(df["category"], df["title"], df["text"], received, strict=True)
    ], dtype=float)  # fmt: skip
    # per street: a pace (1 = typical; slower streets answer and finish later) and satisfaction
    streets = df["true_street_code"].fillna("").to_numpy()
    pace, content = {}, {}
    for code in sorted(set(streets)):
        r = np.random.default_rng([SEED, zlib.crc32(code.encode())])
        pace[code], content[code] = r.uniform(0.6, 1.6), r.uniform(0.86, 0.98)
    f = np.array([pace[c] for c in streets])
    p_ok = np.array([content[c] for c in streets])
    rng = np.random.default_rng(SEED + 1)
    n = len(df)
    # 签收 after a share of the deadline (median 10 % × pace); 办结 a while after (median 45 %)
    ack_h = hours * np.exp(rng.normal(np.log(0.10 * f), 1.1, n))
    done_h = ack_h + hours * np.exp(rng.normal(np.log(0.45 * f), 0.6, n))
    close_h = done_h + rng.uniform(4, 72, n)  # the call-back, then 结案
    # everything in the extract closed before the night began: late ones are compressed into the
    # time there was, keeping their order
    elapsed = (pd.Timestamp(NIGHT.isoformat(), tz=tz) - received).dt.total_seconds().to_numpy() / 3600
    left_h = np.where(elapsed > 0.1, elapsed - 0.05, elapsed * 0.5)
    squeeze = np.minimum(1.0, left_h / close_h)
    ack_h, done_h, close_h = ack_h * squeeze, done_h * squeeze, close_h * squeeze
    late = done_h > hours
    reached = rng.random(n) < 0.85
    u = rng.random(n)
    ok = p_ok - np.where(late, 0.12, 0.0)  # a late fix leaves fewer citizens satisfied
    sat = np.where(u < ok * 0.8, "满意", np.where(u < ok, "基本满意", "不满意"))

    def stamp(h: np.ndarray) -> pd.Series:
        return (received + pd.to_timedelta(h, unit="h")).dt.strftime("%Y-%m-%d %H:%M:%S")

    return pd.DataFrame({
        "ticket_id": df["ticket_id"], "status": "结案", "acknowledged_at": stamp(ack_h),
        "resolved_at": stamp(done_h), "closed_at": stamp(close_h),
        "satisfaction": np.where(reached, sat, ""),
    })  # fmt: skip


def write_history_handling() -> Path:
    """Only the closed-ticket extract, from the shipped history and its truth (the other sample
    files are left as they are)."""
    history = pd.read_parquet(OUT / "history" / HISTORY_FILE)
    truth = pd.read_parquet(OUT / "truth" / "history_labels.parquet")
    out = OUT / "history" / CLOSED_FILE
    write_table(history_handling(history, truth), out, parquet_compression_level=19)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only-history-handling", action="store_true",
                    help=f"write only history/{CLOSED_FILE} from the shipped history")  # fmt: skip
    if ap.parse_args().only_history_handling:
        print(write_history_handling())
        return
    res = generate_tickets(N_TOTAL, SEED, start=START, end=NIGHT, labeled=True)
    df = res.tickets
    day = pd.to_datetime(df["received_at"]).dt.date
    night = df[day == NIGHT].reset_index(drop=True)
    history = df[day < NIGHT].reset_index(drop=True)

    inbox = OUT / "inbox" / NIGHT.isoformat()
    inbox.mkdir(parents=True, exist_ok=True)
    for old in inbox.iterdir():
        old.unlink()
    ch = night["channel"].fillna("电话")
    phone, web = night[ch == "电话"], night[ch == "网站"]
    app, wechat, weibo = night[ch == "App"], night[ch == "微信"], night[ch == "微博"]

    # 1. phone system: CSV, UTF-8, Chinese headers
    write_table(phone[INPUT_COLS].rename(columns=CN_HEADERS), inbox / "hotline_phone.csv")
    # 2. legacy web form system: CSV in GB18030, with three export glitches at the end
    legacy = web[INPUT_COLS].rename(columns=CN_HEADERS).copy()
    glitches = pd.DataFrame(
        [
            {**legacy.iloc[0].to_dict(), "诉求内容": "  "},  # empty complaint text → quarantined
            {
                **legacy.iloc[1].to_dict(),
                "工单编号": legacy.iloc[1]["工单编号"] + "-X",
                "受理时间": "20261120 下午",
            },
            legacy.iloc[2].to_dict(),  # the same ticket exported twice → second row quarantined
        ]
    )
    glitches.iloc[0, glitches.columns.get_loc("工单编号")] = legacy.iloc[0]["工单编号"] + "-E"
    write_table(
        pd.concat([legacy, glitches], ignore_index=True), inbox / "legacy_web_gb18030.csv", encoding="gb18030"
    )
    # 3. mobile app: JSON Lines, English keys, plus one truncated line
    jl = inbox / "app.jsonl"
    write_table(app[INPUT_COLS], jl)
    with open(jl, "a", encoding="utf-8") as fh:
        fh.write(
            '{"ticket_id": "APP-TRUNCATED", "received_at": "2026-11-20 23:59:00", "text": "信号不好发送到一半\n'
        )
    # 4. WeChat mini-program: Parquet; 5. Weibo desk: Excel
    write_table(wechat[INPUT_COLS], inbox / "wechat.parquet", parquet_compression_level=19)
    write_table(weibo[INPUT_COLS].rename(columns=CN_HEADERS), inbox / "weibo.xlsx")

    # History: the 41 nights before, one Parquet file (unlabelled input columns only)
    hist_dir = OUT / "history"
    hist_dir.mkdir(parents=True, exist_ok=True)
    write_table(history[INPUT_COLS], hist_dir / HISTORY_FILE, parquet_compression_level=19)

    # Truth for tests and benchmarks
    truth_dir = OUT / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    write_table(night[["ticket_id", *TRUTH_COLS]], truth_dir / f"night_{NIGHT}_labels.csv")
    write_table(
        history[["ticket_id", *TRUTH_COLS]],
        truth_dir / "history_labels.parquet",
        parquet_compression_level=19,
    )
    write_table(history_handling(history, history), hist_dir / CLOSED_FILE, parquet_compression_level=19)
    (truth_dir / "injected.json").write_text(
        json.dumps(res.truth, ensure_ascii=False, indent=1, default=str) + "\n"
    )

    # Training set: an independent synthetic draw (other seed, no injected signals) + real messages
    train = generate_tickets(12_000, 7, labeled=True, surges=False, events=False).tickets
    synthetic = pd.DataFrame(
        {"title": train["title"], "text": train["text"], "category": train["category"], "source": "synthetic"}
    )
    parts = [synthetic]
    real_path = OUT / "real" / "tipdm_labeled29.csv"
    if real_path.exists():
        real = pd.read_csv(real_path, dtype=str, keep_default_na=False)
        parts.append(
            pd.DataFrame(
                {
                    "title": real["title"],
                    "text": real["text"],
                    "category": real["category"],
                    "source": "tipdm-real",
                }
            )
        )
    training = pd.concat(parts, ignore_index=True)
    write_table(training, OUT / "training" / "labeled_tickets.parquet", parquet_compression_level=19)

    counts = {
        "night": len(night), "history": len(history), "training": len(training),
        "by_file": {p.name: p.stat().st_size for p in sorted(inbox.iterdir())},
    }  # fmt: skip
    print(json.dumps(counts, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
