"""sbkube benchmark suite: ``python bench/run.py [--quick] [--json out.json] [--only W1,W2]``.

Runs each workload for several rounds against a hand-written reference, prints one table
(median, spread, ratio, target, PASS/FAIL) and optionally writes every measurement as
JSON. See ``bench/README.md`` for what each workload measures and why.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from harness import Result, machine_description, render_table
from wl_sqlite import Context, w1_record, w2_list, w3_show, w6_scale

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11")


def _run_w4(ctx: Context) -> list[Result]:
    from wl_cli import w4_cli_start

    return w4_cli_start(ctx)


def _run_w5(ctx: Context) -> list[Result]:
    from wl_pg import w5_postgres

    return w5_postgres(ctx)


def _run_w7_w10(ctx: Context) -> list[Result]:
    from wl_deploy import w7_w10_deploys

    return w7_w10_deploys(ctx)


def _run_w8(ctx: Context) -> list[Result]:
    from wl_cluster import w8_yaml_apply

    return w8_yaml_apply(ctx)


def _run_w9(ctx: Context) -> list[Result]:
    from wl_template import w9_template

    return w9_template(ctx)


def _run_w11(ctx: Context) -> list[Result]:
    from wl_scale import w11_scale

    return w11_scale(ctx)


RUNNERS = {
    "W1": w1_record,
    "W2": w2_list,
    "W3": w3_show,
    "W4": _run_w4,
    "W5": _run_w5,
    "W6": w6_scale,
    # W10 redeploys W7's first deploys: one run measures both.
    "W7": _run_w7_w10,
    "W8": _run_w8,
    "W9": _run_w9,
    "W10": _run_w7_w10,
    "W11": _run_w11,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller W6 store")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    parser.add_argument("--only", metavar="W1,W2,...", help="run only these workloads")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 5, quick 3)")
    args = parser.parse_args(argv)
    selected = list(WORKLOADS)
    if args.only:
        selected = [w.strip().upper() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in selected if w not in RUNNERS]
        if unknown:
            parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {WORKLOADS}")
    rounds = args.rounds or (3 if args.quick else 5)

    from wl_pg import server_version

    header = machine_description(server_version())
    mode = "quick" if args.quick else "full"
    print(f"sbkube benchmarks ({mode}: {rounds} rounds, {', '.join(selected)})")
    for line in header:
        print("  " + line)
    print(flush=True)

    started = time.perf_counter()
    results: list[Result] = []
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sbkube-bench-") as tmp:
        ctx = Context(rounds=rounds, quick=args.quick, tmp=Path(tmp))
        done: set[object] = set()
        for name in selected:
            if RUNNERS[name] in done:
                continue
            done.add(RUNNERS[name])
            t0 = time.perf_counter()
            print(f"{name} ...", flush=True)
            try:
                got = RUNNERS[name](ctx)
            except Exception as err:  # one broken workload must not hide the others
                errors[name] = f"{type(err).__name__}: {err}"
                print(f"  {name} FAILED to run: {errors[name]}", flush=True)
                continue
            results += got
            print(f"  {name} done in {time.perf_counter() - t0:.1f}s", flush=True)
    elapsed = time.perf_counter() - started

    print()
    print(render_table(results))
    if ctx.notes:
        print("\nNotes:")
        for note in ctx.notes:
            print("  " + note.replace("\n", "\n  "))
    failed = [r.workload for r in results if r.passed is False]
    print(
        f"\n{len(results)} rows, {sum(r.passed is True for r in results)} PASS, "
        f"{len(failed)} FAIL, {len(errors)} workload error(s); {elapsed:.0f}s"
    )
    if args.json:
        payload = {
            "mode": mode,
            "rounds": rounds,
            "machine": header,
            "elapsed_s": elapsed,
            "results": [r.to_dict() for r in results],
            "notes": ctx.notes,
            "errors": errors,
            "extra": {k: v for k, v in ctx.extra.items() if k != "w1_store"},
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
