"""`triage geo resolve`: address → district / street / community codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from triage.cli import console, handle_errors, new_typer

app = new_typer()


@app.command()
@handle_errors
def resolve(
    input: Annotated[Path, typer.Option("--input", help="CSV, JSONL, Parquet or XLSX file")],
    address_col: Annotated[str, typer.Option("--address-col", help="address column")],
    text_col: Annotated[
        str | None, typer.Option("--text-col", help="complaint text, used when the address is vague")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the input plus result columns here")
    ] = None,
) -> None:
    """地址解析 Resolve each row's address to district_code, street_code, community_code, confidence, method."""
    import pandas as pd

    from triage.geo import get_resolver
    from triage.tables import read_table, require_columns, write_table

    df = read_table(input)
    require_columns(df, [address_col, *([text_col] if text_col else [])], str(input))
    resolver = get_resolver()
    texts = df[text_col] if text_col else [None] * len(df)
    results = [resolver.resolve(a if isinstance(a, str) else None, t if isinstance(t, str) else None)
               for a, t in zip(df[address_col], texts, strict=True)]  # fmt: skip
    res = pd.DataFrame(
        {
            "district_code": [r.district_code or "" for r in results],
            "street_code": [r.street_code or "" for r in results],
            "community_code": [r.community_code or "" for r in results],
            "confidence": [r.confidence for r in results],
            "method": [r.method for r in results],
        }
    )
    if out:
        write_table(pd.concat([df.reset_index(drop=True), res], axis=1), out)
        console.print(f"{len(res)} rows → {out}; street found for {(res.street_code != '').mean():.1%}")
    elif as_json:
        for row in res.to_dict(orient="records"):
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(res.to_csv(index=False), end="")
