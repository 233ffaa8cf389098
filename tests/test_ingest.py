"""Ingest on real SQLite and PostgreSQL, including every bad input the foundation issue names.

Rules under test (docs/architecture.md):
- naive timestamps are Beijing time; offsets are converted; unreadable ones are quarantined;
- a repeated ticket_id inside one file keeps the first row, later rows are quarantined;
- across files, identical content is "unchanged", different content is quarantined;
- rows read = tickets upserted + rows quarantined, always.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from triage.ingest import FileSchemaError, InputFileError, ingest_file
from triage.store import IngestFile, Quarantine, Ticket, get_engine

NIGHT = dt.date(2026, 11, 20)
HEADER = "工单编号,受理时间,诉求标题,诉求内容,诉求地址,来电号码\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def count(model) -> int:
    with get_engine().connect() as c:
        return c.execute(select(func.count()).select_from(model)).scalar_one()


def tickets() -> dict[str, Ticket]:
    with get_engine().connect() as c:
        return {t.ticket_id: t for t in c.execute(select(Ticket)).all()}


def quarantined() -> list:
    with get_engine().connect() as c:
        return c.execute(select(Quarantine).order_by(Quarantine.row_number)).all()


def good_rows(n: int, prefix: str = "T") -> str:
    return "".join(
        f"{prefix}{i:04d},2026-11-20 09:{i % 60:02d}:00,反映噪音,朝阳区望京街道某小区夜间施工噪音扰民第{i}次,望京西园三区,13812345678\n"
        for i in range(n)
    )


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "utf-8"])
def test_encodings_are_detected_and_text_survives(db, tmp_path, encoding):
    f = write(tmp_path / f"night_{encoding}.csv", HEADER + good_rows(3), encoding)
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 3, 0)
    assert r.encoding == ("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    t = tickets()["T0001"]
    assert t.text == "朝阳区望京街道某小区夜间施工噪音扰民第1次"
    assert t.title == "反映噪音"
    assert t.night == NIGHT


def test_missing_required_column_rejects_whole_file_and_writes_nothing(db, tmp_path):
    f = write(tmp_path / "no_text.csv", "工单编号,受理时间,诉求地址\nA1,2026-11-20 09:00,望京\n")
    with pytest.raises(FileSchemaError) as e:
        ingest_file(f, night=NIGHT)
    msg = str(e.value)
    assert (
        "no_text.csv" in msg and "text" in msg and "工单编号" in msg
    )  # names file, missing field, what it has
    assert count(Ticket) == 0 and count(Quarantine) == 0
    with get_engine().connect() as c:
        status = c.execute(select(IngestFile.status, IngestFile.message)).one()
    assert status[0] == "rejected" and "required column" in status[1]


def test_empty_text_is_quarantined_with_file_row_and_field(db, tmp_path):
    f = write(tmp_path / "empty.csv", HEADER + good_rows(1) + 'E1,2026-11-20 10:00,标题,"   ",地址,\n')
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (2, 1, 1)
    (q,) = quarantined()
    assert q.reason_code == "empty_text" and q.row_number == 3 and q.field == "text"
    assert "empty.csv, row 3, field 'text'" in q.reason
    assert q.ticket_id is None or q.ticket_id == "E1"


def test_duplicates_within_one_file_keep_the_first_row(db, tmp_path):
    body = good_rows(2) + "T0000,2026-11-20 11:00,另一个,重复的工单编号但内容不同,地址,\n"
    r = ingest_file(write(tmp_path / "dup.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 2, 1)
    (q,) = quarantined()
    assert q.reason_code == "duplicate_in_file" and q.row_number == 4 and "row 2" in q.reason
    assert tickets()["T0000"].text.startswith("朝阳区望京街道")  # the first row won


def test_duplicates_across_files_same_content_unchanged_different_content_quarantined(db, tmp_path):
    ingest_file(write(tmp_path / "a.csv", HEADER + good_rows(3)), night=NIGHT)
    # b.csv repeats T0000 identically, changes T0001, adds T9000
    body = good_rows(1) + "T0001,2026-11-20 09:01:00,反映噪音,改过的内容,望京西园三区,13812345678\n"
    body += "T9000,2026-11-20 12:00,新,新的工单,望京,\n"
    r = ingest_file(write(tmp_path / "b.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_unchanged, r.rows_quarantined) == (3, 1, 1, 1)
    assert r.balanced
    (q,) = quarantined()
    assert q.reason_code == "conflicting_duplicate" and q.ticket_id == "T0001"
    assert "already ingested from file #1 row 3" in q.reason
    assert tickets()["T0001"].text.endswith("第1次")  # stored version kept


def test_timestamps_naive_is_beijing_offset_converted_garbage_quarantined(db, tmp_path):
    body = (
        "N1,2026-11-20 09:30:00,t,无时区的时间按北京时间,地址,\n"
        "N2,2026-11-20T09:30:00+00:00,t,带时区的时间要换算,地址,\n"
        "N3,2026年11月20日 8时5分,t,中文日期,地址,\n"
        "N4,昨天下午,t,无法解析,地址,\n"
        "N5,2031-01-01 00:00,t,未来时间,地址,\n"
        "N6,,t,空时间,地址,\n"
    )
    r = ingest_file(write(tmp_path / "ts.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (6, 3, 3)
    t = tickets()
    assert t["N1"].received_at == dt.datetime(2026, 11, 20, 1, 30, tzinfo=dt.UTC)
    assert t["N2"].received_at == dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    assert t["N2"].received_date == dt.date(2026, 11, 20)
    assert t["N3"].received_at == dt.datetime(2026, 11, 20, 0, 5, tzinfo=dt.UTC)
    codes = {q.ticket_id or q.row_number: q.reason_code for q in quarantined()}
    assert sorted(codes.values()) == ["bad_timestamp", "future_timestamp", "missing_field"]
    assert any("昨天下午" in q.reason for q in quarantined())


def test_one_megabyte_text_is_quarantined_not_stored(db, tmp_path):
    huge = "噪" * 1_000_000
    f = write(tmp_path / "huge.csv", HEADER + good_rows(1) + f"H1,2026-11-20 10:00,t,{huge},地址,\n")
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (2, 1, 1)
    (q,) = quarantined()
    assert q.reason_code == "text_too_long" and "1,000,000" in q.reason
    assert len(json.dumps(q.raw, ensure_ascii=False)) < 10_000  # quarantine keeps a bounded excerpt


def test_header_only_file_is_recorded_as_empty(db, tmp_path):
    r = ingest_file(write(tmp_path / "header.csv", HEADER), night=NIGHT)
    assert r.status == "empty" and r.rows_read == 0 and "no data rows" in r.message
    assert count(Ticket) == 0
    assert ingest_file(tmp_path / "header.csv", night=NIGHT).status == "skipped"


def test_missing_unreadable_and_unsupported_paths(sqlite_db, tmp_path):
    with pytest.raises(InputFileError, match="nope.csv: no such file"):
        ingest_file(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="unsupported file type '.doc'"):
        ingest_file(write(tmp_path / "x.doc", "hello"))
    garbage = tmp_path / "bin.csv"
    garbage.write_bytes(b"\x81\x30\xff\xfe\x00" * 10 + b"\xff" * 10)
    with pytest.raises(InputFileError, match="neither UTF-8 nor GB18030"):
        ingest_file(garbage)
    assert count(Ticket) == 0


def test_hostile_strings_are_stored_verbatim_and_harmless(db, tmp_path):
    sql = "'; DROP TABLE tickets; --"
    html = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    df = pd.DataFrame(
        {
            "ticket_id": ["X1", "X2"],
            "received_at": ["2026-11-20 08:00", "2026-11-20 08:01"],
            "text": [f"投诉{sql}", html],
            "address": [sql, html],
        }
    )
    f = tmp_path / "hostile.jsonl"
    df.to_json(f, orient="records", lines=True, force_ascii=False)
    r = ingest_file(f, night=NIGHT)
    assert r.rows_new == 2
    t = tickets()
    assert t["X1"].text == f"投诉{sql}" and t["X1"].address == sql
    assert t["X2"].text == html
    assert count(Ticket) == 2  # the table is still there


def test_pii_is_masked_in_tickets_and_in_quarantine(db, tmp_path):
    body = (
        "P1,2026-11-20 09:00,t,我的手机１３９１２３４５６７８身份证110101199003071234请回电,地址,13912345678\n"
        "P2,bad-time,t,电话13800001111,地址,\n"
    )
    ingest_file(write(tmp_path / "pii.csv", HEADER + body), night=NIGHT)
    t = tickets()["P1"]
    assert "13912345678" not in t.text and "139****5678" in t.text
    assert "110101199003071234" not in t.text and "110***********1234" in t.text
    assert t.caller_masked == "139****5678" and t.caller_hash and "1391234" not in t.caller_hash
    (q,) = quarantined()
    assert "13800001111" not in json.dumps(q.raw, ensure_ascii=False)


def test_excel_mangled_phone_drops_the_field_not_the_row_and_warns(db, tmp_path):
    """1.38123E+10 is what Excel shows for 13812345678: the digits that tell callers apart are
    gone, so it must not be hashed as a caller (it would merge strangers into one repeat caller)."""
    body = (
        "X1,2026-11-20 09:00,t,楼道堆物,地址,1.38123E+10\n"
        "X2,2026-11-20 09:05,t,楼道堆物,地址,1.38123e10\n"
        "X3,2026-11-20 09:10,t,楼道堆物,地址,13812345678\n"
    )
    r = ingest_file(write(tmp_path / "excel.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 3, 0)
    assert r.warnings["bad_phone"] == 2 and "bad_phone: 2" in r.summary()
    t = tickets()
    assert t["X1"].caller_hash is None and t["X1"].caller_masked is None
    assert t["X2"].caller_hash is None
    assert t["X3"].caller_hash and t["X3"].caller_masked == "138****5678"
    assert count(Quarantine) == 0  # rows read = tickets + quarantined still holds
    with get_engine().connect() as c:
        warnings = c.execute(select(IngestFile.warnings)).scalar_one()
    assert warnings["rows"] == {"bad_phone": 2}


def test_broken_csv_rows_are_quarantined_with_line_numbers(db, tmp_path):
    body = good_rows(1) + "B1,2026-11-20 09:00,只有三列\n" + good_rows(1, prefix="Z")
    r = ingest_file(write(tmp_path / "broken.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 2, 1)
    (q,) = quarantined()
    assert q.reason_code == "broken_row" and q.row_number == 3 and "3 fields" in q.reason


def test_rerunning_the_same_file_changes_nothing(db, tmp_path):
    f = write(tmp_path / "night.csv", HEADER + good_rows(5) + "E,2026-11-20 10:00,t,,a,\n")
    first = ingest_file(f, night=NIGHT)
    before = (count(Ticket), count(Quarantine), count(IngestFile))
    again = ingest_file(f, night=NIGHT)
    assert first.status == "ingested" and again.status == "skipped"
    assert (count(Ticket), count(Quarantine), count(IngestFile)) == before


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "xlsx", "tsv"])
def test_every_format_reads_the_same_tickets(db, tmp_path, fmt):
    df = pd.DataFrame(
        {
            "工单编号": ["F1", "F2"],
            "受理时间": ["2026-11-20 09:00:00", "2026-11-20 10:15:00"],
            "诉求内容": ["楼下餐馆油烟直排", "小区群租房隔断"],
            "诉求地址": ["东城区多福巷社区", "沙河镇七里渠南村"],
            "纬度": [39.91, None],
            "经度": [116.41, None],
        }
    )
    from triage.tables import write_table

    f = write_table(df, tmp_path / f"night.{fmt}")
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (2, 2, 0), r.summary()
    t = tickets()
    assert t["F2"].text == "小区群租房隔断"
    assert t["F1"].received_at == dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
    assert t["F1"].lat == pytest.approx(39.91) and t["F2"].lat is None


def test_traditional_and_fullwidth_input_is_normalised(db, tmp_path):
    body = "W1,２０２６-11-20 09:00,反映問題,東城區多福巷社區樓下餐館油煙擾民ＡＢＣ１２３,東城區多福巷社區,\n"
    ingest_file(write(tmp_path / "trad.csv", HEADER + body), night=NIGHT)
    t = tickets()["W1"]
    assert t.text == "东城区多福巷社区楼下餐馆油烟扰民ABC123"
    assert t.address == "东城区多福巷社区"


def test_cli_prints_rows_read_upserted_and_quarantined(sqlite_db, tmp_path):
    from triage.cli import app

    f = write(tmp_path / "cli.csv", HEADER + good_rows(4) + "Q,2026-11-20 10:00,t,,a,\n")
    result = CliRunner().invoke(app, ["ingest", str(f), "--date", "2026-11-20"])
    assert result.exit_code == 0, result.output
    assert "5 rows read = 4 tickets upserted (4 new, 0 unchanged) + 1 quarantined" in result.output
    missing = CliRunner().invoke(app, ["ingest", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 1
    assert "absent.csv: no such file" in missing.output


def _database_state() -> tuple[list, list]:
    with get_engine().connect() as c:
        t = c.execute(
            select(Ticket.ticket_id, Ticket.content_hash, Ticket.source_row).order_by(Ticket.ticket_id)
        ).all()
        q = c.execute(
            select(Quarantine.row_number, Quarantine.reason_code, Quarantine.reason).order_by(
                Quarantine.row_number
            )
        ).all()
    return [tuple(r) for r in t], [tuple(r) for r in q]


def test_parallel_cleaning_gives_the_same_result_as_one_process(sqlite_db, tmp_path, monkeypatch):
    """Large files are cleaned by worker processes, batch by batch, while the previous batch is
    written: the stored tickets and quarantine must equal a one-process run, row for row."""
    from triage.config import reset_settings
    from triage.ingest import loader

    body = good_rows(700)
    body += "T0005,2026-11-20 10:00,重复,同一文件里重复的编号,地址,\n"  # duplicate across batch borders
    body += "X1,不是时间,标题,内容,地址,\n" + "X2,2026-11-20 10:00,标题,,地址,\n"
    body += "".join(
        f"F{i},2026-11-20 10:00,反映噪音,樓上裝修噪音擾民，電話１３８１２３４５６７８,地址,\n"
        for i in range(300)
    )
    path = write(tmp_path / "night.csv", HEADER + body)
    monkeypatch.setenv("TRIAGE_BATCH_ROWS", "128")  # several batches, each split over the workers
    outcomes = []
    for processes in ("1", "2"):
        monkeypatch.setenv("TRIAGE_INGEST_PROCESSES", processes)
        monkeypatch.setattr(loader, "_PARALLEL_MIN_BYTES", 0)
        reset_settings()
        with get_engine().begin() as c:  # a fresh start for each mode
            for model in (Ticket, Quarantine, IngestFile):
                c.execute(model.__table__.delete())
        r = ingest_file(path, night=NIGHT)
        assert (r.rows_read, r.rows_new, r.rows_quarantined) == (1003, 1000, 3) and r.balanced
        outcomes.append(_database_state())
    assert outcomes[0] == outcomes[1]
    tickets_, quarantine = outcomes[1]
    assert [q[1] for q in quarantine] == ["duplicate_in_file", "bad_timestamp", "empty_text"]
    assert "138****5678" in tickets()["F0"].text and "楼上装修" in tickets()["F0"].text


def test_an_id_stored_by_a_concurrent_load_is_never_silently_lost(db, tmp_path, monkeypatch):
    """Two loads racing on one ticket_id: the one whose insert is ignored re-reads the stored
    row; same content counts as unchanged, different content is quarantined."""
    from triage.ingest import loader

    ingest_file(write(tmp_path / "a.csv", HEADER + good_rows(3)), night=NIGHT)
    real_existing = loader._existing
    calls = []

    def lookup_before_the_other_load_committed(conn, ids):
        calls.append(ids)
        return {} if len(calls) == 1 else real_existing(conn, ids)

    monkeypatch.setattr(loader, "_existing", lookup_before_the_other_load_committed)
    body = good_rows(1) + "T0001,2026-11-20 09:01:00,反映噪音,改过的内容,望京西园三区,13812345678\n"
    body += "T9000,2026-11-20 12:00,新,新的工单,望京,\n"
    r = ingest_file(write(tmp_path / "b.csv", HEADER + body), night=NIGHT)
    assert len(calls) == 2  # the race was taken
    assert (r.rows_read, r.rows_new, r.rows_unchanged, r.rows_quarantined) == (3, 1, 1, 1) and r.balanced
    (q,) = quarantined()
    assert (
        q.reason_code == "conflicting_duplicate" and q.ticket_id == "T0001" and "concurrent load" in q.reason
    )
    assert tickets()["T0001"].text.endswith("第1次")


def test_a_daemonic_task_process_cleans_rows_itself(sqlite_db, tmp_path, monkeypatch):
    """Daemonic processes may not start children: ingest then cleans in the process itself."""
    import types

    from triage.config import reset_settings
    from triage.ingest import loader

    def no_pool(*args, **kwargs):
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(loader, "ProcessPoolExecutor", no_pool)
    monkeypatch.setattr(loader.mp, "current_process", lambda: types.SimpleNamespace(daemon=True))
    monkeypatch.setattr(loader, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setenv("TRIAGE_INGEST_PROCESSES", "2")
    reset_settings()
    r = ingest_file(write(tmp_path / "a.csv", HEADER + good_rows(50)), night=NIGHT)
    assert (r.rows_read, r.rows_new) == (50, 50)
