"""Ingest: files dropped in the nightly inbox, or incremental pulls from a SQL source."""

from triage.ingest.loader import FileChangedError, IngestReport, expand_paths, ingest_file, local_today
from triage.ingest.readers import InputFileError
from triage.ingest.schema import FileSchemaError
from triage.ingest.sql_source import ingest_sql

__all__ = [
    "FileChangedError",
    "FileSchemaError",
    "IngestReport",
    "InputFileError",
    "expand_paths",
    "ingest_file",
    "ingest_sql",
    "local_today",
]
