"""`make bench`: run every benchmark, one after the other, each printing its JSON; then one table.

The table: each figure, its same-run baseline, the ratio, the target, met or not. A
benchmark's JSON carries `figure`, `baseline`, `ratio`, `target`, `met` (and `name`) at
the top, and may list more rows of the same keys under `more`; one that does not yet
report these keys shows as "no figure" (its JSON is still printed in full above).
"""

import json
import subprocess
import sys

BENCHMARKS = [
    "bench.ingest",
    "bench.consume",
    "bench.outbox",
    "bench.seed_users",
    "bench.campaign_100k",
    "bench.weather",
    "bench.orders_saga",
    "bench.kafka_ingest",
    "bench.metrics_scrape",
    "bench.replicas",
]


def rows_of(module: str, document: dict) -> list[dict]:
    rows = [document] if "figure" in document else []
    rows += document.get("more", [])
    return [{"name": module, **row} for row in rows] or [{"name": module, "figure": None}]


def table(rows: list[dict]) -> str:
    lines = [f"{'measure':<72} {'figure':>10} {'baseline':>10} {'ratio':>7} {'target':>8}  met"]
    for row in rows:
        if row.get("figure") is None:
            lines.append(f"{row['name']:<72} {'no figure':>10}")
            continue
        target = f"≥{row['target']:g}" if row.get("unit", "ratio") == "ratio" else f"≤{row['target']:g}"
        ratio = "" if row.get("ratio") is None else f"{row['ratio']:.3f}"
        baseline = "" if row.get("baseline") is None else f"{row['baseline']:g}"
        lines.append(
            f"{row['name'][:72]:<72} {row['figure']:>10g} {baseline:>10} {ratio:>7} {target:>8}  "
            f"{'yes' if row['met'] else 'no'}"
        )
    return "\n".join(lines)


def main() -> int:
    failed, rows = [], []
    for module in sys.argv[1:] or BENCHMARKS:
        print(f"== {module}", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, "-m", module], stdout=subprocess.PIPE, text=True)
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            failed.append(module)
            continue
        try:
            rows += rows_of(module, json.loads(done.stdout))
        except json.JSONDecodeError:
            rows.append({"name": module, "figure": None})
    print("\n" + table(rows))
    if failed:
        print(f"benchmarks that did not run to the end: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
