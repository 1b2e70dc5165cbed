"""The media benchmark's printed report: latencies beside the floor, capacity beside Janus."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from rich.table import Table

from bench.harness import console, percentile
from bench.media_load import LoadResult


@dataclass
class LatencyRow:
    metric: str
    samples: list[float]
    floor: list[float]
    goal: str


@dataclass
class CapacityRow:
    server: str
    participants: int
    cpu: float  # share of one core over the window, whole server process tree
    load: LoadResult

    @property
    def per_participant(self) -> float:
        """Per cent of one core per participant."""
        return 100 * self.cpu / self.participants

    def summary(self, bound: float) -> str:
        """One line, printed as soon as the row is measured."""
        counted = self.load.on_time[bound]
        return (
            f"{self.server}: {100 * self.cpu:.1f} % core, {self.per_participant:.2f} % core per "
            f"participant, {100 * counted.share:.2f} % of frames <= {bound * 1000:.0f} ms late"
        )


def _p(samples: list[float], q: float) -> float:
    return statistics.median(samples) if q == 50 else percentile(samples, q)


def latency_table(rows: list[LatencyRow]) -> Table:
    table = Table(title="media: time to first mixed audio (ms)")
    columns = ("metric", "n", "p50", "p95", "floor p50", "floor p95", "p50 / floor", "goal")
    for column in columns:
        table.add_column(column, justify="left" if column in ("metric", "goal") else "right")
    for row in rows:
        p50, p95 = _p(row.samples, 50), _p(row.samples, 95)
        f50, f95 = _p(row.floor, 50), _p(row.floor, 95)
        table.add_row(
            row.metric,
            str(len(row.samples)),
            f"{p50:.1f}",
            f"{p95:.1f}",
            f"{f50:.1f}",
            f"{f95:.1f}",
            f"{p50 / f50:.2f}x",
            row.goal,
        )
    return table


def capacity_table(rows: list[CapacityRow], bounds: list[float]) -> Table:
    table = Table(title="media: mixing capacity (rooms of 5, one or two talking)")
    table.add_column("participants", justify="right")
    table.add_column("server")
    table.add_column("server CPU", justify="right")
    table.add_column("CPU / participant", justify="right")
    table.add_column("vs Janus", justify="right")
    for bound in bounds:
        table.add_column(f"on time (<= {bound * 1000:.0f} ms late)", justify="right")
    table.add_column("never arrived", justify="right")
    table.add_column(f"decoded on time (<= {bounds[0] * 1000:.0f} ms)", justify="right")
    table.add_column("client procs CPU (max)", justify="right")
    janus = {row.participants: row for row in rows if row.server.startswith("Janus")}
    for row in rows:
        peer = janus.get(row.participants)
        versus = f"{row.per_participant / peer.per_participant:.2f}x" if peer else "-"
        shares = [row.load.on_time[bound] for bound in bounds]
        table.add_row(
            str(row.participants),
            row.server,
            f"{100 * row.cpu:.1f} % core",
            f"{row.per_participant:.2f} % core",
            versus if not row.server.startswith("Janus") else "1.00x",
            *(f"{100 * share.share:.2f} % of {share.due}" for share in shares),
            f"{share_missing(row):.2f} %",
            f"{100 * row.load.decoded[bounds[0]].share:.2f} %",
            f"{len(row.load.client_cpu)} x, {100 * max(row.load.client_cpu):.0f} % core",
        )
    return table


def share_missing(row: CapacityRow) -> float:
    counted = next(iter(row.load.on_time.values()))
    return 100 * counted.missing / counted.due if counted.due else float("nan")


def show(
    mode: str,
    latency: list[LatencyRow],
    capacity: list[CapacityRow],
    bounds: list[float],
    seconds: float,
) -> None:
    console.print(f"[bold]Chorus side: {mode}[/]")
    console.print(latency_table(latency))
    console.print(
        "floor: a bare aiortc-to-aiortc connection in one process, createOffer -> first decoded "
        "frame; the client's connection (and DTLS certificate) is made before each clock starts."
    )
    if capacity:
        console.print(capacity_table(capacity, bounds))
        console.print(
            f"Over a {seconds:.0f} s window. A frame is on time when its RTP packet arrives at the "
            "client at most the bound after its due time; its due time is the stream's best-case "
            "latency in the window (smallest arrival minus RTP time) plus its RTP time, i.e. a "
            "playout buffer of the bound would play it. Frames that never arrive count as late. "
            "'decoded on time': the same for frames out of aiortc's own jitter buffer and decoder "
            "(it holds 4 frames, and after a lost packet ~300 ms more for good). CPU is "
            "user+system time of the server's process tree from /proc over the same window; "
            "clients run in processes of their own, pre-encoded senders, decoding all they receive."
        )
