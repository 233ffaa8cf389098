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


def beijing(t: Any) -> str:
    """A time as people here read it: Beijing time with the zone written out ("2026-11-28 18:05
    +08:00"). Takes a datetime (naive = UTC, as the database hands them back) or an ISO string;
    anything else is shown as it is."""
    import datetime as dt

    from triage.config import get_settings

    if isinstance(t, str):
        try:
            t = dt.datetime.fromisoformat(t)
        except ValueError:
            return t
    if not isinstance(t, dt.datetime):
        return "" if t is None else str(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M %z").replace("+0800", "+08:00")


def rounded(x: Any, digits: int = 3, percent: bool = False) -> str:
    """A score for people: 0.928, or 93.6% — not 0.9278257789915443; a missing value is "–"."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return "–" if x is None else str(x)
    return f"{100 * x:.1f}%" if percent else f"{x:.{digits}f}"


def print_error(exc: BaseException | str) -> None:
    err_console.print(f"[bold red]错误 error:[/] {escape(str(exc))}", highlight=False, markup=True)


_KNOWN_ERRORS = (
    ("triage.ingest.readers", "InputFileError"),
    ("triage.ingest.schema", "FileSchemaError"),
    ("triage.taxonomy", "TaxonomyError"),
    ("triage.classify.registry", "ModelError"),
    ("triage.store.db", "DatabaseError"),
    ("triage.classify.train", "TrainingDataError"),
)


def _known_errors() -> tuple[type[BaseException], ...]:
    """The product's own exception classes, from the modules already imported: an exception can
    only be of a class whose module was loaded, and importing the classifier's modules (sklearn)
    just to name their errors cost every command ~2 s of start-up."""
    found: list[type[BaseException]] = [OSError]  # a read-only or full disk, a missing folder
    for module, name in _KNOWN_ERRORS:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def handle_errors(fn: F) -> F:
    """Turn the product's own exceptions into a one-line message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _known_errors()):
                raise
            print_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


# -h as well as --help everywhere (sub-commands inherit it from the context). Plain Click help
# rather than Rich panels: at 80 columns the panels cut long option names ("--merge-rare-in…");
# Click wraps the description and never cuts a name.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def new_typer(**kwargs: Any) -> typer.Typer:
    """Every command group is made here, so they all take -h and print their help the same way."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(
        context_settings=CONTEXT_SETTINGS, rich_markup_mode=None, add_completion=False,
        pretty_exceptions_enable=False, **kwargs,
    )  # fmt: skip


app = new_typer(
    help="接诉即办 triage: ingest 12345 tickets, classify, route to street queues, detect hotspots."
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"triage {version('triage')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="版本 show the version and exit"
    ),
) -> None:
    """接诉即办 triage: ingest 12345 tickets, classify, route to street queues, detect hotspots."""


def _register() -> None:
    from triage.cli import api, geo, hotspots, main, model, quarantine, queue

    main.register(app)
    app.add_typer(
        model.app, name="model", help="分类模型 models: train, evaluate, predict, list, show, promote"
    )
    app.add_typer(
        queue.app, name="queue", help="工单队列 street and centre queues: show, export, import closed"
    )
    app.add_typer(geo.app, name="geo", help="地址解析 address resolution against the gazetteer")
    app.add_typer(main.db_app, name="db", help="数据库 database schema: upgrade, current")
    app.add_typer(main.label_app, name="label", help="人工标注 labelled tickets for retraining")
    app.add_typer(quarantine.app, name="quarantine", help="隔离行 quarantined rows a night could not use")
    api.register(app)
    app.add_typer(api.token_app, name="token", help="接口令牌 API tokens: create, list, revoke")
    app.add_typer(
        hotspots.app,
        name="hotspots",
        help="未诉先办 hotspots: surges, events, scan, proactive tasks, governance",
    )


_register()


def run() -> None:  # pragma: no cover
    sys.exit(app())
