"""`braze-bridge` commands: serve, api, worker, migrate, tenants, tokens, rotate-key, replay."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.cli.replay import replay as replay_command
from braze_bridge.config import Settings, unknown_variables
from braze_bridge.db import migrate as db_migrate
from braze_bridge.db.embedded import DataDirBusy
from braze_bridge.db.engine import (
    MIN_POSTGRES_MAJOR,
    create_engine,
    create_sessionmaker,
    current_revision,
    server_major_version,
)
from braze_bridge.logging import configure_logging, get_logger
from braze_bridge.runtime import ConfigurationError, Runtime, open_runtime, run_worker_process

app = typer.Typer(
    help="braze-bridge: Extole and Antavo webhooks, stored durably and delivered to Braze.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage admin bearer tokens.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(tokens_app, name="tokens")
app.command("replay")(replay_command)

T = TypeVar("T")
log = get_logger(__name__)


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  BRAZE_BRIDGE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        fail("invalid configuration:\n" + "\n".join(lines))
        raise AssertionError from exc  # fail() never returns
    configure_logging(settings.log_level)
    warn_unknown_variables()
    return settings


def warn_unknown_variables() -> None:
    """One warning per `BRAZE_BRIDGE_*` variable no setting reads: most likely a typo."""
    for name, closest in unknown_variables():
        log.warning("config.unknown_variable", variable=name, closest=closest)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # uvicorn re-raises the signal it caught after its graceful shutdown; turning it into
    # SystemExit lets our `finally` blocks stop the embedded Postgres instead of dying mid-way.
    raise SystemExit(128 + signum)


def with_database(settings: Settings, work: Callable[[Runtime], T], *, share: bool = False) -> T:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with open_runtime(settings, share_embedded=share) as runtime:
            return work(runtime)
    except (ConfigurationError, DataDirBusy) as exc:
        fail(str(exc))
        raise AssertionError from exc


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def run_service(coro: Coroutine[Any, Any, T]) -> T:
    """`run_async` for an admin use case: its refusal (a taken slug, an unknown tenant) is
    printed and exits 2."""
    # Imported here: the error vocabulary pulls in FastAPI, which `worker` never needs.
    from braze_bridge.errors import AppError

    try:
        return run_async(coro)
    except AppError as exc:
        fail(exc.message)
        raise AssertionError from exc  # fail() never returns


@asynccontextmanager
async def cli_sessions(runtime: Runtime) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a one-connection engine, disposed when the command is done."""
    engine = create_engine(runtime.database_url, pool_size=1)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@dataclass
class Listeners:
    """The sockets `serve`/`api` answer on, bound before the database starts."""

    api: socket.socket
    metrics: socket.socket | None = None

    def close(self) -> None:
        self.api.close()
        if self.metrics is not None:
            self.metrics.close()


def bind_listeners(settings: Settings) -> Listeners:
    """Bind the API port (and the metrics port) first: a port in use exits 2 with one line
    naming the variable to change, before the embedded database or the banner."""
    from braze_bridge.http_server import PortUnavailable, bind_listener

    try:
        api = bind_listener(settings.host, settings.port, "BRAZE_BRIDGE_PORT (or --port)")
        try:
            metrics = (
                bind_listener(
                    settings.metrics_host or settings.host,
                    settings.metrics_port,
                    "BRAZE_BRIDGE_METRICS_PORT",
                )
                if settings.metrics_port is not None
                else None
            )
        except PortUnavailable:
            api.close()
            raise
    except PortUnavailable as exc:
        fail(str(exc))
        raise AssertionError from exc  # fail() never returns
    return Listeners(api, metrics)


def _serve_api(runtime: Runtime, listeners: Listeners, *, run_worker: bool = False) -> None:
    import uvicorn

    from braze_bridge.app import create_app  # the web stack loads only for serve and api
    from braze_bridge.http_server import server_options

    settings = runtime.settings
    base = f"http://{settings.host}:{settings.port}"
    metrics_at = (
        f"http://{settings.metrics_host or settings.host}:{settings.metrics_port}/metrics"
        if settings.metrics_port is not None
        else f"{base}/metrics"
    )
    typer.echo(
        f"braze-bridge listening on {base}\n  API docs: {base}/docs\n  console:  {base}/console\n"
        f"  metrics:  {metrics_at}\n"
        f"  database: {'embedded in ' + str(settings.data_dir) if runtime.embedded else 'external'}",
        err=True,
    )
    config = uvicorn.Config(
        create_app(runtime, run_worker=run_worker, metrics_listener=listeners.metrics),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        **server_options(settings),
    )
    server = uvicorn.Server(config)
    server.run(sockets=[listeners.api])
    if not server.started:
        sys.exit(3)  # uvicorn's own start-up failure code; its log line says why


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port")] = None,
) -> None:
    """API and one delivery worker in one process (quick start; embedded Postgres if no URL)."""
    settings = load_settings(host=host, port=port)
    listeners = bind_listeners(settings)
    try:
        with_database(settings, lambda runtime: _serve_api(runtime, listeners, run_worker=True))
    finally:
        listeners.close()


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port")] = None,
) -> None:
    """Only the HTTP API (run workers apart with `braze-bridge worker`)."""
    settings = load_settings(host=host, port=port)
    listeners = bind_listeners(settings)
    try:
        with_database(settings, lambda runtime: _serve_api(runtime, listeners))
    finally:
        listeners.close()


@app.command()
def worker() -> None:
    """Only the delivery worker; run as many as you like against one Postgres."""
    settings = load_settings()

    def run(runtime: Runtime) -> None:
        run_async(run_worker_process(runtime))

    with_database(settings, run)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Bind port")] = 9000,
    rate_limit_per_3s: Annotated[
        int, typer.Option(help="/users/track requests per 3 s per key before 429")
    ] = 3000,
    export_rate_limit_per_minute: Annotated[
        int, typer.Option(help="/users/export/ids requests per minute per key before 429")
    ] = 250,
    fail_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests answered 500/503")
    ] = 0.0,
    latency_ms: Annotated[float, typer.Option(min=0.0, help="Delay added to every answer")] = 0.0,
    track_object_cap: Annotated[
        str,
        typer.Option(
            help="Objects per /users/track: combined_75, combined_50 or per_array_75 "
            "(more is 400 Max Input Length Exceeded)"
        ),
    ] = "combined_75",
    legacy_limits: Annotated[
        bool, typer.Option(help="Same as --track-object-cap per_array_75")
    ] = False,
    retry_after: Annotated[
        bool, typer.Option(help="Send Retry-After on 429 (Braze sends X-RateLimit-* only)")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for injected failures")] = None,
) -> None:
    """A local Braze stand-in: point a connection at http://HOST:PORT (needs
    BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL=1); see GET /_sandbox/received."""
    import uvicorn

    from braze_bridge.braze.models import TRACK_OBJECT_CAPS
    from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app

    if track_object_cap not in TRACK_OBJECT_CAPS:
        raise typer.BadParameter(
            f"one of {', '.join(TRACK_OBJECT_CAPS)}", param_hint="--track-object-cap"
        )

    configure_logging("info")
    config = SandboxConfig(
        track_limit_per_3s=rate_limit_per_3s,
        export_limit_per_minute=export_rate_limit_per_minute,
        fail_rate=fail_rate,
        latency_ms=latency_ms,
        track_object_cap="per_array_75" if legacy_limits else track_object_cap,
        retry_after_on_429=retry_after,
        seed=seed,
    )
    typer.echo(f"Braze sandbox on http://{host}:{port} (received: /_sandbox/received)", err=True)
    uvicorn.run(create_sandbox_app(config), host=host, port=port, log_config=None, access_log=False)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION instead")] = False,
) -> None:
    """Apply database migrations (upgrade to head by default)."""
    settings = load_settings()

    def run(runtime: Runtime) -> None:
        if down:
            db_migrate.downgrade(runtime.database_url, revision)
        else:
            db_migrate.upgrade(runtime.database_url, revision)
        typer.echo(f"database at {'downgraded to ' if down else ''}{revision}")

    try:
        with open_runtime(settings, migrate_embedded=False) as runtime:
            run(runtime)
    except ConfigurationError:
        # migrate needs no secret key: run against the URL alone.
        assert settings.database_url is not None  # noqa: S101 - only the URL path raises here
        url = settings.database_url.get_secret_value()
        run(Runtime(settings, url, "", embedded=False))
    except DataDirBusy as exc:
        fail(str(exc))


@app.command()
def check() -> None:
    """Exit 0 when the database answers and its schema is at head (container healthcheck)."""
    settings = load_settings()

    async def probe(url: str) -> tuple[str | None, int]:
        engine = create_engine(url, pool_size=1)
        try:
            return await current_revision(engine), await server_major_version(engine)
        finally:
            await engine.dispose()

    if settings.database_url is None:
        fail("check needs BRAZE_BRIDGE_DATABASE_URL (the embedded database belongs to `serve`)")
        return
    try:
        revision, major = run_async(probe(settings.database_url.get_secret_value()))
    except Exception as exc:  # any failure means "not healthy"
        fail(f"database unreachable: {type(exc).__name__}", code=1)
        return
    if major < MIN_POSTGRES_MAJOR:
        fail(f"PostgreSQL {major} is older than the oldest supported, {MIN_POSTGRES_MAJOR}", code=1)
    if revision != db_migrate.head_revision():
        fail(f"schema at {revision}, code expects {db_migrate.head_revision()}", code=1)
    typer.echo(f"ok: schema at {revision}, PostgreSQL {major}")


@app.command("worker-health")
def worker_health(
    max_age: Annotated[
        float,
        typer.Option(min=1.0, help="Seconds since the loop last ran before it counts as dead"),
    ] = 120.0,
) -> None:
    """Exit 0 while this container's worker loop runs: its BRAZE_BRIDGE_WORKER_HEARTBEAT_FILE
    is younger than --max-age (container healthcheck; reads no database)."""
    from braze_bridge.delivery.heartbeat import heartbeat_age

    settings = load_settings()
    path = settings.worker_heartbeat_file
    if path is None:
        fail("worker-health needs BRAZE_BRIDGE_WORKER_HEARTBEAT_FILE (set it for the worker too)")
        return
    age = heartbeat_age(path)
    if age is None:
        fail(f"no heartbeat at {path}: the worker loop has not run yet", code=1)
        return
    if age > max_age:
        fail(f"the worker loop last ran {age:.0f} s ago (more than {max_age:g} s)", code=1)
    typer.echo(f"ok: worker loop ran {age:.1f} s ago")


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short unique name, e.g. acme")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a tenant and print its id."""
    settings = load_settings()

    async def create(runtime: Runtime) -> str:
        from braze_bridge.admin import tenants as tenant_service

        async with cli_sessions(runtime) as sessions, sessions() as session:
            tenant = await tenant_service.create_tenant(
                session, tenant_service.COMMAND_LINE, slug=slug, name=name or slug
            )
            return str(tenant.id)

    tenant_id = with_database(settings, lambda rt: run_service(create(rt)), share=True)
    typer.echo(tenant_id)


@tokens_app.command("create")
def tokens_create(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug the token belongs to")] = None,
    operator: Annotated[
        bool, typer.Option("--operator", help="Token that sees every tenant")
    ] = False,
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
) -> None:
    """Create an admin token and print it once (it is stored hashed)."""
    if operator == (tenant is not None):
        fail("give exactly one of --tenant SLUG or --operator")
    settings = load_settings()

    async def create(runtime: Runtime) -> str:
        from braze_bridge.admin import tenants as tenant_service

        cli_operator = tenant_service.COMMAND_LINE
        async with cli_sessions(runtime) as sessions, sessions() as session:
            if tenant is None:
                issued = await tenant_service.issue_operator_token(session, cli_operator, name=name)
            else:
                row = await tenant_service.get_tenant_by_slug(session, cli_operator, tenant)
                issued = await tenant_service.issue_token(session, cli_operator, row.id, name=name)
            return issued.token

    token = with_database(settings, lambda rt: run_service(create(rt)), share=True)
    typer.echo(token)


@app.command("rotate-key")
def rotate_key(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Connections per transaction")
    ] = 200,
) -> None:
    """Re-encrypt every stored secret under BRAZE_BRIDGE_SECRET_KEY (see docs/secrets.md).

    Decrypts with the current key or any key in BRAZE_BRIDGE_OLD_SECRET_KEYS; safe to re-run.
    """
    from braze_bridge.admin.keys import KeyRotationReport, rotate_secret_key

    settings = load_settings()

    async def rotate(runtime: Runtime) -> KeyRotationReport:
        async with cli_sessions(runtime) as sessions:
            return await rotate_secret_key(
                sessions,
                runtime.secret_key,
                [key.get_secret_value() for key in runtime.settings.old_secret_keys],
                batch_size=batch_size,
            )

    report = with_database(settings, lambda rt: run_async(rotate(rt)), share=True)
    typer.echo(
        f"connections: {report.connections}  re-encrypted: {report.reencrypted}  "
        f"already current: {report.already_current}  unreadable: {len(report.unreadable)}"
    )
    for connection_id, column in report.unreadable:
        typer.echo(f"  unreadable: connection {connection_id} {column}", err=True)
    if report.unreadable:
        fail(
            "some secrets open with no configured key: add the key they were written with to "
            "BRAZE_BRIDGE_OLD_SECRET_KEYS and run again, or set them anew over the API",
            code=1,
        )


@app.command()
def forget(
    connection: Annotated[str, typer.Option(help="Connection id")],
    external_id: Annotated[str | None, typer.Option(help="The person's external id")] = None,
    email: Annotated[str | None, typer.Option(help="The person's email")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Forget a person in one connection (GDPR / CCPA erasure; see docs/privacy.md).

    Prints how many rows of each kind were removed or redacted, never the person.
    """
    import uuid

    if (external_id is None) == (email is None):
        fail("give exactly one of --external-id or --email")
    try:
        connection_id = uuid.UUID(connection)
    except ValueError:
        fail("--connection is not a connection id")
        raise AssertionError from None
    if not yes and not typer.confirm(
        f"Forget this person in connection {connection_id}? This cannot be undone"
    ):
        fail("nothing was changed", code=1)
    settings = load_settings()

    async def run(runtime: Runtime) -> Any:
        from braze_bridge.admin import forget as forget_service
        from braze_bridge.admin.tenants import COMMAND_LINE
        from braze_bridge.braze.transport import create_http_client
        from braze_bridge.runtime import build_secret_box

        http = create_http_client()
        try:
            async with cli_sessions(runtime) as sessions, sessions() as session:
                return await forget_service.forget_person(
                    session,
                    build_secret_box(runtime),
                    http,
                    COMMAND_LINE,
                    connection_id,
                    external_id=external_id,
                    email=email,
                )
        finally:
            await http.aclose()

    report = with_database(settings, lambda rt: run_service(run(rt)), share=True)
    for kind, count in report.counts.items():
        typer.echo(f"{kind}: {count}")
    if report.braze is not None and report.braze.failed:
        fail(
            f"Braze /users/delete failed for {report.braze.failed} of {report.braze.requests} "
            "requests; what braze-bridge held is forgotten, run again to retry Braze",
            code=1,
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
