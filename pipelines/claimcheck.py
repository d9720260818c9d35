"""The claim check: a domain event too large for Kafka travels as a reference to its payload.

The rule, shared by the producer (``pipelines/shop/outbox.py``) and the lander
(``pipelines/decode/claims.py``):

* An event whose payload (its JSON text) is longer than ``inline_limit(max_message_bytes)``
  is not written inline. The producer first stores the payload bytes durably at
  ``<lake>/_claims/<aggregate>/<event id>.json`` (temp file, fsync, rename, fsync dir), then
  writes the outbox row with the reference as its payload::

      {"claim_check": {"key": "<aggregate>/<event id>.json", "bytes": N, "sha256": "<hex>"}}

  The file exists before the transaction commits, so no event in the WAL points at nothing; a
  transaction that rolls back leaves an unreferenced file behind (harmless).
* The lander recognises a payload that is exactly that reference, derives the path itself from
  the event's validated aggregate type and event id (never from the message), checks the size
  and SHA-256, and lands the stored payload as if it had been inline. A missing, short or
  altered claim is a bad message: quarantined with its reason and raw bytes.

The limit leaves room for what Kafka carries besides the payload (the Connect schema, the
source block, headers, record overhead): ``CLAIM_HEADROOM`` bytes, or half of a limit smaller
than twice that. Claims are kept (a replay from Kafka needs them); bronze holds the payload
too, so they can be archived once the topic's retention has passed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.durable import write_bytes
from pipelines.naming import path_segment

CLAIMS = "_claims"  # <lake>/_claims/<aggregate>/<event id>.json, beside bronze

REFERENCE = "claim_check"  # the payload's only field when the event is claim-checked
CLAIM_HEADROOM = 64 * 1024


class ClaimError(ValueError):
    """A claim reference that does not resolve to the payload it names."""


def inline_limit(max_message_bytes: int) -> int:
    """The largest payload (UTF-8 JSON bytes) an event carries inline."""
    if max_message_bytes < 2 * CLAIM_HEADROOM:
        return max_message_bytes // 2
    return max_message_bytes - CLAIM_HEADROOM


@dataclass(frozen=True)
class Policy:
    """Where a producer stores claims and the largest payload it sends inline."""

    lake: Path
    inline_max: int

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(settings.lake_root, inline_limit(settings.max_message_bytes))


def claim_key(aggregate: str, event_id: str) -> str:
    """The claim's key under ``<lake>/_claims`` (both names validated and path-encoded)."""
    return f"{path_segment(aggregate)}/{path_segment(event_id)}.json"


def store(lake: Path, aggregate: str, event_id: str, payload: bytes) -> dict:
    """Durably store ``payload`` and return the reference payload that replaces it."""
    key = claim_key(aggregate, event_id)
    path = lake / CLAIMS / key
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, payload)
    digest = hashlib.sha256(payload).hexdigest()
    return {REFERENCE: {"key": key, "bytes": len(payload), "sha256": digest}}


def is_reference(payload: object) -> bool:
    """Whether an event payload is a claim reference (its one field is ``claim_check``)."""
    return isinstance(payload, dict) and list(payload) == [REFERENCE]


def load(lake: Path, aggregate: str, event_id: str, reference: dict) -> bytes:
    """The stored payload bytes ``reference`` names, verified; ``ClaimError`` otherwise."""
    ref = reference.get(REFERENCE)
    if not isinstance(ref, dict):
        raise ClaimError("claim check without its reference object")
    key = claim_key(aggregate, event_id)
    if ref.get("key") != key:
        raise ClaimError(f"claim check key {ref.get('key')!r} is not this event's ({key!r})")
    size, digest = ref.get("bytes"), ref.get("sha256")
    if size.__class__ is not int or not isinstance(digest, str):
        raise ClaimError("claim check without its size and sha256")
    path = lake / CLAIMS / key
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ClaimError(f"claim {key} is missing from {lake / CLAIMS}") from None
    if len(data) != size:
        raise ClaimError(f"claim {key} holds {len(data)} bytes, the event says {size}")
    if hashlib.sha256(data).hexdigest() != digest:
        raise ClaimError(f"claim {key} does not match the event's sha256")
    return data
