"""Faults found by a hostile test run (issue 22): a file that shrinks while read, files and rows too big
for a worker, two runs of one night at once, a killed parallel ingest, a read-only var/.

Nothing is mocked: real files are truncated mid-read, real processes are started and killed, on
SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from triage.config import reset_settings
from triage.ingest import InputFileError, ingest_file
from triage.ingest import loader as loader_mod
from triage.store import IngestFile, Quarantine, Ticket, get_engine

NIGHT = dt.date(2026, 11, 20)
REAL_LOAD_BATCH = loader_mod._load_batch
HEADER = "工单编号,受理时间,诉求标题,诉求内容,诉求地址,来电号码\n"


def rows(n: int, start: int = 0) -> str:
    return "".join(
        f"S{i:06d},2026-11-20 09:{i % 60:02d}:00,噪音,望京街道某小区夜间施工噪音扰民第{i}次,望京西园三区,\n"
        for i in range(start, start + n)
    )


def json_record(tid: str, text: str = "路灯坏了") -> str:
    return json.dumps({"ticket_id": tid, "received_at": "2026-11-20 09:00", "text": text}, ensure_ascii=False)


def count(model) -> int:
    with get_engine().connect() as c:
        return c.execute(select(func.count()).select_from(model)).scalar_one()


def ledger() -> list:
    with get_engine().connect() as c:
        return c.execute(select(IngestFile).order_by(IngestFile.id)).all()


def truncate_after(monkeypatch: pytest.MonkeyPatch, batches: int, path: Path, size: int) -> None:
    """Cut ``path`` to ``size`` bytes once ``batches`` batches are stored: the real loader keeps reading."""
    real = loader_mod._load_batch
    calls = {"n": 0}

    def load_then_cut(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == batches:
            os.truncate(path, size)

    monkeypatch.setattr(loader_mod, "_load_batch", load_then_cut)


# --- 1. a file that shrinks while it is read ----------------------------------------------------


def test_a_file_cut_while_read_is_failed_and_the_complete_file_is_read_again(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_BATCH_ROWS", "1000")
    reset_settings()
    full = (HEADER + rows(20_000)).encode()
    f = tmp_path / "night.csv"
    f.write_bytes(full)
    cut_at = len((HEADER + rows(10_000)).encode())  # the file ends after row 10,001 (line 10,001)
    truncate_after(monkeypatch, 4, f, cut_at)
    with pytest.raises(InputFileError, match="changed while it was read") as exc:
        ingest_file(f, night=NIGHT)
    assert "night.csv" in str(exc.value) and "→" in str(exc.value)
    (entry,) = ledger()
    assert entry.status == "failed" and "changed while it was read" in entry.message
    assert entry.rows_read == entry.rows_new + entry.rows_unchanged + entry.rows_quarantined
    assert count(Ticket) == entry.rows_new == 10_000  # what was read is kept

    # the complete file put back: read again (not "already ingested"), every ticket arrives once
    monkeypatch.setattr(loader_mod, "_load_batch", REAL_LOAD_BATCH)
    f.write_bytes(full)
    r = ingest_file(f, night=NIGHT)
    assert r.status == "ingested" and r.balanced
    assert (r.rows_read, r.rows_new, r.rows_unchanged) == (20_000, 10_000, 10_000)
    assert count(Ticket) == 20_000 and count(Quarantine) == 0
    assert [e.status for e in ledger()] == ["ingested"]


def test_a_cut_in_the_middle_of_a_character_says_the_file_changed(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_BATCH_ROWS", "100")
    reset_settings()
    text = HEADER + rows(2_000)
    f = tmp_path / "cut.csv"
    f.write_bytes(text.encode())
    whole = len((HEADER + rows(1_500)).encode())
    cut_at = whole + len("S001500,2026-11-20 09:00:00,噪音,望".encode()) - 1  # inside 望 (3 bytes)
    truncate_after(monkeypatch, 2, f, cut_at)
    with pytest.raises(InputFileError) as exc:
        ingest_file(f, night=NIGHT)
    assert "changed while it was read" in str(exc.value)
    assert "undecodable" not in str(exc.value)
    assert ledger()[0].status == "failed"


def test_a_file_deleted_while_read_still_finishes_from_its_handle(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_BATCH_ROWS", "100")
    reset_settings()
    f = tmp_path / "gone.csv"
    f.write_bytes((HEADER + rows(1_000)).encode())
    real = loader_mod._load_batch

    def load_then_delete(*args, **kwargs):
        real(*args, **kwargs)
        if f.exists():
            f.unlink()

    monkeypatch.setattr(loader_mod, "_load_batch", load_then_delete)
    r = ingest_file(f, night=NIGHT)
    assert r.status == "ingested" and r.rows_new == 1_000 and r.balanced


# --- 4. size limits that protect the workers -------------------------------------------------------


def test_a_file_over_the_limit_is_refused_by_its_size_without_being_read(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_MAX_FILE_BYTES", "10000")
    reset_settings()
    f = tmp_path / "big.csv"
    f.write_bytes((HEADER + rows(1_000)).encode())
    read = []
    monkeypatch.setattr(loader_mod, "_sha256_of", lambda fh: read.append(fh) or "x" * 64)
    with pytest.raises(InputFileError, match=r"over the 10,000-byte limit \(TRIAGE_MAX_FILE_BYTES\)"):
        ingest_file(f, night=NIGHT)
    assert read == []  # refused by stat: never hashed
    (entry,) = ledger()
    assert entry.status == "rejected" and "TRIAGE_MAX_FILE_BYTES" in entry.message
    with pytest.raises(InputFileError):  # offered again: the same ledger row, not a new one
        ingest_file(f, night=NIGHT)
    assert len(ledger()) == 1


def test_a_json_array_is_held_whole_so_it_has_its_own_lower_limit(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_MAX_WORKBOOK_BYTES", "1000")
    reset_settings()
    f = tmp_path / "array.json"
    f.write_text("[" + ",".join(json_record(f"A{i}") for i in range(50)) + "]")
    with pytest.raises(InputFileError, match="TRIAGE_MAX_WORKBOOK_BYTES"):
        ingest_file(f, night=NIGHT)
    g = tmp_path / "lines.jsonl"  # the same size as JSON Lines is streamed: under TRIAGE_MAX_FILE_BYTES
    g.write_text("\n".join(json_record(f"L{i}") for i in range(50)))
    assert ingest_file(g, night=NIGHT).rows_new == 50


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_row_over_the_row_limit_is_quarantined_and_the_rest_of_the_file_read(
    db, tmp_path, monkeypatch, suffix
):
    monkeypatch.setenv("TRIAGE_MAX_ROW_BYTES", "5000")
    reset_settings()
    f = tmp_path / f"long.{suffix}"
    if suffix == "csv":
        body = HEADER + rows(2) + "X1,2026-11-20 10:00,t," + "长" * 200_000 + ",地址,\n" + rows(3, start=2)
    else:
        rec = '{"ticket_id": "%s", "received_at": "2026-11-20 09:00", "text": "%s"}\n'
        body = rec % ("J1", "路灯") + rec % ("X1", "长" * 200_000) + rec % ("J2", "路灯")
    f.write_text(body)
    r = ingest_file(f, night=NIGHT)
    assert r.balanced and r.rows_quarantined == 1 and r.rows_new == (5 if suffix == "csv" else 2)
    with get_engine().connect() as c:
        (q,) = c.execute(select(Quarantine)).all()
    assert q.reason_code == "row_too_long" and "600,0" in q.reason and "TRIAGE_MAX_ROW_BYTES" in q.reason
    assert q.row_number == (4 if suffix == "csv" else 2)
    assert len(q.raw["_line"]) < 2_100  # an excerpt, not the row


def peak_rss_mb_of_ingest(path: Path) -> float:
    """`triage ingest` in its own process; its peak resident memory (MB)."""
    import subprocess
    import sys

    triage = Path(sys.executable).with_name("triage")
    proc = subprocess.Popen([str(triage), "ingest", str(path), "--date", NIGHT.isoformat()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024


def test_a_newline_free_file_is_read_in_pieces_with_bounded_memory(sqlite_db, tmp_path):
    """64 MB without a newline: one quarantined row, and the process does not grow by the file's size."""
    small = tmp_path / "small.csv"
    small.write_text(HEADER + rows(10))
    baseline = peak_rss_mb_of_ingest(small)
    f = tmp_path / "oneline.csv"
    with open(f, "w") as fh:
        fh.write(HEADER)
        for _ in range(64):
            fh.write("a" * (1 << 20))
    peak = peak_rss_mb_of_ingest(f)
    (entry,) = [e for e in ledger() if e.source == str(f)]
    assert (entry.status, entry.rows_read, entry.rows_quarantined) == ("ingested", 1, 1)
    assert peak - baseline < 40, f"peak memory {peak:.0f} MB against {baseline:.0f} MB for a small file"


# --- 2. two runs of one night at once -------------------------------------------------------------


def triage_cmd(*args: str, **env: str):
    import subprocess
    import sys

    triage = Path(sys.executable).with_name("triage")
    return subprocess.Popen([str(triage), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200", **env})  # fmt: skip


def night_of_files(folder: Path, files: int = 4, per_file: int = 5_000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        (folder / f"part{k}.csv").write_text(HEADER + rows(per_file, start=k * per_file))
    return folder


def lock_rows() -> list:
    from triage.store.models import NightLock

    with get_engine().connect() as c:
        return c.execute(select(NightLock)).all()


def assert_ledger_balanced(files: int, total: int) -> None:
    entries = ledger()
    assert len(entries) == files and {e.status for e in entries} == {"ingested"}
    for e in entries:
        assert e.rows_read == e.rows_new + e.rows_unchanged + e.rows_quarantined, e
    assert sum(e.rows_new for e in entries) == count(Ticket) == total


def test_a_second_ingest_of_the_night_waits_for_the_first(db, tmp_path):
    inbox = night_of_files(tmp_path / "inbox")
    import time

    first = triage_cmd("ingest", str(inbox), "--date", NIGHT.isoformat())
    time.sleep(0.3)
    second = triage_cmd("ingest", str(inbox), "--date", NIGHT.isoformat())
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "Traceback" not in err1 + err2
    assert_ledger_balanced(4, 20_000)
    # the one that waited found every file done; the other read them (which was first is up to the OS)
    done = [out for out in (out1, out2) if out.count("already ingested") == 4]
    assert len(done) == 1, out1 + out2
    assert "is busy" in (err1 + err2) and "waiting up to" in (err1 + err2)
    assert lock_rows() == []  # released


def test_a_second_run_that_may_not_wait_says_who_holds_the_night(db, tmp_path):
    from triage.store.locks import night_lock

    inbox = night_of_files(tmp_path / "inbox", files=1, per_file=10)
    with night_lock(NIGHT, "triage ingest"):  # this test process holds the night
        second = triage_cmd("run-nightly", "--date", NIGHT.isoformat(), "--inbox", str(inbox),
                            TRIAGE_NIGHT_LOCK_WAIT="0")  # fmt: skip
        out2, err2 = second.communicate(timeout=120)
        (holder,) = lock_rows()
    assert second.returncode == 1 and "Traceback" not in err2, err2
    line = " ".join(err2.split())
    assert f"night {NIGHT} is busy: triage ingest on host {holder.host}, pid {os.getpid()}, since" in line, (
        err2
    )
    assert ledger() == [] and count(Ticket) == 0  # the refused run wrote nothing
    assert lock_rows() == []


def test_a_lock_left_by_a_killed_run_does_not_block_the_night(db, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from triage.store.locks import night_lock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import datetime as dt, time\n"
        "from triage.store.locks import night_lock\n"
        f"with night_lock(dt.date.fromisoformat('{NIGHT}'), 'doomed run'):\n"
        "    print('held', flush=True); time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    from triage.store.locks import NightBusy

    with pytest.raises(NightBusy, match="doomed run"), night_lock(NIGHT, "test", wait=0):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.monotonic()
    with night_lock(NIGHT, "after the kill", wait=30):
        (row,) = lock_rows()
        assert row.what == "after the kill" and row.pid == os.getpid()
    assert time.monotonic() - t0 < 10


# --- 3. one open proactive task per key, kept by the database ------------------------------------------


def planned_tasks(n: int) -> list[dict]:
    return [
        {"task_key": f"surge:110105026:c{i:03d}", "street_code": "110105026", "category": None, "priority": 2,
         "title": f"[未诉先办·激增] 望京街道 c{i}", "evidence": {"type": "surge", "observed": i}}
        for i in range(n)
    ]  # fmt: skip


def _write_tasks_in_child(barrier, n: int) -> None:
    from triage.hotspots.proactive import write_tasks

    barrier.wait()
    write_tasks(NIGHT, planned_tasks(n))


def open_tasks_per_key() -> dict[str, int]:
    from triage.store import QueueItem
    from triage.workflow import load_workflow

    with get_engine().connect() as c:
        rows = c.execute(
            select(QueueItem.task_key, func.count())
            .where(
                QueueItem.kind == "proactive",
                QueueItem.status.not_in(load_workflow().of_kind("fixed", "closed")),
            )
            .group_by(QueueItem.task_key)
        ).all()
    return dict(rows)


def test_the_open_task_index_names_the_workflows_done_statuses():
    from triage.store.models import OPEN_TASK_WHERE
    from triage.workflow import load_workflow

    done = load_workflow().of_kind("fixed", "closed")
    listed = OPEN_TASK_WHERE.split("NOT IN")[1]
    assert sorted(x.strip(" ()'") for x in listed.split(",")) == sorted(done)


def test_two_processes_writing_the_same_tasks_open_each_once(db):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fresh interpreters: the settings come from the environment
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_tasks_in_child, args=(barrier, 150)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    per_key = open_tasks_per_key()
    assert len(per_key) == 150 and set(per_key.values()) == {1}


def test_a_second_open_task_with_the_same_key_is_refused_by_the_database(db):
    from sqlalchemy.exc import IntegrityError

    from triage.hotspots.proactive import write_tasks
    from triage.store import QueueItem

    write_tasks(NIGHT, planned_tasks(1))
    with get_engine().connect() as c:
        (item,) = c.execute(select(QueueItem.__table__)).mappings().all()
    copy = {k: v for k, v in item.items() if k != "id"}
    with pytest.raises(IntegrityError), get_engine().begin() as c:
        c.execute(QueueItem.__table__.insert(), copy)
    with get_engine().begin() as c:  # once the task is closed, a new occurrence may open a new one
        c.execute(QueueItem.__table__.update().values(status="closed"))
        c.execute(QueueItem.__table__.insert(), copy)
    assert open_tasks_per_key() == {item["task_key"]: 1}


def test_migration_0011_closes_duplicates_already_open_and_goes_down_again(db):
    from triage.store import QueueItem, upgrade
    from triage.store.db import downgrade

    downgrade(revision="0004")
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    row = {"kind": "proactive", "queue": "street", "street_code": "110105026", "lead_unit": "街道办事处",
           "departments": [], "sla_tier": "standard", "priority": 2, "due_at": now, "status": "dispatched",
           "return_count": 0, "escalated": False, "version": 1, "created_at": now, "updated_at": now,
           "task_key": "surge:110105026:x", "title": "t", "evidence": {}}  # fmt: skip
    with get_engine().begin() as c:
        for _ in range(3):
            c.execute(QueueItem.__table__.insert(), row)
    upgrade()
    with get_engine().connect() as c:
        statuses = c.execute(select(QueueItem.status).order_by(QueueItem.id)).scalars().all()
    assert statuses == ["dispatched", "closed", "closed"]
    downgrade(revision="0004")
    upgrade()


# --- issue 21.1: a corrected file delivered again supersedes the earlier version ----------------------


def test_a_corrected_file_delivered_again_supersedes_the_earlier_version(db, tmp_path):
    from triage.pipeline import night_status
    from triage.report.nightly import nightly_context

    rec = '{"ticket_id": "%s", "received_at": "2026-11-20 09:%02d", "text": "小区路灯坏了第%d次"}\n'
    good = [rec % (f"A{i}", i, i) for i in range(20)]
    f = tmp_path / "inbox" / "app.jsonl"
    f.parent.mkdir()
    f.write_text("".join(good[:10]) + '{"ticket_id": "A10", "received_at": \n' + "".join(good[11:18])
                 + good[18].replace("2026-11-20 09:18", "昨天") + "".join(good[19:]))  # fmt: skip
    first = ingest_file(f, night=NIGHT)
    assert (first.rows_read, first.rows_new, first.rows_quarantined) == (20, 18, 2)
    f.write_text("".join(good))  # the two broken lines repaired, the rest as before
    second = ingest_file(f, night=NIGHT)
    assert (second.rows_read, second.rows_new, second.rows_unchanged, second.rows_quarantined) == (
        20,
        2,
        18,
        0,
    )
    assert "supersedes earlier versions" in second.message

    entries = ledger()
    assert [e.status for e in entries] == ["superseded", "ingested"]
    assert count(Quarantine) == 0  # the repaired rows no longer count as quarantined
    with get_engine().connect() as c:  # every ticket now comes from the version that counts it
        assert set(c.execute(select(Ticket.source_file_id)).scalars()) == {entries[1].id}
    st = night_status(NIGHT)
    assert [x["source"] for x in st["files"]] == [str(f)]
    assert st["rows_read"] == 20 == st["rows_upserted"] + st["rows_quarantined"] == st["tickets"]
    head = nightly_context(NIGHT)["totals"]  # the report's headline agrees with the database
    assert (head["files"], head["rows_read"], head["tickets"], head["quarantined"]) == (1, 20, 20, 0)

    # a later version without one of the tickets: the ticket is kept and the ledger says so
    f.write_text("".join(good[:19]))
    third = ingest_file(f, night=NIGHT)
    assert (third.rows_read, third.rows_unchanged) == (19, 19)
    assert "1 ticket(s) stored from them are not in this version and are kept" in third.message
    assert [e.status for e in ledger()] == ["superseded", "superseded", "ingested"]


# --- 6. CHAMPION is a version name, not a path; signatures ----------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    from triage.classify.train import prepare, train_model
    from triage.synth import generate_tickets

    df = generate_tickets(300, seed=5).tickets
    df = df[df["category"].isin(df["category"].value_counts().index[:3])].reset_index(drop=True)
    return train_model(prepare(df["title"], df["text"], df["category"]), seed=0, version="v1",
                       params={"max_features": 5_000})  # fmt: skip


def test_champion_naming_a_path_or_a_symlink_out_of_models_is_refused(models, small_model, tmp_path):
    from triage.classify import registry
    from triage.classify.registry import ModelError

    outside = tmp_path / "outside"
    registry.save_model(*small_model, outside / "evil")  # a good model, but not under models/
    models.mkdir()
    for named in ("../outside/evil", str(outside / "evil")):
        (models / "CHAMPION").write_text(named + "\n")
        registry._CHAMPION_CACHE.clear()
        with pytest.raises(ModelError, match="not a version name"):
            registry.load_champion()
    (models / "evil").symlink_to(outside / "evil")
    (models / "CHAMPION").write_text("evil\n")
    with pytest.raises(ModelError, match="leads out of"):
        registry.load_champion()
    with pytest.raises(ModelError, match="leads out of"):
        registry.promote("evil")
    (listed,) = registry.list_versions()
    assert listed["version"] == "evil" and "leads out of" in listed["problem"]


def test_model_list_flags_a_card_whose_checksum_lies(models, small_model):
    from typer.testing import CliRunner

    from triage.classify import registry
    from triage.cli import app

    registry.save_model(*small_model, models / "v1")
    registry.promote("v1")
    card = json.loads((models / "v1" / "card.json").read_text())
    card["artifact"]["sha256"] = "0" * 64
    (models / "v1" / "card.json").write_text(json.dumps(card))
    r = CliRunner().invoke(app, ["model", "list"])
    assert r.exit_code == 0
    assert "* v1" in r.output and "unusable" in r.output and "does not match the card" in r.output


def test_with_a_signing_key_an_unsigned_or_resigned_model_is_refused(models, small_model, monkeypatch):
    from typer.testing import CliRunner

    from triage.classify import registry
    from triage.classify.registry import ModelError
    from triage.cli import app

    registry.save_model(*small_model, models / "v1")  # saved before the key existed: unsigned
    registry.promote("v1")
    monkeypatch.setenv("TRIAGE_MODEL_SIGNING_KEY", "s3cret")
    reset_settings()
    registry._CHAMPION_CACHE.clear()
    with pytest.raises(ModelError, match="not signed"):
        registry.load_champion()
    r = CliRunner().invoke(app, ["model", "sign", "v1"])
    assert r.exit_code == 0, r.output
    assert registry.load_champion().version == "v1"
    registry.save_model(*small_model, models / "v2")  # saved with the key set: signed on save
    assert registry.load_model("v2").version == "v2"

    monkeypatch.setenv("TRIAGE_MODEL_SIGNING_KEY", "another")  # an attacker's key, or a swapped artifact
    reset_settings()
    registry._CHAMPION_CACHE.clear()
    with pytest.raises(ModelError, match="signature does not match"):
        registry.load_champion()
    assert "signature does not match" in {v["version"]: v["problem"] for v in registry.list_versions()}["v1"]


# --- 7. the workers of a parallel ingest die with it ------------------------------------------------------


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its exit status waits to be collected


def test_sigkill_of_a_parallel_ingest_takes_its_workers_with_it(sqlite_db, tmp_path):
    import signal
    import time

    f = tmp_path / "big.csv"
    f.write_text(HEADER + rows(120_000))
    assert f.stat().st_size >= 8 << 20  # large enough to be cleaned in parallel
    proc = triage_cmd("ingest", str(f), "--date", NIGHT.isoformat(), TRIAGE_INGEST_PROCESSES="2")
    deadline = time.monotonic() + 120
    while len(kids := children_of(proc.pid)) < 3:  # two spawn workers and the resource tracker
        assert proc.poll() is None and time.monotonic() < deadline, "the ingest never started its workers"
        time.sleep(0.1)
    time.sleep(1.0)  # the workers are up and cleaning rows
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while alive := [k for k in kids if running(k)]:
        if time.monotonic() > deadline:
            for k in alive:  # leave nothing behind, then fail
                os.kill(k, signal.SIGKILL)
            pytest.fail(f"processes {alive} outlived their SIGKILLed parent")
        time.sleep(0.2)


# --- 8. a read-only var/ -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run-nightly", "ingest"])
def test_a_read_only_var_is_one_line_naming_the_path(sqlite_db, tmp_path, command):
    """Run as root without the capability that overrides file modes, as an operator's account would."""
    import subprocess
    import sys

    inbox = night_of_files(tmp_path / "inbox", files=1, per_file=10)
    var = tmp_path / "var"
    ingest_file(inbox / "part0.csv", night=dt.date(2026, 11, 19))  # a database in WAL mode, as in use
    from triage.store import dispose_engines

    dispose_engines()
    modes = {p: p.stat().st_mode for p in [var, *var.rglob("*")]}
    try:
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        triage = Path(sys.executable).with_name("triage")
        args = ["run-nightly", "--date", str(NIGHT), "--inbox", str(inbox)] if command == "run-nightly" else \
            ["ingest", str(inbox), "--date", str(NIGHT)]  # fmt: skip
        r = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", str(triage), *args],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"}, timeout=120)  # fmt: skip
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert f"{var}" in line and "not writable" in line, line
