#!/usr/bin/env python3
"""Runs a command and reports the largest resident sizes it reached, split by kind.

    python3 scripts/rss_sample.py target/release/auditring demo --events 7500000 --skip-verify

Reads the child's /proc/PID/status every 5 ms and prints the largest RssAnon (heap, stacks, the
queue), RssFile (mapped files: the segments being written, the program itself) and VmRSS seen,
and the kernel's own high-water mark VmHWM. A peak shorter than the sampling interval shows in
VmHWM only. Linux only.
"""

import re
import subprocess
import sys
import time

if len(sys.argv) < 2:
    sys.exit(__doc__)
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
largest = {}
while child.poll() is None:
    try:
        with open(f"/proc/{child.pid}/status") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        break
    for key in ("RssAnon", "RssFile", "VmRSS", "VmHWM"):
        m = re.search(key + r":\s+(\d+) kB", status)
        if m:
            largest[key] = max(largest.get(key, 0), int(m.group(1)))
    time.sleep(0.005)
print(", ".join(f"{k} {v / 1000:.1f} MB" for k, v in largest.items()))
sys.exit(child.wait())
