"""report.json parsed once into typed records: the candidates as `search.candidate.Candidate`,
the final side-by-side rounds as `FinalComparison`, the rest as the sections the renderers
read.

Every renderer takes a `RunReport` (built at the entry points: `write_reports`,
`infertune report`, `compare`, the optimize summary), so a key is spelled in one place —
`Candidate.from_json` for candidates, `RunReport.from_json` here — instead of in each `.get`.
The sections that are free-form fingerprints or configs (machine, model, data, budget, …)
stay mappings: their fields are read in one table each (`tables.machine_rows`, …).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..search.candidate import Candidate



def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass(frozen=True)
class FinalRow:
    """One model of the side-by-side rounds: the median of its per-round p50s, each round's
    p50, and its speed-up over the baseline (median, min and max of per-round ratios)."""

    id: str
    p50_ms: float | None
    p50_ms_by_round: tuple[float | None, ...] = ()
    speedup: float | None = None
    speedup_min: float | None = None
    speedup_max: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FinalRow":
        sp = data.get("speedup") or {}
        return cls(id=str(data.get("id")), p50_ms=_num(data.get("p50_ms")),
                   p50_ms_by_round=tuple(_num(v) for v in data.get("p50_ms_by_round") or ()),
                   speedup=_num(sp.get("median")), speedup_min=_num(sp.get("min")),
                   speedup_max=_num(sp.get("max")))

    @property
    def round_range(self) -> tuple[float, float] | None:
        """(fastest, slowest) round p50, None where no round is recorded."""
        ok = [p for p in self.p50_ms_by_round if p is not None]
        return (min(ok), max(ok)) if ok else None


@dataclass(frozen=True)
class FinalComparison:
    """The interleaved rounds that timed the baseline and the best contenders again."""

    rounds: int | None
    method: str | None
    rows: tuple[FinalRow, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "FinalComparison | None":
        if not data:
            return None
        rounds = data.get("rounds")
        return cls(rounds=rounds if isinstance(rounds, int) else None,
                   method=data.get("method"),
                   rows=tuple(FinalRow.from_json(r) for r in data.get("rows") or ()
                              if isinstance(r, Mapping)))

    def row(self, cid: str | None) -> FinalRow | None:
        return next((r for r in self.rows if r.id == cid), None)


@dataclass(frozen=True)
class PickBasis:
    """How the side-by-side rounds decided a latency run's pick (search/select.TIE_RULE):
    the contender with the lowest median, and those within noise of it in tie-break order."""

    rule: str
    fastest: str | None
    tied: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "PickBasis | None":
        if not data:
            return None
        return cls(rule=str(data.get("rule") or ""), fastest=data.get("fastest"),
                   tied=tuple(str(i) for i in data.get("tied") or ()))


@dataclass(frozen=True)
class RunReport:
    """A report.json (docs/run-format.md, schema_version 1), candidates typed."""

    candidates: tuple[Candidate, ...]
    baseline_id: str | None = None
    pick_id: str | None = None
    frontier: tuple[str, ...] = ()
    no_pick: Mapping[str, Any] | None = None
    final: FinalComparison | None = None
    pick_basis: PickBasis | None = None
    mixed_precision: Mapping[str, Any] | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    budget: Mapping[str, Any] = field(default_factory=dict)
    machine: Mapping[str, Any] = field(default_factory=dict)
    machine_limits: Mapping[str, Any] | None = None
    timing: Mapping[str, Any] = field(default_factory=dict)
    screening: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)
    export: Mapping[str, Any] | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    by_id: Mapping[str, Candidate] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {c.id: c for c in self.candidates})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunReport":
        """Raises KeyError/TypeError/ValueError on a candidate that is not a record
        (`load_report` turns them into a one-line error naming the file)."""
        return cls(
            candidates=tuple(Candidate.from_json(c) for c in data.get("candidates") or ()),
            baseline_id=data.get("baseline_id"), pick_id=data.get("pick"),
            frontier=tuple(data.get("frontier") or ()), no_pick=data.get("no_pick"),
            final=FinalComparison.from_json(data.get("final_comparison")),
            pick_basis=PickBasis.from_json(data.get("pick_basis")),
            mixed_precision=data.get("mixed_precision"),
            model=data.get("model") or {}, data=data.get("data") or {},
            budget=data.get("budget") or {}, machine=data.get("machine") or {},
            machine_limits=data.get("machine_limits"), timing=data.get("timing") or {},
            screening=data.get("screening") or {}, run=data.get("run") or {},
            export=data.get("export"),
            notes={k: str(v) for k, v in data.items() if k.endswith("_note") and v})

    # ------------------------------------------------------------ reads
    @property
    def baseline(self) -> Candidate | None:
        return self.by_id.get(self.baseline_id)

    @property
    def pick(self) -> Candidate | None:
        return self.by_id.get(self.pick_id) if self.pick_id else None

    @property
    def subject(self) -> Candidate | None:
        """The pick, or the baseline when there is no pick."""
        return self.pick or self.baseline

    @property
    def objective(self) -> str:
        return str(self.budget.get("objective") or "latency")

    @property
    def labelled(self) -> bool:
        return bool(self.data.get("labelled"))

    def final_row(self, cand: Candidate | None) -> FinalRow | None:
        if cand is None or self.final is None:
            return None
        return self.final.row(cand.id)
