"""Runs a command; prints its wall time and the peak of the summed RSS of its whole process tree.

    python3 bench/peak_rss.py [--label NAME] -- <command...>

Sampled from /proc every 100 ms (a JVM that Python starts, as PySpark does, is counted; /usr/bin/time's
maxrss sees only the largest single process). One JSON line on stdout: label, exit code, wall_s, peak_tree_mib.
"""

import json
import os
import subprocess
import sys
import time


def tree_rss_kib(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/status") as f:
                kb = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = kb
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def main() -> int:
    args = sys.argv[1:]
    label = ""
    if args[:1] == ["--label"]:
        label, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    t0 = time.time()
    proc = subprocess.Popen(args)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kib(proc.pid))
        time.sleep(0.1)
    wall = time.time() - t0
    print(json.dumps({"label": label, "code": proc.returncode, "wall_s": round(wall, 1), "peak_tree_mib": round(peak / 1024)}))
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
