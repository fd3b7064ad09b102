"""Antavo field sync: Braze attribute writes (data points) in `all_mapped` vs `changed_only`.

A seeded stream of loyalty-field changes for N members with 10 mapped fields: each member is
enrolled once (every field is new), then each change touches 1-2 fields. As Antavo does, every
webhook carries the member's full mapped profile. Both modes run the real normalize + map; for
`changed_only` a dict stands in for the `user_values` tables (a value counts as known only after
its simulated delivery is accepted, exactly as record_accepted does; failed deliveries are
forgotten, as record_failed does).

    .venv/bin/python bench/antavo.py [--members 1000] [--changes 10] [--failure-rate 0.0] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from braze_bridge.domain.mapping import MappingContext
from braze_bridge.domain.statuses import ObjectKind
from braze_bridge.partners.antavo import PARTNER, AntavoSettings

START = datetime(2024, 11, 1, tzinfo=UTC)
TIERS = ["Bronze", "Silver", "Gold", "Platinum"]
STATUSES = ["active", "inactive", "active_plus"]
FIELDS: list[tuple[str, str, str]] = [
    ("score", "loyalty_points", "integer"),
    ("spendable", "loyalty_spendable", "integer"),
    ("pending", "loyalty_pending", "integer"),
    ("reserved", "loyalty_reserved", "integer"),
    ("tier", "loyalty_tier", "string"),
    ("status", "loyalty_status", "string"),
    ("purchase_total", "loyalty_purchase_total", "float"),
    ("purchase_count", "loyalty_purchase_count", "integer"),
    ("purchase_last_date", "loyalty_last_purchase_at", "date"),
    ("last_login_at", "loyalty_last_login_at", "date"),
]


def settings_for(mode: str) -> AntavoSettings:
    return AntavoSettings.model_validate(
        {
            "sync_mode": mode,
            "field_mappings": [
                {"loyalty_field": field, "braze_attribute": attribute, "type": type_}
                for field, attribute, type_ in FIELDS
            ],
        }
    )


def enrol(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "score": rng.randint(0, 5000),
        "spendable": rng.randint(0, 3000),
        "pending": 0,
        "reserved": 0,
        "tier": rng.choice(TIERS),
        "status": "active",
        "purchase_total": round(rng.uniform(0, 900), 2),
        "purchase_count": rng.randint(0, 30),
        "purchase_last_date": int((now - timedelta(days=rng.randint(1, 300))).timestamp()),
        "last_login_at": int((now - timedelta(days=rng.randint(0, 60))).timestamp()),
    }


def change(rng: random.Random, traits: dict[str, Any], now: datetime) -> None:
    """Touch 1-2 fields the way loyalty activity does (every pick really changes the value)."""
    for field in rng.sample([f for f, _, _ in FIELDS], rng.choice((1, 2))):
        if field in {"score", "spendable", "pending", "reserved", "purchase_count"}:
            traits[field] += rng.randint(1, 500)
        elif field == "tier":
            traits[field] = rng.choice([t for t in TIERS if t != traits[field]])
        elif field == "status":
            traits[field] = rng.choice([s for s in STATUSES if s != traits[field]])
        elif field == "purchase_total":
            traits[field] = round(traits[field] + rng.uniform(5, 200), 2)
        else:
            traits[field] = max(traits[field] + 1, int(now.timestamp()))


@dataclass
class Run:
    events: int = 0
    attribute_writes: int = 0
    saved: int = 0
    failed_writes: int = 0
    seconds: float = 0.0


def simulate(mode: str, members: int, changes: int, failure_rate: float, seed: int) -> Run:
    rng = random.Random(seed)  # same seed → the same stream for both modes
    failures = random.Random(seed + 1)
    settings = settings_for(mode)
    profiles: dict[str, dict[str, Any]] = {}
    accepted: dict[str, dict[str, Any]] = {}  # stands in for user_values, per user key
    stream: list[tuple[str, datetime]] = []
    for number in range(members):
        member = f"member-{number:05d}"
        profiles[member] = enrol(rng, START)
        stream.append((member, START + timedelta(seconds=number)))
    names = list(profiles)
    for step in range(members * changes):
        stream.append((rng.choice(names), START + timedelta(minutes=10 + step)))
    enrolled: set[str] = set()
    run = Run()
    started = time.perf_counter()
    for member, now in stream:
        if member in enrolled:
            change(rng, profiles[member], now)
        enrolled.add(member)
        body = {"type": "identify", "userId": member, "traits": dict(profiles[member])}
        event = PARTNER.normalize(body, received_at=now)
        user_key = f"id:{member}"
        known = accepted.get(user_key, {})
        mapped = PARTNER.map(event, settings, MappingContext(now, known_values=known))
        run.events += 1
        run.saved += mapped.data_points_saved
        for operation in mapped.operations:
            assert operation.kind is ObjectKind.ATTRIBUTES
            run.attribute_writes += len(operation.payload)
            if failures.random() < failure_rate:
                run.failed_writes += len(operation.payload)  # record_failed: nothing learned
                continue
            if mode == "changed_only":
                accepted.setdefault(user_key, {}).update(operation.payload)  # record_accepted
    run.seconds = time.perf_counter() - started
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10, help="changes per member")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    baseline = simulate("all_mapped", args.members, args.changes, args.failure_rate, args.seed)
    delta = simulate("changed_only", args.members, args.changes, args.failure_rate, args.seed)
    enrolment = args.members * len(FIELDS)  # first sync: every field is new in both modes

    print(
        f"stream: {args.members} members x {len(FIELDS)} mapped fields, {args.changes} changes "
        f"per member touching 1-2 fields, failure rate {args.failure_rate:.1%}, seed {args.seed}"
    )
    print(f"{'mode':<14}{'events':>9}{'attribute writes':>19}{'per event':>11}{'events/s':>11}")
    for name, run in (("all_mapped", baseline), ("changed_only", delta)):
        print(
            f"{name:<14}{run.events:>9}{run.attribute_writes:>19}"
            f"{run.attribute_writes / run.events:>11.2f}{run.events / run.seconds:>11.0f}"
        )
    print(f"data points saved (changed_only): {delta.saved}")
    print(
        f"ratio all_mapped / changed_only, whole stream: "
        f"{baseline.attribute_writes / delta.attribute_writes:.2f}x"
    )
    print(
        "ratio after enrolment (changes only): "
        f"{(baseline.attribute_writes - enrolment) / (delta.attribute_writes - enrolment):.2f}x"
    )


if __name__ == "__main__":
    main()
