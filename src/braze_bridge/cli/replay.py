"""`braze-bridge replay`: replay one event, or every event matching a filter, through the API.

It talks to a running service over HTTP with an admin token (tenant tokens replay only
their own events), so it works against a hosted deployment as well as a local `serve`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from braze_bridge.domain.statuses import EventStatus, ReplayStatus

POLL_SECONDS = 0.5
STATUSES = [status.value for status in EventStatus]
FINISHED = frozenset({ReplayStatus.DONE, ReplayStatus.FAILED})


def _fail(console: Console, message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
    details = error.get("details")
    if isinstance(details, list) and details:
        fields = ", ".join(
            f"{d.get('field')}: {d.get('message')}" for d in details if isinstance(d, dict)
        )
        return f"{error['message']} ({fields})"
    return str(error["message"])


def replay(
    event_id: Annotated[
        uuid.UUID | None, typer.Argument(help="Replay this one event (omit to replay by filter)")
    ] = None,
    connection: Annotated[uuid.UUID | None, typer.Option(help="Only this connection id")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"Only events in this status ({', '.join(STATUSES)})")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only this normalized kind")] = None,
    user: Annotated[str | None, typer.Option(help="Only this external id or email")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Received at or after (ISO 8601, UTC if no zone)")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Received before (ISO 8601, UTC if no zone)")
    ] = None,
    url: Annotated[
        str, typer.Option(envvar="BRAZE_BRIDGE_URL", help="Base URL of the service")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="BRAZE_BRIDGE_TOKEN", help="Admin token (better: set BRAZE_BRIDGE_TOKEN)"
        ),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all", help="Replay every event the token can see (needed when no filter is given)"
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow a bulk replay's progress to the end")] = True,
) -> None:
    """Send again what did not reach Braze. Delivered objects are never sent twice."""
    console = Console(stderr=True)
    if not token:
        _fail(console, "an admin token is needed: --token or BRAZE_BRIDGE_TOKEN")
    if status is not None and status not in STATUSES:
        _fail(console, f"--status must be one of {', '.join(STATUSES)}")
    filtered = any(v is not None for v in (connection, status, kind, user, since, until))
    if event_id is not None and (filtered or everything):
        _fail(console, "give an event id, filters or --all, not several")
    if event_id is None and not filtered and not everything:
        _fail(
            console,
            "nothing says what to replay: give an event id, a filter (--connection, --status, "
            "--kind, --user, --since, --until) or --all for every event the token can see",
        )
    if everything and filtered:
        _fail(console, "--all replays every event; leave it out when giving filters")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as client:
        try:
            if event_id is not None:
                _replay_one(client, console, event_id)
            else:
                filters: dict[str, Any] = {
                    "connection_id": str(connection) if connection else None,
                    "status": status,
                    "kind": kind,
                    "user": user,
                    "since": aware(since),
                    "until": aware(until),
                }
                _replay_bulk(
                    client, console, {k: v for k, v in filters.items() if v is not None}, wait
                )
        except httpx.TransportError as exc:
            _fail(console, f"cannot reach {url}: {type(exc).__name__}")


def aware(value: datetime | None) -> str | None:
    """ISO 8601 with a zone: a time given without one is UTC (as the help says), whatever the
    machine's local zone."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _replay_one(client: httpx.Client, console: Console, event_id: uuid.UUID) -> None:
    response = client.post(f"/v1/events/{event_id}/replay")
    if response.status_code != 200:
        _fail(console, _error_message(response))
    body = response.json()
    remapped = " (re-mapped with the current settings)" if body["remapped"] else ""
    typer.echo(
        f"event {body['event_id']}: {body['requeued']} Braze object(s) queued again{remapped}; "
        f"status {body['status']}"
    )


def _replay_bulk(
    client: httpx.Client, console: Console, filters: dict[str, Any], wait: bool
) -> None:
    response = client.post("/v1/events/replay", json=filters)
    if response.status_code != 202:
        _fail(console, _error_message(response))
    job = response.json()
    console.print(f"replay job {job['id']} created for {filters or 'every event'}")
    if not wait:
        typer.echo(job["id"])
        return
    with Progress(
        TextColumn("[bold]replay[/bold] {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events · {task.fields[requeued]} objects queued again"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("replay", total=None, state="queued", requeued=0)
        while True:
            current = client.get(f"/v1/replays/{job['id']}")
            if current.status_code != 200:
                _fail(console, _error_message(current))
            job = current.json()
            progress.update(
                task,
                total=job["total"],
                completed=job["done"],
                state=job["status"],
                requeued=job["requeued"],
            )
            if job["status"] in FINISHED:
                break
            time.sleep(POLL_SECONDS)
    if job["status"] == ReplayStatus.FAILED:
        _fail(console, f"replay job failed: {job['error']}")
    skipped = f", {job['skipped']} skipped (see the event log)" if job["skipped"] else ""
    typer.echo(
        f"replay {job['id']} done: {job['done']} event(s), {job['requeued']} object(s) queued again{skipped}"
    )
