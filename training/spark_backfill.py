"""spark-submit entry point: `spark-submit ... --py-files fraudscore_training.zip training/spark_backfill.py --engine spark ...`
(arguments as `python -m fraudscore_training.sqlbackfill`)."""

from fraudscore_training.sqlbackfill import main

raise SystemExit(main())
