"""`fraudscore backfill` on a SQL engine: the feature set compiled to SQL (sqlfeatures), run on DuckDB or Spark.

    python -m fraudscore_training.sqlbackfill --engine duckdb|spark --input a.csv.gz b.csv.gz \
        [--output features.csv[.gz]] [--parquet features_parquet/] [--feature-set transaction_v2] \
        [--features-dir features] [--memory 4GB] [--threads N] [--temp-dir DIR] [--master local[2]]

Same rows and columns as the Node backfill (within 1e-9); the CSV is what `train` reads, the Parquet folder
is partitioned by day (TX_DAY=YYYY-MM-DD). `--memory` is DuckDB's memory_limit (it spills to --temp-dir
beyond it) or the Spark driver's memory (local mode; under spark-submit use its own options).
Prints one summary line on stderr (rows, seconds, peak RSS of this process: with Spark, not its JVM's;
bench/peak_rss.py measures the whole process tree).
Exit code 0, 1 on a data or engine error, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from . import featureset as fsmod


def _peak_rss_mib() -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.sqlbackfill", description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    ap.add_argument("--input", "-i", nargs="+", required=True, help="handbook-format csv / csv.gz / parquet, in arrival order")
    ap.add_argument("--output", "-o", default=None, help="training-set CSV (csv.gz if it ends in .gz)")
    ap.add_argument("--parquet", default=None, help="Parquet folder, partitioned by TX_DAY")
    ap.add_argument("--feature-set", default="transaction_v1", help="v1 | v2 | transaction_v2 | path to a feature-set JSON")
    ap.add_argument("--features-dir", default=None, help="folder of feature-set JSONs (default: <repo>/features)")
    ap.add_argument("--memory", default=None, help="memory budget, e.g. 2GB (DuckDB memory_limit / Spark driver memory)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--temp-dir", default=None, help="DuckDB spill folder")
    ap.add_argument("--master", default=None, help="Spark master when not under spark-submit (default local[*])")
    ap.add_argument("--shuffle-partitions", type=int, default=None, help="Spark spark.sql.shuffle.partitions")
    args = ap.parse_args(argv)
    if not args.output and not args.parquet:
        ap.error("give --output and/or --parquet")
    t0 = time.time()
    try:
        fs = fsmod.load(args.feature_set, Path(args.features_dir) if args.features_dir else None)
        if args.engine == "duckdb":
            from . import sql_duckdb

            rows = sql_duckdb.run(
                args.input, fs, args.output, args.parquet, memory_limit=args.memory, threads=args.threads, temp_dir=args.temp_dir
            )
        else:
            from . import sql_spark

            try:
                rows = sql_spark.run(
                    args.input,
                    fs,
                    args.output,
                    args.parquet,
                    master=args.master,
                    memory=args.memory,
                    shuffle_partitions=args.shuffle_partitions,
                )
            finally:
                sql_spark.stop()
    except (ValueError, FileNotFoundError) as e:
        print(f"sqlbackfill: {e}", file=sys.stderr)
        return 1
    secs = time.time() - t0
    outs = " + ".join(x for x in (args.output, args.parquet) if x)
    print(
        f"backfill ({args.engine}): {rows} transactions, {fs.id}, {secs:.1f}s ({round(rows / max(secs, 1e-9))}/s), "
        f"peak rss {_peak_rss_mib()} MiB{' (Python only, not the JVM)' if args.engine == 'spark' else ''} -> {outs}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
