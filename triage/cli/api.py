"""`triage serve` and `triage token create|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer

from triage.cli import beijing, console, err_console, handle_errors, new_typer

token_app = new_typer()


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8345,
        workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    ) -> None:
        """启动服务 Run the street-office API, Open311 and the clerks' pages (OpenAPI at /docs, /openapi.json)."""
        import uvicorn

        from triage.store import require_schema

        require_schema()
        console.print(f"serving on http://{host}:{port}  (/web for clerks, /docs for the API)")
        uvicorn.run(
            "triage.api.app:asgi_app", factory=True, host=host, port=port, workers=workers,
            log_level="warning", access_log=False,
        )  # fmt: skip


@token_app.command("create")
@handle_errors
def create(
    role: Annotated[str, typer.Option("--role", help="street | analyst | admin")],
    street: Annotated[str | None, typer.Option("--street", help="street code or name (street role)")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="who holds it (shown in the audit trail)")
    ] = None,
) -> None:
    """创建令牌 Create a token; the secret is printed once and only its hash is stored."""
    from triage.auth import TokenError, create_token
    from triage.queues import CENTRE, UnknownStreet, street_code_for
    from triage.store import require_schema

    require_schema()
    code = None
    if street:
        try:
            code = street_code_for(street)
        except UnknownStreet as exc:
            raise typer.BadParameter(str(exc)) from None
        if code == CENTRE:
            raise typer.BadParameter("the centre works through an admin token, not a street token")
    try:
        secret, rec = create_token(name or "", role, code)
    except TokenError as exc:
        raise typer.BadParameter(str(exc)) from None
    err_console.print(
        f"token {rec['id']} ({rec['role']}{' ' + code if code else ''}, {rec['name']}) — shown once:"
    )
    print(secret)


@token_app.command("list")
@handle_errors
def list_() -> None:
    """令牌列表 Tokens (never the secrets): id, prefix, name, role, street, created, revoked (Beijing time)."""
    from triage.auth import list_tokens
    from triage.store import require_schema

    require_schema()
    # one line per token (long lines wrap, nothing is cut): times in Beijing time with the zone
    for t in list_tokens():
        console.print(
            f"{t['id']:>4}  {t['prefix']}…  {t['name']}  {t['role']}"
            + (f" {t['street_code']}" if t["street_code"] else "")
            + f"  created {beijing(t['created_at'])}"
            + (f"  revoked {beijing(t['revoked_at'])}" if t["revoked_at"] else ""),
            highlight=False,
        )


@token_app.command("revoke")
@handle_errors
def revoke(token: Annotated[str, typer.Argument(help="token id or prefix from `triage token list`")]) -> None:
    """撤销令牌 Revoke a token (it stops working at once in this process, within seconds in running servers)."""
    from triage.auth import revoke_token
    from triage.store import require_schema

    require_schema()
    n = revoke_token(token)
    if n == 0:
        err_console.print(f"no active token {token!r}")
        raise typer.Exit(1)
    console.print(f"revoked {n} token(s)")
