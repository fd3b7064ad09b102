"""What Braze's answer to a `/users/track` request means for each object it carried.

`classify_track_reply` turns one HTTP answer into a verdict; `deliver_track_request` sends a
packed request and, when Braze refuses the whole of a multi-object request naming no object,
splits it: a 413 or "Max Input Length Exceeded" (too many objects or bytes) is halved and every
half resent; any other opaque 400 is bisected to isolate the bad object(s) while still
delivering the good ones. An object is `failed` only after Braze refused it sent alone (or
named it). delivery/settlement.py turns the per-object outcomes into database state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from braze_bridge.braze.client import BrazeReply
from braze_bridge.braze.errors import Unreachable
from braze_bridge.braze.models import (
    MAX_INPUT_LENGTH_MESSAGE,
    TrackObjectError,
    parse_track_errors,
    reply_message,
    retry_after_seconds,
)
from braze_bridge.delivery.batcher import PackedObject, TrackRequest
from braze_bridge.domain.statuses import AttemptOutcome

AUTH_STATUSES = frozenset({401, 403, 404})
# A 4 MB+ body answers 413; like a 400 it is about this request's content, so it is split.
REJECT_STATUSES = frozenset({400, 413})


@dataclass(frozen=True, slots=True)
class Accepted:
    """2xx: queued by Braze, except the objects named in `errors[]`."""

    errors: list[TrackObjectError]


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """400/413: nothing in the request was applied.

    `too_large`: a 413, or a 400 saying "Max Input Length Exceeded": the request carried too
    many objects (or bytes), which says nothing against any one object.
    """

    message: str
    errors: list[TrackObjectError]
    too_large: bool = False


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """401/403/404: the key, its permissions or the endpoint are wrong; no object is at fault."""

    message: str


@dataclass(frozen=True, slots=True)
class RateLimited:
    message: str
    wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class Transient:
    """5xx, timeouts, connection errors, unexpected 4xx: try again later."""

    message: str


Verdict = Accepted | RequestRefused | AuthFailed | RateLimited | Transient


def classify_track_reply(reply: BrazeReply, *, now_epoch: float) -> Verdict:
    status = reply.status_code
    if 200 <= status < 300:
        return Accepted(parse_track_errors(reply.json()))
    body = reply.json()
    if status in REJECT_STATUSES:
        said = reply_message(body, "request refused")
        return RequestRefused(
            f"braze {status}: {said}",
            parse_track_errors(body),
            too_large=status == 413 or said == MAX_INPUT_LENGTH_MESSAGE,
        )
    if status in AUTH_STATUSES:
        hint = {
            401: "API key invalid, revoked or for another instance",
            403: "API key lacks the users.track permission, or the account is inactive",
            404: "REST endpoint URL is wrong",
        }[status]
        return AuthFailed(f"braze {status}: {reply_message(body, hint)} ({hint})")
    if status == 429:
        return RateLimited(
            f"braze 429: {reply_message(body, 'rate limited')}",
            retry_after_seconds(reply.headers, now_epoch=now_epoch),
        )
    return Transient(f"braze {status}: {reply_message(body, 'unexpected answer')}")


# What a /users/track reply can mean for one object in the end.
OutcomeKind = AttemptOutcome


class ObjectOutcome(NamedTuple):
    """One object's final outcome: delivered, failed, retry, rate_limited or held."""

    kind: OutcomeKind
    obj: PackedObject
    reason: str | None = None
    wait_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange, for the attempt log. `outcomes` maps operation id → outcome."""

    body_json: str
    reply: BrazeReply | None
    error: str | None
    started_at: datetime
    duration_ms: float
    outcomes: dict[int, AttemptOutcome]


@dataclass(slots=True)
class TrackResult:
    outcomes: list[ObjectOutcome] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    # For each culprit found by splitting: how many exchanges had been made when it was
    # pinned down (the confirming send of the presumed-good rest may follow).
    isolated_after: list[int] = field(default_factory=list)
    # After a too-many/too-big refusal: the most objects a request should carry from now on
    # (the larger half of the smallest refused request); None when no such refusal came.
    learned_cap: int | None = None

    @property
    def requests_sent(self) -> int:
        return len(self.exchanges)


SendTrack = Callable[[str], Awaitable[BrazeReply]]


class _Stop(Exception):
    """A verdict that ends the whole request (auth, rate limit, outage) was applied."""

    def __init__(self, kind: OutcomeKind, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.wait = kind, reason, wait


class TrackDelivery:
    """Sends one packed request, bisecting opaque 400s; collects outcomes and exchanges."""

    def __init__(
        self,
        send: SendTrack,
        clock: Callable[[], datetime],
        before_extra_request: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._before_extra = before_extra_request
        self.result = TrackResult()
        self._settled: set[int] = set()  # id() of objects with a final outcome
        # Operation ids in the latest exchange, built only when `_note` needs them (never for
        # a request Braze accepted: that path writes to the latest exchange directly).
        self._carried: set[int] | None = None

    async def run(self, request: TrackRequest) -> TrackResult:
        try:
            await self._send_all(list(request.objects), first=True)
        except _Stop as stop:
            # Objects still waiting for a resend share the verdict that ended the request.
            for obj in request.objects:
                if id(obj) not in self._settled:
                    self._final(obj, stop.kind, stop.reason, stop.wait)
        return self.result

    # -- one exchange -------------------------------------------------------------------------

    async def _exchange(self, objects: Sequence[PackedObject], *, first: bool = False) -> Verdict:
        if not first and self._before_extra is not None:
            await self._before_extra()
        request = TrackRequest(tuple(objects))
        self._request, self._carried = request, None
        body = request.body_json()
        started = self._clock()
        try:
            reply = await self._send(body)
        except Unreachable as exc:
            verdict: Verdict = Transient(str(exc))
            self.result.exchanges.append(Exchange(body, None, str(exc), started, 0.0, {}))
        else:
            verdict = classify_track_reply(reply, now_epoch=self._clock().timestamp())
            self.result.exchanges.append(
                Exchange(body, reply, None, started, reply.duration_ms, {})
            )
        return verdict

    def _note(self, obj: PackedObject, word: AttemptOutcome) -> None:
        """Record `word` for `obj` on the latest exchange that carried it."""
        if not obj.op_ids:  # an alias-creating object (delivery/round.py) settles nothing
            return
        for exchange in reversed(self.result.exchanges):
            if obj.op_ids[0] in exchange.outcomes or (
                exchange is self.result.exchanges[-1] and obj.op_ids[0] in self._carried_ids()
            ):
                for op_id in obj.op_ids:
                    exchange.outcomes[op_id] = word
                return

    def _carried_ids(self) -> set[int]:
        if self._carried is None:
            self._carried = set(self._request.op_ids)
        return self._carried

    def _final(
        self,
        obj: PackedObject,
        kind: OutcomeKind,
        reason: str | None = None,
        wait: float | None = None,
    ) -> None:
        self.result.outcomes.append(ObjectOutcome(kind, obj, reason, wait))
        self._settled.add(id(obj))
        self._note(obj, kind)

    def _apply_stop(self, verdict: Verdict, objects: Sequence[PackedObject]) -> None:
        """Auth failure, 429 or outage: every object not yet settled shares the verdict."""
        if isinstance(verdict, AuthFailed):
            kind: OutcomeKind = AttemptOutcome.HELD
            reason, wait = verdict.message, None
        elif isinstance(verdict, RateLimited):
            kind, reason, wait = AttemptOutcome.RATE_LIMITED, verdict.message, verdict.wait_seconds
        else:
            assert isinstance(verdict, Transient)  # noqa: S101 - the only verdict left
            kind, reason, wait = AttemptOutcome.RETRY, verdict.message, None
        for obj in objects:
            if id(obj) not in self._settled:
                self._final(obj, kind, reason, wait)
        raise _Stop(kind, reason, wait)

    def _apply_accepted(self, verdict: Accepted, request: TrackRequest) -> None:
        failed: dict[int, str] = {}
        for error in verdict.errors:
            obj = request.locate(error.input_array, error.index)
            if obj is not None:
                failed[id(obj)] = error.type
        # `request` is the latest exchange's, so each object's outcome goes there directly
        # (the exchange `_final` would find by search).
        words = self.result.exchanges[-1].outcomes
        outcomes = self.result.outcomes
        settled = self._settled
        for obj in request.objects:
            key = id(obj)
            if failed and key in failed:
                outcome = ObjectOutcome(AttemptOutcome.FAILED, obj, failed[key])
            else:
                outcome = ObjectOutcome(AttemptOutcome.DELIVERED, obj)
            outcomes.append(outcome)
            settled.add(key)
            for op_id in obj.op_ids:
                words[op_id] = outcome.kind

    # -- the algorithm -----------------------------------------------------------------------

    async def _send_all(self, objects: list[PackedObject], *, first: bool = False) -> None:
        verdict = await self._exchange(objects, first=first)
        request = self._request
        if isinstance(verdict, Accepted):
            self._apply_accepted(verdict, request)
            return
        if not isinstance(verdict, RequestRefused):
            self._apply_stop(verdict, objects)
            return
        named = self._fail_named(verdict, request)
        rest = [obj for obj in objects if id(obj) not in named]
        if named:
            for obj in rest:
                self._note(obj, AttemptOutcome.BISECT)
            if rest:
                await self._send_all(rest)
            return
        if len(objects) == 1:
            self._final(objects[0], AttemptOutcome.FAILED, verdict.message)
            return
        for obj in objects:
            self._note(obj, AttemptOutcome.BISECT)
        if verdict.too_large:
            await self._halve(objects)
            return
        await self._isolate(objects)

    async def _halve(self, objects: list[PackedObject]) -> None:
        """Braze found the request too large: resend all of it in two halves (each may split
        again), and remember not to exceed the larger half from now on."""
        half = (len(objects) + 1) // 2
        cap = self.result.learned_cap
        self.result.learned_cap = half if cap is None else min(cap, half)
        await self._send_all(objects[:half])
        await self._send_all(objects[half:])

    def _fail_named(self, verdict: RequestRefused, request: TrackRequest) -> set[int]:
        named: dict[int, tuple[PackedObject, str]] = {}
        for error in verdict.errors:
            obj = request.locate(error.input_array, error.index)
            if obj is not None:
                named[id(obj)] = (obj, error.type)
        for obj, why in named.values():
            self._final(obj, AttemptOutcome.FAILED, why)
        return set(named)

    async def _isolate(self, objects: list[PackedObject]) -> None:
        """`objects` went out together and got an opaque 400: find the culprit(s).

        Invariant: `suspect + deferred` holds a bad object; everything else is settled. Each
        test sends half the suspects together with the deferred (presumed good) objects, so a
        success delivers them all at once. One bad object among 75 is pinned down after at
        most 7 extra requests (ceil(log2 75)); then the presumed-good rest (if any) is
        delivered and the culprit is sent alone, so that no object fails on inference (9
        extra requests in the worst case).
        """
        suspect, deferred = objects, list[PackedObject]()
        while len(suspect) > 1:
            half = len(suspect) // 2
            left, right = suspect[:half], suspect[half:]
            test = left + deferred
            verdict = await self._exchange(test)
            request = self._request
            if isinstance(verdict, Accepted):
                self._apply_accepted(verdict, request)
                suspect, deferred = right, []
            elif isinstance(verdict, RequestRefused):
                named = self._fail_named(verdict, request)
                if named:
                    # Braze named the culprits after all: resend everything else plainly.
                    for obj in test:
                        if id(obj) not in named:
                            self._note(obj, AttemptOutcome.BISECT)
                    remaining = [o for o in test + right if id(o) not in named]
                    if remaining:
                        await self._send_all(remaining)
                    return
                for obj in test:
                    self._note(obj, AttemptOutcome.BISECT)
                if verdict.too_large:
                    # Not about any object after all: resend every unsettled one in halves.
                    await self._halve(test + right)
                    return
                suspect, deferred = left, deferred + right
            else:
                self._apply_stop(verdict, suspect + deferred)
                return
        culprit = suspect[0]
        self.result.isolated_after.append(len(self.result.exchanges))
        if deferred:
            # The presumed-good rest (each of its objects is tried alone before it can fail).
            await self._send_all(deferred)
        # The culprit fails only when Braze refuses it sent alone.
        verdict = await self._exchange([culprit])
        request = self._request
        if isinstance(verdict, Accepted):
            self._apply_accepted(verdict, request)
        elif isinstance(verdict, RequestRefused):
            if not self._fail_named(verdict, request):
                self._final(
                    culprit,
                    AttemptOutcome.FAILED,
                    f"{verdict.message} (isolated by splitting the request)",
                )
        else:
            self._apply_stop(verdict, [culprit])


async def deliver_track_request(
    request: TrackRequest,
    send: SendTrack,
    clock: Callable[[], datetime],
    before_extra_request: Callable[[], Awaitable[None]] | None = None,
) -> TrackResult:
    """Send `request`; every object ends with exactly one outcome."""
    return await TrackDelivery(send, clock, before_extra_request).run(request)
