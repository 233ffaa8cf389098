"""`triage` — the command line. Each command calls the same library functions the DAGs call.

Known failures (bad file, bad taxonomy, bad model, database not migrated…) print one clear line
to stderr and exit 1; bad usage exits 2 (Typer's convention).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

# Markup off by default: printed values carry citizens' text, file names and column names, and a
# "[/]" in any of them would be read as a Rich tag (a crash, or styling injected). Styled lines
# pass markup=True and escape() what they interpolate.
console = Console(soft_wrap=True, markup=False)  # log lines stay whole, greppable
err_console = Console(stderr=True, soft_wrap=True, markup=False)

F = TypeVar("F", bound=Callable[..., Any])

SHOW_PROBLEMS = 50  # rejected rows listed in full up to this many, then counted


def print_problems(problems: list[str]) -> None:
    """Each rejected row's message (file, row, field), the first SHOW_PROBLEMS of them."""
    for line in problems[:SHOW_PROBLEMS]:
        console.print(f"  {line}", highlight=False, markup=False)
    if len(problems) > SHOW_PROBLEMS:
        console.print(f"  … and {len(problems) - SHOW_PROBLEMS} more", highlight=False)


def print_error(exc: BaseException | str) -> None:
    err_console.print(f"[bold red]错误 error:[/] {escape(str(exc))}", highlight=False, markup=True)


def handle_errors(fn: F) -> F:
    """Turn the product's own exceptions into a one-line message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from triage.classify.registry import ModelError
        from triage.classify.train import TrainingDataError
        from triage.ingest import FileSchemaError, InputFileError
        from triage.store import DatabaseError
        from triage.taxonomy import TaxonomyError

        try:
            return fn(*args, **kwargs)
        except (
            InputFileError,
            FileSchemaError,
            TaxonomyError,
            ModelError,
            DatabaseError,
            TrainingDataError,
            OSError,  # a read-only or full disk, a missing folder: the system's message says which
        ) as exc:
            print_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


app = typer.Typer(
    help="接诉即办 triage: ingest 12345 tickets, classify, route to street queues, detect hotspots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from triage.cli import api, geo, hotspots, main, model, quarantine, queue

    main.register(app)
    app.add_typer(model.app, name="model", help="train, evaluate, predict, list, show, promote models")
    app.add_typer(queue.app, name="queue", help="street and centre queues")
    app.add_typer(geo.app, name="geo", help="address resolution against the gazetteer")
    app.add_typer(main.db_app, name="db", help="database schema")
    app.add_typer(main.label_app, name="label", help="labelled tickets for retraining")
    app.add_typer(quarantine.app, name="quarantine", help="隔离行 rows a night could not use")
    api.register(app)
    app.add_typer(api.token_app, name="token", help="API tokens: create, list, revoke")
    app.add_typer(
        hotspots.app, name="hotspots", help="surges, events, space-time scan, proactive tasks, governance"
    )


_register()


def run() -> None:  # pragma: no cover
    sys.exit(app())
