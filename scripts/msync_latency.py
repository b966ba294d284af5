#!/usr/bin/env python3
"""How long one msync of a small batch takes on this disk: the floor under a group commit.

    python3 scripts/msync_latency.py [DIR]

Maps a 16 MiB preallocated file (as auditring's segments are: fallocate, then mmap), then 300
times writes ~9 KB (32 records of ~290 bytes) and a header word, and syncs the written prefix with
one msync, as the committer does. Prints the median and the 90th percentile. DIR defaults to
target/tmp (the disk the benchmarks write to).
"""

import mmap
import os
import statistics
import sys
import time

directory = sys.argv[1] if len(sys.argv) > 1 else "target/tmp"
os.makedirs(directory, exist_ok=True)
path = os.path.join(directory, "msync-latency.bin")
size = 16 << 20
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
try:
    os.posix_fallocate(fd, 0, size)
    m = mmap.mmap(fd, size)
    times = []
    offset = 4096
    batch = 32 * 290
    for i in range(300):
        m[offset:offset + batch] = b"x" * batch
        m[0:8] = b"slot%04d" % i
        end = (offset + batch + 4095) // 4096 * 4096
        t = time.perf_counter()
        m.flush(0, end)
        times.append(time.perf_counter() - t)
        offset += batch
    m.close()
finally:
    os.close(fd)
    os.unlink(path)
times.sort()
print(f"msync of a ~9 KB batch: median {statistics.median(times) * 1e6:.0f} us, "
      f"p90 {times[len(times) * 9 // 10] * 1e6:.0f} us ({len(times)} syncs)")
