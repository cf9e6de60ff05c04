"""The compiled feature query on Spark SQL (PySpark): handbook CSV(.gz) or Parquet in, training set out.

Arrival order is (input index, file block start, row within the block): each input is read on its own,
`_metadata.file_block_start` orders the blocks of a split file and `monotonically_increasing_id()` the rows
inside a block (a block is read by one task, in file order). The query of `sqlfeatures` then runs as
Spark window functions, partitioned by entity; an optional LABELED_AT column is read as when each label
arrived (see sqlfeatures). Outputs: a Parquet folder partitioned by day
(`TX_DAY=YYYY-MM-DD/`, UTC; the scalable output) and/or one CSV file (`.csv` / `.csv.gz`, rows in arrival
order, for the trainer: it goes through one task, so keep it to what one machine trains on).

Under `spark-submit` the session comes from the submit's configuration; from Python (tests, `fraudscore
backfill --engine spark`) a local one is started (`master`, default local[*], driver memory `memory`).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from . import sqlfeatures
from .featureset import FeatureSet

SEQ = ["_input", "_block", "_row"]


def jvm_size(size: str) -> str:
    """`2GB`, `2GiB`, `2g`, `512 MB` -> the JVM's `2g` / `512m`; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt])(?:i?b)?\s*", size, re.IGNORECASE)
    if not m:
        raise ValueError(f"memory size {size!r}: expected e.g. 4GB or 512MB")
    return f"{m.group(1)}{m.group(2).lower()}"


def session(master: str | None = None, memory: str | None = None, shuffle_partitions: int | None = None):
    """The SparkSession: spark-submit's when it launched this process (its master and memory win), else a
    new local one (`master`, default local[*]). Session time zone UTC either way."""
    from pyspark.sql import SparkSession

    b = SparkSession.builder.appName("fraudscore-backfill")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        b = b.master(master or "local[*]").config("spark.ui.enabled", "false")
        b = b.config("spark.ui.showConsoleProgress", "false")
        if memory:
            b = b.config("spark.driver.memory", jvm_size(memory))
    spark = b.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    if shuffle_partitions:
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    return spark


def _read(spark, path: str, index: int):
    from pyspark.sql import functions as F

    if path.endswith(".parquet") or Path(path).is_dir():
        df = spark.read.parquet(path)
    else:
        df = spark.read.option("header", True).option("inferSchema", False).csv(path)
    missing = [c for c in sqlfeatures.PREFIX[:5] if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    fraud = (
        F.when(F.col("TX_FRAUD").cast("string") == "1", 1).otherwise(0)
        if "TX_FRAUD" in df.columns
        else F.lit(0)
    )
    dt = F.col("TX_DATETIME").cast("string")
    # LABELED_AT (when the label became known), NULL when the file has none or the row an empty value.
    labeled = F.col("LABELED_AT").cast("string") if "LABELED_AT" in df.columns else F.lit(None).cast("string")
    df = df.withColumn("_labeled_at", F.when(labeled != "", labeled))
    return df.select(
        F.col("TRANSACTION_ID").cast("string").alias("TRANSACTION_ID"),
        dt.alias("TX_DATETIME"),
        F.col("CUSTOMER_ID").cast("string").alias("CUSTOMER_ID"),
        F.col("TERMINAL_ID").cast("string").alias("TERMINAL_ID"),
        F.expr("try_cast(TX_AMOUNT AS DOUBLE)").alias("TX_AMOUNT"),
        fraud.cast("int").alias("TX_FRAUD"),
        F.expr("unix_millis(try_cast(CAST(TX_DATETIME AS STRING) AS TIMESTAMP))").alias("_t"),
        F.col("_labeled_at").alias("LABELED_AT"),
        F.expr("unix_millis(try_cast(_labeled_at AS TIMESTAMP))").alias("_a"),
        F.lit(index).alias("_input"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_row"),
    )


def load(spark, inputs: list[str]):
    """(DataFrame of every input with the arrival columns, amount scale: 100 for whole cents else 1, rows,
    whether some fraud label arrives after its transaction: LABELED_AT, read into `_a` as epoch ms).

    Raises ValueError on a missing column, an unparseable time or LABELED_AT, or a negative/non-numeric
    amount."""
    from functools import reduce

    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    src = reduce(lambda a, b: a.unionByName(b), [_read(spark, str(p), i) for i, p in enumerate(inputs)])
    # Parsed once for the checks and the query, kept on local disk: caching it in memory first (MEMORY_AND_DISK)
    # ran a 2 GB driver out of heap at 88 M rows while it unrolled the blocks (BENCHMARKS.md, backfill engines).
    src = src.persist(StorageLevel.DISK_ONLY)
    bad_row = F.col("_t").isNull() | F.col("TX_AMOUNT").isNull() | F.isnan("TX_AMOUNT") | (F.col("TX_AMOUNT") < 0)
    bad_row = bad_row | (F.col("LABELED_AT").isNotNull() & F.col("_a").isNull())
    late = (F.col("TX_FRAUD") == 1) & F.col("_a").isNotNull() & (F.col("_a") > F.col("_t"))
    cents_ok = F.abs(F.col("TX_AMOUNT") * 100 - F.round(F.col("TX_AMOUNT") * 100)) < 1e-6
    n, bad, not_cents, labeled_later = src.agg(
        F.count(F.lit(1)),
        F.sum(bad_row.cast("int")),
        F.sum((~cents_ok).cast("int")),
        F.sum(late.cast("int")),
    ).first()
    if n == 0:
        raise ValueError(f"no transactions in {', '.join(map(str, inputs))}")
    if bad:
        raise ValueError(f"{bad} bad row(s) (time, amount or LABELED_AT)")
    return src, (100.0 if not not_cents else 1.0), int(n), bool(labeled_later)


def _single_csv(df, out: Path) -> None:
    """Writes `df` (already ordered) as one CSV file at `out`, through a temporary folder beside it."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}")
    w = df.coalesce(1).write.option("header", True)
    if out.suffix == ".gz":
        w = w.option("compression", "gzip")
    w.csv(str(tmp))
    parts = sorted(tmp.glob("part-*"))
    if len(parts) != 1:
        raise RuntimeError(f"expected one CSV part in {tmp}, found {len(parts)}")
    parts[0].replace(out)
    shutil.rmtree(tmp, ignore_errors=True)


def run(
    inputs: list[str],
    fs: FeatureSet,
    csv_out: str | None = None,
    parquet_out: str | None = None,
    master: str | None = None,
    memory: str | None = None,
    shuffle_partitions: int | None = None,
) -> int:
    """Computes the training set of `fs` over `inputs`; writes the outputs asked for; returns the row count."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if not csv_out and not parquet_out:
        raise ValueError("nothing to write: give a CSV and/or a Parquet output")
    spark = session(master, memory, shuffle_partitions)
    src, scale, rows, labeled_later = load(spark, inputs)
    units = F.round(F.col("TX_AMOUNT") * 100).cast("long") if scale == 100.0 else F.col("TX_AMOUNT")
    src.withColumn("_u", units).createOrReplaceTempView("fraudscore_source")
    # Only a history with labels that arrive after their transaction pays for the label events.
    feats = spark.sql(sqlfeatures.compile_query(fs, "fraudscore_source", SEQ, scale, labeled_at=labeled_later))
    cols = sqlfeatures.output_columns(fs)
    if csv_out and parquet_out:
        feats = feats.persist(StorageLevel.DISK_ONLY)
    if parquet_out:
        (
            feats.select(*cols, F.date_format(F.timestamp_millis("_t"), "yyyy-MM-dd").alias("TX_DAY"))
            .write.mode("overwrite")
            .partitionBy("TX_DAY")
            .parquet(str(parquet_out))
        )
    if csv_out:
        out = Path(csv_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        _single_csv(feats.orderBy(*SEQ).select(*cols), out)
    src.unpersist()
    return rows


def stop() -> None:
    """Stops the active session (and with it a local JVM)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
