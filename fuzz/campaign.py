"""A longer fuzzing campaign over infertune's parsers and loaders, run by hand.

    python fuzz/campaign.py --minutes 3              # all parsers, time split evenly
    python fuzz/campaign.py --minutes 1 --only cfg npz

The inputs come from the same hypothesis strategies as the property tests
(tests/fuzz_targets.py); here each parser runs for its share of the time with
as many examples as fit. Every input must load or be refused with a one-line
InfertuneError; anything else is a crash: it is counted by exception type and message, and
its input is saved under fuzz/crashes/ (replay it with `--replay FILE`). The figures are
printed and written to fuzz/results.json.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
# The strategies and targets live with the property tests, so both fuzz the same way.
sys.path.insert(0, str(HERE.parent / "tests"))

import fuzz_targets as ft  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class TimeUp(Exception):
    """Raised inside a target when its share of the time is spent (ends hypothesis's loop)."""


def parsers() -> dict[str, tuple[st.SearchStrategy, Callable[[Any, Path], None]]]:
    """name -> (strategy of inputs, function(input, scratch folder) that parses it)."""
    weights, tiny, images, npz = ft.real_weights(), ft.tiny_onnx_bytes(), ft.real_images(), ft.real_npz()
    return {
        "cfg": (ft.cfg_text_strategy(), lambda text, _: ft.run_cfg(text)),
        "cfg_file": (st.one_of(ft.cfg_text_strategy(), st.binary(max_size=400)), ft.load_cfg_file),
        "weights": (st.tuples(ft.weights_strategy(weights), st.booleans()),
                    lambda item, tmp: ft.load_weights_bytes(item[0], tmp, item[1])),
        "onnx": (ft.onnx_strategy(tiny), ft.load_onnx_bytes),
        "image": (ft.image_strategy(images), lambda item, tmp: ft.load_image_bytes(*item, tmp)),
        "npz": (ft.npz_strategy(npz), ft.load_npz_bytes),
        **_journal(),
    }


def _journal() -> dict:
    """The run-directory journal reader."""
    from infertune.search.journal import Journal

    def read(data: bytes, tmp: Path) -> None:
        (tmp / "journal.jsonl").write_bytes(data)
        Journal(tmp / "journal.jsonl")

    lines = st.lists(st.one_of(
        st.dictionaries(st.sampled_from(["kind", "id", "x", "status"]),
                        st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none()),
                        max_size=4).map(lambda d: json.dumps(d)),
        st.text(max_size=60)), max_size=6).map(lambda ls: "\n".join(ls).encode())
    return {"journal": (st.one_of(lines, st.binary(max_size=200)), read)}


def _encode(item: Any) -> bytes:
    """Reproducer bytes of an input (text as UTF-8; tuples as JSON with hex bytes)."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8", "surrogatepass")
    return json.dumps([x.hex() if isinstance(x, bytes) else x for x in item]).encode()


class Stats:
    """Inputs tried, outcomes and distinct crashes of one parser."""

    def __init__(self, name: str, crash_dir: Path):
        self.name, self.crash_dir = name, crash_dir
        self.tried, self.outcomes = 0, collections.Counter()
        self.crashes: dict[str, dict] = {}

    def record_crash(self, item: Any, exc: BaseException) -> None:
        key = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        self.outcomes["crash"] += 1
        if key in self.crashes:
            self.crashes[key]["count"] += 1
            return
        data = _encode(item)
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"{self.name}-{hashlib.sha256(data).hexdigest()[:12]}.bin"
        path.write_bytes(data)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        self.crashes[key] = {"count": 1, "reproducer": str(path.relative_to(HERE.parent)),
                             "raised_at": f"{Path(where.filename).name}:{where.lineno}"}
        print(f"  [{self.name}] crash {key} -> {path.name}", flush=True)


def fuzz_one(name: str, strategy, target, seconds: float, crash_dir: Path, seed: int) -> dict:
    """Runs `target` on inputs from `strategy` for `seconds`; returns the parser's figures."""
    stats = Stats(name, crash_dir)
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix=f"infertune-fuzz-{name}-") as tmp:
        scratch = Path(tmp)

        @settings(max_examples=10**9, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=["generate"])
        @given(strategy)
        def run(item):
            if time.monotonic() > deadline:
                raise TimeUp
            stats.tried += 1
            try:
                stats.outcomes[ft.check_outcome(lambda: target(item, scratch))] += 1
            except MemoryError as exc:  # counted, never swallowed silently
                stats.record_crash(item, exc)
            except Exception as exc:  # a crash: any non-InfertuneError, or a multi-line one
                stats.record_crash(item, exc)

        started = time.monotonic()
        try:
            from hypothesis import seed as hseed

            hseed(seed)(run)()
        except TimeUp:
            pass
    return {"inputs_tried": stats.tried, "seconds": round(time.monotonic() - started, 1),
            "loaded": stats.outcomes["ok"], "refused": stats.outcomes["refused"],
            "crashes": stats.outcomes["crash"], "distinct_crashes": stats.crashes}


def replay(path: Path, parser: str) -> None:
    """Runs one saved reproducer through its parser and prints the outcome (or traceback)."""
    strategy_target = parsers()[parser]
    data = path.read_bytes()
    item: Any = data
    if parser == "cfg":
        item = data.decode("utf-8", "surrogatepass")
    elif parser in ("weights", "image"):
        a, b = json.loads(data)
        item = (bytes.fromhex(a), b) if parser == "weights" else (a, bytes.fromhex(b))
    with tempfile.TemporaryDirectory() as tmp:
        print(ft.check_outcome(lambda: strategy_target[1](item, Path(tmp))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0, help="total time, split over parsers")
    p.add_argument("--only", nargs="+", help="parsers to run (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results.json"))
    p.add_argument("--replay", metavar="FILE", help="replay one reproducer (with --only PARSER)")
    args = p.parse_args(argv)
    table = parsers()
    names = args.only or list(table)
    if args.replay:
        replay(Path(args.replay), names[0])
        return 0
    share = args.minutes * 60 / len(names)
    results = {}
    for name in names:
        print(f"{name}: fuzzing for {share:.0f} s", flush=True)
        results[name] = fuzz_one(name, *table[name], share, HERE / "crashes", args.seed)
        r = results[name]
        print(f"  {r['inputs_tried']} inputs in {r['seconds']} s: {r['loaded']} loaded, "
              f"{r['refused']} refused, {r['crashes']} crashes", flush=True)
    summary = {"minutes": args.minutes, "seed": args.seed, "python": platform.python_version(),
               "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "parsers": results}
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 1 if any(r["crashes"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
