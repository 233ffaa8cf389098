"""Hostile input found by review: one bad cell, file or folder layout must never fail the night, and
every input row must still be accounted for (stored, quarantined, or reported as a duplicate).

Each test is one reproduced defect; the rules are in docs/architecture.md ("Nothing lost").
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from triage.ingest import FileSchemaError, InputFileError, ingest_file
from triage.store import IngestFile, Quarantine, Ticket, get_engine

NIGHT = dt.date(2026, 11, 20)
HEADER = "工单编号,受理时间,诉求标题,诉求内容,诉求地址,来电号码,点赞数\n"
PHONE = "13812345678"


def row(tid: str, when: str = "2026-11-20 09:00:00", text: str = "小区门口路灯坏了", votes: str = "") -> str:
    return f"{tid},{when},路灯,{text},望京西园三区,,{votes}\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_jsonl(path: Path, records: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return write(path, "\n".join(lines) + "\n")


def tickets() -> dict:
    with get_engine().connect() as c:
        return {t.ticket_id: t for t in c.execute(select(Ticket)).all()}


def quarantined() -> list:
    with get_engine().connect() as c:
        return c.execute(select(Quarantine).order_by(Quarantine.row_number)).all()


def ledger() -> list:
    with get_engine().connect() as c:
        return c.execute(select(IngestFile).order_by(IngestFile.id)).all()


def rec(tid: str, **kw) -> dict:
    return {"ticket_id": tid, "received_at": "2026-11-20 09:00:00", "text": "小区门口路灯坏了", **kw}


# --- 1. one bad cell must not crash the night ------------------------------------------------------


def test_absurd_votes_do_not_crash_and_keep_the_ticket(db, tmp_path):
    body = row("V1", votes="1e400") + row("V2", votes="3000000000") + row("V3", votes="12")
    r = ingest_file(write(tmp_path / "votes.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 3, 0) and r.balanced
    assert r.warnings["bad_votes"] == 2
    t = tickets()
    assert t["V1"].votes is None and t["V2"].votes is None and t["V3"].votes == 12


def test_out_of_range_timestamps_are_quarantined_naming_the_field(db, tmp_path):
    body = row("D1", "0001-01-01 00:00:00") + row("D2", "9999-12-31 23:59:59-05:00") + row("D3")
    r = ingest_file(write(tmp_path / "dates.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 1, 2) and r.balanced
    for q in quarantined():
        assert q.reason_code == "bad_timestamp" and q.field == "received_at"
        assert "dates.csv, row" in q.reason


def test_utf16_file_with_a_broken_surrogate_pair_is_rejected_with_a_clear_message(db, tmp_path):
    good = (HEADER + row("U1")).encode("utf-16-le")
    data = codecs.BOM_UTF16_LE + good + "\ud83d".encode("utf-16-le", "surrogatepass") + b"A\x00\n\x00"
    f = tmp_path / "u16.csv"
    f.write_bytes(data)
    with pytest.raises(InputFileError, match=r"u16.csv.*UTF-16"):
        ingest_file(f, night=NIGHT)
    (entry,) = ledger()
    assert entry.status == "rejected" and "UTF-16" in entry.message


def test_an_unexpected_error_in_one_row_quarantines_that_row_only(db, tmp_path, monkeypatch):
    from triage.ingest import loader

    real = loader.validate_row

    def flaky(cells, mapping, **kw):
        if cells[mapping["ticket_id"]] == "BOOM":
            raise RuntimeError(f"unexpected value {PHONE}")
        return real(cells, mapping, **kw)

    monkeypatch.setattr(loader, "validate_row", flaky)
    r = ingest_file(write(tmp_path / "guard.csv", HEADER + row("G1") + row("BOOM") + row("G2")), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 2, 1) and r.balanced
    (q,) = quarantined()
    assert q.reason_code == "invalid_row" and "guard.csv, row 3" in q.reason and "RuntimeError" in q.reason
    assert PHONE not in q.reason


def test_lone_surrogates_and_nul_in_json_do_not_fail_the_night(db, tmp_path):
    f = tmp_path / "surrogate.jsonl"
    f.write_text(
        '{"ticket_id": "S1", "received_at": "2026-11-20 09:00", "text": "路灯坏了\\ud83d"}\n'
        '{"ticket_id": "S2", "received_at": "2026-11-20 09:00", "text": "abc\\udc00 \\u0000 def"}\n'
        '{"ticket_id": "S3\\ud83d", "received_at": "2026-11-20 09:00", "text": "正常"}\n'
        + json.dumps(rec("S4"))
        + "\n",
        encoding="utf-8",
    )
    r = ingest_file(f, night=NIGHT)
    assert r.rows_read == 4 and r.balanced
    assert "S4" in tickets()
    for q in quarantined():
        json.dumps(q.raw).encode("utf-8")  # stored and readable back


# --- 2. broken CSV quoting ---------------------------------------------------------------------------


def test_unclosed_quote_quarantines_one_row_and_later_rows_are_read(db, tmp_path):
    body = (
        row("C1")
        + 'C2,2026-11-20 09:00:00,路灯,"没有闭合的引号,望京,,\n'
        + "".join(row(f"C{i}") for i in range(3, 7))
    )
    r = ingest_file(write(tmp_path / "quote.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (6, 5, 1), r.summary()
    (q,) = quarantined()
    assert q.reason_code == "broken_row" and q.row_number == 3
    assert "没有闭合的引号" in q.raw["_line"] and len(q.raw["_line"]) < 3000
    assert set(tickets()) == {"C1", "C3", "C4", "C5", "C6"}


def test_quote_inside_an_unquoted_field_keeps_the_raw_line(db, tmp_path):
    body = row("D1") + f'D2,2026-11-20 09:00:00,t,"噪音"扰民,地址,{PHONE},\n' + row("D3")
    r = ingest_file(write(tmp_path / "midquote.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 2, 1)
    (q,) = quarantined()
    assert q.row_number == 3 and "扰民" in q.raw["_line"]
    assert PHONE not in q.raw["_line"]  # raw lines are PII-masked like raw rows


def test_a_quoted_field_over_several_lines_is_still_one_row(db, tmp_path):
    body = row("M1") + 'M2,2026-11-20 09:00:00,t,"第一行\n第二行, 带逗号",地址,,\n' + row("M3")
    r = ingest_file(write(tmp_path / "multi.csv", HEADER + body), night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 3, 0)
    assert tickets()["M2"].text == "第一行 第二行, 带逗号" and tickets()["M3"].source_row == 5


# --- 3. every sheet of a workbook ----------------------------------------------------------------------


def test_every_sheet_with_data_is_read_or_explained(db, tmp_path):
    cols = {
        "工单编号": ["X1", "X2"],
        "受理时间": ["2026-11-20 09:00", "2026-11-20 09:05"],
        "诉求内容": ["a 路灯", "b 噪音"],
    }
    f = tmp_path / "book.xlsx"
    with pd.ExcelWriter(f, engine="xlsxwriter") as xw:
        pd.DataFrame(cols).to_excel(xw, sheet_name="一月", index=False)
        pd.DataFrame({k: [v.replace("X", "Y") for v in vs] for k, vs in cols.items()}).to_excel(
            xw, sheet_name="二月", index=False
        )
        # same data, own header: other names and order
        pd.DataFrame({"内容": ["c 油烟"], "编号": ["Z1"], "时间": ["2026-11-20 10:00"]}).to_excel(
            xw, sheet_name="三月", index=False
        )
        pd.DataFrame().to_excel(xw, sheet_name="空", index=False)
        pd.DataFrame({"说明": ["本表仅供参考"]}).to_excel(xw, sheet_name="说明", index=False)
    r = ingest_file(f, night=NIGHT)
    assert set(tickets()) == {"X1", "X2", "Y1", "Y2", "Z1"}
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (6, 5, 1) and r.balanced
    (q,) = quarantined()
    assert "sheet '说明'" in q.reason and "required column" in q.reason
    assert "说明" in r.message
    with get_engine().connect() as c:
        src = dict(c.execute(select(Ticket.ticket_id, Ticket.source_row)).all())
    assert len(set(src.values())) == 5  # row numbers stay unique across sheets


def test_a_cover_sheet_first_does_not_reject_the_workbook(db, tmp_path):
    f = tmp_path / "cover.xlsx"
    with pd.ExcelWriter(f, engine="xlsxwriter") as xw:
        pd.DataFrame({"说明": ["本表为11月20日工单", "请勿修改表头"]}).to_excel(
            xw, sheet_name="说明", index=False
        )
        pd.DataFrame().to_excel(xw, sheet_name="空", index=False)
        pd.DataFrame(
            {
                "工单编号": ["W1", "W2"],
                "受理时间": ["2026-11-20 09:00"] * 2,
                "诉求内容": ["路灯坏了", "噪音扰民"],
            }
        ).to_excel(xw, sheet_name="工单", index=False)
    r = ingest_file(f, night=NIGHT)
    assert set(tickets()) == {"W1", "W2"}
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (4, 2, 2) and r.balanced
    assert all("sheet '说明'" in q.reason for q in quarantined())


def test_a_workbook_without_any_usable_sheet_is_rejected_naming_the_first(db, tmp_path):
    f = tmp_path / "notes.xlsx"
    with pd.ExcelWriter(f, engine="xlsxwriter") as xw:
        pd.DataFrame({"说明": ["x"]}).to_excel(xw, sheet_name="说明", index=False)
        pd.DataFrame({"备注": ["y"]}).to_excel(xw, sheet_name="备注", index=False)
    with pytest.raises(FileSchemaError, match="说明"):
        ingest_file(f, night=NIGHT)
    assert tickets() == {} and [e.status for e in ledger()] == ["rejected"]


# --- 4. nothing in the night folder disappears ---------------------------------------------------------


def test_subfolders_are_read_and_unsupported_files_are_rejected_in_the_ledger(db, tmp_path):
    from triage.pipeline import ingest_stage

    night_dir = tmp_path / "inbox" / NIGHT.isoformat()
    write(night_dir / "phone.csv", HEADER + row("F1"))
    write(night_dir / "weibo" / "export.csv", HEADER + row("F2"))
    write(night_dir / "old.xls", "not really excel")
    write(night_dir / ".DS_Store", "junk")
    write(night_dir / "~$lock.xlsx", "junk")
    out = ingest_stage(NIGHT, tmp_path / "inbox")
    assert set(tickets()) == {"F1", "F2"}
    assert out["files"] == 3 and out["rejected_files"] == 1
    rejected = [e for e in ledger() if e.status == "rejected"]
    assert len(rejected) == 1 and "old.xls" in rejected[0].source
    assert "unsupported file type" in rejected[0].message


def test_a_flat_inbox_does_not_sweep_in_other_nights_folders(tmp_path):
    from triage.ingest import expand_paths

    write(tmp_path / "a.csv", HEADER)
    write(tmp_path / "2026-11-19" / "old.csv", HEADER)
    write(tmp_path / "app" / "b.jsonl", "")
    assert expand_paths([tmp_path]) == [tmp_path / "a.csv", tmp_path / "app" / "b.jsonl"]


# --- 5. JSON Lines whose first line is an array ----------------------------------------------------------


def test_jsonl_starting_with_an_array_line_is_still_json_lines(db, tmp_path):
    f = write_jsonl(tmp_path / "arr.jsonl", ['["not","an","object"]', rec("J1"), rec("J2")])
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (3, 2, 1)
    (q,) = quarantined()
    assert q.row_number == 1 and "JSON object" in q.reason


def test_a_real_json_array_file_is_still_read(db, tmp_path):
    f = write(tmp_path / "arr.json", json.dumps([rec("A1"), rec("A2")], ensure_ascii=False, indent=1))
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new) == (2, 2)


# --- 6. column types -----------------------------------------------------------------------------------


def test_binary_parquet_text_is_decoded_or_quarantined(db, tmp_path):
    table = pa.table(
        {
            "ticket_id": ["B1", "B2"],
            "received_at": ["2026-11-20 09:00", "2026-11-20 09:00"],
            "text": pa.array(["路灯坏了".encode(), b"\xff\xfe\xfa"], type=pa.binary()),
        }
    )
    f = tmp_path / "bin.parquet"
    pq.write_table(table, f)
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (2, 1, 1)
    assert tickets()["B1"].text == "路灯坏了"
    (q,) = quarantined()
    assert q.field == "text" and "UTF-8" in q.reason


def test_nested_or_boolean_json_values_in_text_fields_are_quarantined(db, tmp_path):
    f = write_jsonl(
        tmp_path / "types.jsonl",
        [
            rec("N1", text={"内容": "路灯坏了"}),
            rec("N2", text=True),
            rec("N3", address=["a", "b"]),
            rec("N4"),
        ],
    )
    r = ingest_file(f, night=NIGHT)
    assert (r.rows_read, r.rows_new, r.rows_quarantined) == (4, 1, 3)
    fields = {q.ticket_id: q.field for q in quarantined()}
    assert fields == {"N1": "text", "N2": "text", "N3": "address"}


def test_json_keys_first_seen_after_the_first_batch_are_mapped(db, tmp_path, monkeypatch):
    from triage.config import reset_settings

    monkeypatch.setenv("TRIAGE_BATCH_ROWS", "2")
    reset_settings()
    records = [rec("K1"), rec("K2"), rec("K3", address="望京西园三区", category="路灯"), rec("K4")]
    r = ingest_file(write_jsonl(tmp_path / "late.jsonl", records), night=NIGHT)
    assert (r.rows_read, r.rows_new) == (4, 4)
    t = tickets()["K3"]
    assert t.address == "望京西园三区" and t.source_category == "路灯"


# --- 8. no phone or ID numbers in quarantine reasons -------------------------------------------------------


def test_quarantine_reasons_and_raw_lines_carry_no_phone_numbers(db, tmp_path):
    body = row("P1", PHONE) + row(f"手机{PHONE}") + row("P3", "2026-11-20 09:00:00")
    ingest_file(write(tmp_path / "pii.csv", HEADER + body), night=NIGHT)
    jl = write_jsonl(
        tmp_path / "pii.jsonl", [f'{{"ticket_id": "J1", "text": "电话{PHONE}" broken', rec("J2")]
    )
    ingest_file(jl, night=NIGHT)
    qs = quarantined()
    assert len(qs) == 3
    for q in qs:
        stored = q.reason + json.dumps(q.raw, ensure_ascii=False) + (q.ticket_id or "")
        assert PHONE not in stored, stored


def test_quarantine_raw_values_are_masked_as_stored_text_would_be(db, tmp_path):
    # spacing and invisible characters a stored ticket's normalisation removes, and a bare local
    # number that only the caller-phone column says is a phone
    spaced = "噪音扰民请回电 138  1234  5678"
    hidden = "139\u200b1234\u200b5678"
    body = (
        f"Q1,not-a-time,标题,{spaced},地址,62345678,\n"
        f"Q2,2026-11-20 09:00:00,标题,,地址,6234 5678,\n"
        f'Q3,2026-11-20 09:00:00,"{hidden} 未闭合,地址,,\n'
    )
    ingest_file(write(tmp_path / "raw.csv", HEADER + body), night=NIGHT)
    qs = quarantined()
    assert len(qs) == 3
    stored = " ".join(json.dumps(q.raw, ensure_ascii=False) for q in qs)
    for number in ("1234  5678", "12345678", "62345678", "6234 5678", "1391234"):
        assert number not in stored.replace("\u200b", ""), stored
    assert "****5678" in stored


# --- 7. a night that failed half-way, re-run after the file was fixed ------------------------------------------


def test_rerun_after_a_failed_attempt_ends_like_a_clean_run(db, tmp_path, monkeypatch):
    from triage.config import reset_settings
    from triage.ingest import loader
    from triage.pipeline import ingest_stage, night_status

    monkeypatch.setenv("TRIAGE_BATCH_ROWS", "2")
    reset_settings()
    inbox = tmp_path / "inbox"
    f = inbox / NIGHT.isoformat() / "n.csv"
    # batches: R0 + R1(bad time) | R2 R3 | R4 R5 — the first attempt dies writing the third
    write(f, HEADER + row("R0") + row("R1", "x") + "".join(row(f"R{i}") for i in range(2, 6)))
    real = loader._load_batch
    calls = {"n": 0}

    def dies_on_third_batch(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("worker killed")
        return real(*a, **kw)

    monkeypatch.setattr(loader, "_load_batch", dies_on_third_batch)
    with pytest.raises(ConnectionError):
        ingest_stage(NIGHT, inbox)
    assert [e.status for e in ledger()] == ["failed"] and len(quarantined()) == 1
    monkeypatch.setattr(loader, "_load_batch", real)
    # the file is fixed and re-delivered (new checksum): R1 still bad, one row more
    write(f, HEADER + row("R0") + row("R1", "y") + "".join(row(f"R{i}") for i in range(2, 7)))
    ingest_stage(NIGHT, inbox)
    assert [e.status for e in ledger()] == ["superseded", "ingested"]
    st = night_status(NIGHT)
    assert (st["rows_read"], st["rows_upserted"], st["rows_quarantined"]) == (7, 6, 1), st
    assert len(st["files"]) == 1 and len(quarantined()) == 1
    from triage.report.nightly import nightly_context

    assert [f["status"] for f in nightly_context(NIGHT)["files"]] == ["ingested"]  # the report agrees
    before = (len(ledger()), len(quarantined()), len(tickets()))
    again = ingest_stage(NIGHT, inbox)
    assert again["skipped_files"] == 1 and (len(ledger()), len(quarantined()), len(tickets())) == before
    assert night_status(NIGHT)["rows_read"] == 7


# --- third review: value types and duplicates across formats ----------------------------------------


def test_spreadsheet_number_ids_match_the_same_id_sent_as_text_and_booleans_are_refused(db, tmp_path):
    f = tmp_path / "types.parquet"
    pq.write_table(
        pa.table(
            {
                "ticket_id": pa.array([2026112012345678.0, 1e15, 7.0], type=pa.float64()),
                "received_at": ["2026-11-20 09:00:00"] * 3,
                "text": ["小区门口路灯坏了"] * 3,
                "channel": pa.array([None, None, True], type=pa.bool_()),
            }
        ),
        f,
    )
    r = ingest_file(f, night=NIGHT)
    assert set(tickets()) == {"2026112012345678", "1000000000000000"}  # no ".0"
    (q,) = quarantined()
    assert (q.field, q.reason_code, q.ticket_id) == ("channel", "bad_value", "7") and "true/false" in q.reason
    # the same id sent as text from another channel is recognised as the same ticket (here with other
    # content: a conflicting duplicate), never stored as a second one
    r = ingest_file(write(tmp_path / "same.csv", HEADER + row("2026112012345678")), night=NIGHT)
    assert r.rows_quarantined == 1 and len(tickets()) == 2
    assert [q.reason_code for q in quarantined()].count("conflicting_duplicate") == 1


def test_a_json_record_naming_a_key_twice_is_quarantined_not_guessed(db, tmp_path):
    f = tmp_path / "dup.jsonl"
    f.write_text(
        json.dumps(rec("K1"), ensure_ascii=False)
        + '\n{"ticket_id": "K2", "ticket_id": "K3", "received_at": "2026-11-20 09:00:00", "text": "路灯坏了"}\n',
        encoding="utf-8",
    )
    r = ingest_file(f, night=NIGHT)
    assert set(tickets()) == {"K1"} and r.balanced
    (q,) = quarantined()
    assert q.row_number == 2 and "'ticket_id' appears twice" in q.reason


def test_a_conflicting_duplicate_names_the_stored_sheet_row_as_a_person_finds_it(db, tmp_path):
    book = tmp_path / "m.xlsx"
    with pd.ExcelWriter(book, engine="xlsxwriter") as xw:
        pd.DataFrame(
            {"工单编号": ["A1"], "受理时间": ["2026-11-20 09:00"], "诉求内容": ["路灯坏了"]}
        ).to_excel(xw, sheet_name="一月", index=False)
        pd.DataFrame(
            {"工单编号": ["M1"], "受理时间": ["2026-11-20 09:00"], "诉求内容": ["噪音扰民"]}
        ).to_excel(xw, sheet_name="二月", index=False)
    ingest_file(book, night=NIGHT)
    ingest_file(write(tmp_path / "m2.csv", HEADER + row("M1", text="另一件事")), night=NIGHT)
    (q,) = quarantined()
    assert q.reason_code == "conflicting_duplicate"
    assert q.reason.startswith(f"{tmp_path / 'm2.csv'}, row 2, field 'ticket_id'")
    assert "row 2 of sheet 2" in q.reason and "10000002" not in q.reason


def test_beijing_new_year_2000_and_nanosecond_times(db, tmp_path):
    ingest_file(write(tmp_path / "y.csv", HEADER + row("Y1", "2000-01-01 05:00:00")), night=NIGHT)
    assert set(tickets()) == {"Y1"}  # 1999-12-31 21:00 UTC, but the year 2000 in Beijing
    # a Parquet time with nanoseconds is stored with microseconds; the same ticket as text matches
    f = tmp_path / "ns.parquet"
    ts = pd.Timestamp("2026-11-20 09:00:00.123456789", tz="Asia/Shanghai")
    pq.write_table(
        pa.table({"ticket_id": ["N1"], "received_at": pa.array([ts], type=pa.timestamp("ns", tz="Asia/Shanghai")),
                  "text": ["小区门口路灯坏了"]}),
        f,
    )  # fmt: skip
    ingest_file(f, night=NIGHT)
    again = ingest_file(
        write(
            tmp_path / "n1.csv",
            "工单编号,受理时间,诉求内容\nN1,2026-11-20 09:00:00.123456+08:00,小区门口路灯坏了\n",
        ),
        night=NIGHT,
    )
    assert again.rows_unchanged == 1 and again.rows_quarantined == 0
