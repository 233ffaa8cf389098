"""Tables the CLI reads and writes (CSV/TSV, JSONL, Parquet, XLSX): clear errors naming the file
and line, and output that keeps citizens' text inert."""

from __future__ import annotations

import pandas as pd
import pytest

from triage.ingest.readers import InputFileError
from triage.tables import read_table, write_table


def test_xlsx_output_keeps_citizen_text_as_text(tmp_path):
    import zipfile

    hostile = '=HYPERLINK("http://evil.example","点我")'
    p = write_table(pd.DataFrame({"text": [hostile, "http://example.com 投诉"]}), tmp_path / "o.xlsx")
    sheet = zipfile.ZipFile(p).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<hyperlink" not in sheet  # no live formula, no link
    assert read_table(p)["text"].tolist()[0] == hostile


def test_a_broken_jsonl_line_is_named(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"text": "一"}\n{"text": "二"}\n{"text": 三}\n{"text": "四"}\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"x.jsonl: cannot be read as jsonl, line 3 \("):
        read_table(f)


def test_a_directory_is_not_a_table(tmp_path):
    with pytest.raises(InputFileError, match="is a directory; give a file"):
        read_table(tmp_path)


def test_numbers_come_back_as_written_whatever_the_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from triage.tables import cell_text, read_table

    pq.write_table(pa.table({"label": pa.array([1, None, 3], type=pa.int64()), "text": ["a", "b", None]}),
                   tmp_path / "n.parquet")  # fmt: skip
    (tmp_path / "n.jsonl").write_text(
        '{"label": 1, "text": "a"}\n{"label": null, "text": "b"}\n{"label": 3}\n'
    )
    for name in ("n.parquet", "n.jsonl"):
        df = read_table(tmp_path / name)
        assert [cell_text(v) for v in df["label"]] == ["1", "", "3"], name  # not "1.0", no pd.NA crash
        assert df["label"].fillna("").tolist() == [1, "", 3]


def test_a_workbook_with_data_on_two_sheets_is_refused_not_half_read(tmp_path):
    import pandas as pd

    from triage.ingest import InputFileError
    from triage.tables import read_table

    f = tmp_path / "labels.xlsx"
    with pd.ExcelWriter(f, engine="xlsxwriter") as xw:
        pd.DataFrame({"ticket_id": ["A"], "category": ["other"]}).to_excel(xw, sheet_name="一", index=False)
        pd.DataFrame().to_excel(xw, sheet_name="空", index=False)
    assert read_table(f)["ticket_id"].tolist() == ["A"]  # an empty sheet does not count
    with pd.ExcelWriter(f, engine="xlsxwriter") as xw:
        pd.DataFrame({"ticket_id": ["A"], "category": ["other"]}).to_excel(xw, sheet_name="一", index=False)
        pd.DataFrame({"ticket_id": ["B"], "category": ["other"]}).to_excel(xw, sheet_name="二", index=False)
    with pytest.raises(InputFileError, match="2 sheets hold data \\('一', '二'\\)"):
        read_table(f)
