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
