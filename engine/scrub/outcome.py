"""One backup's verification as a recorded outcome: annotation values and Prometheus text.

A backup passes when every block matches its name, the image matches the cfg's checksum,
and that checksum is the one the BackupBackingImage's status records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the webhook reads recorded outcomes without loading the store
    from longhorn_bi.engine.store.verify import VerifyResult

VERIFIED_AT = "longhorn-bi.io/verified-at"
VERIFY_RESULT = "longhorn-bi.io/verify-result"
OK, FAILED, ERROR, SKIPPED = "ok", "failed", "error", "skipped"  # error: store unreadable
MAX_REASON = 900  # an annotation stays readable in `kubectl describe`
MAX_LISTED = 5  # bad blocks named in the annotation; the command's output lists all
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# The series of the last result per backup: the textfile and the webhook's /metrics alike.
OK_METRIC = "longhorn_bi_backup_verify_ok"
OK_HELP = "1 when the backup's last verification passed."
TIME_METRIC = "longhorn_bi_backup_verify_timestamp_seconds"
TIME_HELP = "When the backup was last verified."
LABELS = ("namespace", "backup")


@dataclass
class Outcome:
    backup: str  # the BackupBackingImage's name
    result: str  # OK, FAILED, ERROR or SKIPPED
    reason: str = ""
    bad_offsets: list[int] = field(default_factory=list)
    size: int = 0
    at: str = ""

    @property
    def annotation(self) -> str:
        text = self.result if not self.reason else f"{self.result}: {self.reason}"
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."

    def annotations(self) -> dict[str, str]:
        return {VERIFIED_AT: self.at, VERIFY_RESULT: self.annotation}


def timestamp() -> str:
    return datetime.now(UTC).strftime(STAMP_FORMAT)


def sample_note(result: VerifyResult, seed: str) -> str:
    """What a sampled verification read, and that it did not check the image's SHA-512."""
    return (
        f"sampled {result.checked_blocks} of {result.blocks} blocks (--seed {seed}); "
        "the image checksum was not checked"
    )


def judge(backup: str, result: VerifyResult, status_checksum: str, seed: str = "") -> Outcome:
    """The outcome of a verification, compared with the checksum Longhorn recorded.

    A sampled one says so in its reason, passed or failed: it read only some blocks, so it
    never claims the image matched its checksum."""
    at = timestamp()
    note = sample_note(result, seed) if result.sampled else ""
    if result.bad_blocks:
        listed = "; ".join(f"offset {off}: {why}" for off, why in result.bad_blocks[:MAX_LISTED])
        more = len(result.bad_blocks) - MAX_LISTED
        reason = f"{len(result.bad_blocks)} bad block(s): {listed}" + (
            f"; and {more} more" if more > 0 else ""
        )
        offsets = [off for off, _ in result.bad_blocks]
        reason = f"{note}: {reason}" if note else reason
        return Outcome(backup, FAILED, reason, offsets, result.size, at)
    if (
        not result.sampled
        and result.expected_checksum
        and result.checksum != result.expected_checksum
    ):
        reason = f"image SHA-512 {result.checksum[:16]}... differs from the cfg's checksum"
        return Outcome(backup, FAILED, reason, size=result.size, at=at)
    # The cfg's recorded checksum against the CR's is metadata: a sample can compare them.
    wanted = status_checksum.strip().lower()
    have = result.expected_checksum or result.checksum
    if wanted and have and have != wanted:
        reason = (
            f"the backup's checksum {have[:16]}... differs from status.checksum {wanted[:16]}..."
        )
        reason = f"{note}: {reason}" if note else reason
        return Outcome(backup, FAILED, reason, size=result.size, at=at)
    return Outcome(backup, OK, note, size=result.size, at=at)


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC).timestamp()


def recorded(annotations: Mapping[str, Any]) -> tuple[bool, float] | None:
    """The last result written on a backup: (passed, when in Unix seconds); None when it was
    never verified or the annotations are not ours to read (edited by hand)."""
    result, at = annotations.get(VERIFY_RESULT), annotations.get(VERIFIED_AT)
    if not isinstance(result, str) or not isinstance(at, str):
        return None
    kind = result.split(":", 1)[0].strip()
    if kind not in (OK, FAILED, ERROR):
        return None
    try:
        return kind == OK, _seconds(at)
    except ValueError:
        return None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(outcomes: Iterable[Outcome], namespace: str) -> str:
    """The last result per backup in Prometheus' text format (node-exporter's textfile
    collector reads it): 1 passed, 0 failed; and when it was checked."""
    lines = [f"# HELP {OK_METRIC} {OK_HELP}", f"# TYPE {OK_METRIC} gauge"]
    stamps = [f"# HELP {TIME_METRIC} {TIME_HELP}", f"# TYPE {TIME_METRIC} gauge"]
    for outcome in outcomes:
        if outcome.result == SKIPPED:
            continue
        labels = f'namespace="{_label(namespace)}",backup="{_label(outcome.backup)}"'
        lines.append(f"{OK_METRIC}{{{labels}}} {int(outcome.result == OK)}")
        stamps.append(f"{TIME_METRIC}{{{labels}}} {int(_seconds(outcome.at))}")
    return "\n".join(lines + stamps) + "\n"
