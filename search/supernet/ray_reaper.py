"""Ends the helper processes a local Ray started for a driver once the driver is gone, however it
went (kill -9 included): Ray ties its GCS server and raylet to the driver, but the raylet's own
helpers (RuntimeEnvAgent, DashboardAgent) lived on for a minute or more after a killed search.

Run by RayExecutor as `python ray_reaper.py DRIVER_PID RAY_PACKAGE_DIR`, as a file, so it imports
nothing of the project (no torch). Its stdin is a pipe only the driver holds: end of file means
the driver closed it (the executor closed) or died. Until then it notes, every half second, the
driver's descendants that belong to Ray; then it ends those still running (SIGTERM, SIGKILL after
3 s; psutil checks each one's start time, so a reused pid is never hit), and exits.
"""

from __future__ import annotations

import os
import select
import sys

import psutil

POLL_S = 0.5
GRACE_S = 3.0


def ray_descendants(driver: psutil.Process, ray_dir: str) -> dict[int, psutil.Process]:
    """The driver's descendants started by Ray: `ray::...` titles, or a program in Ray's package."""
    out: dict[int, psutil.Process] = {}
    try:
        kids = driver.children(recursive=True)
    except psutil.Error:
        return out
    for p in kids:
        try:
            name, cmd = p.name(), p.cmdline()
        except psutil.Error:
            continue
        if name.startswith("ray::") or (cmd and cmd[0].startswith("ray::")) or any(ray_dir in c for c in cmd[:2]):
            out[p.pid] = p
    return out


def main(argv: list[str]) -> None:
    driver_pid, ray_dir = int(argv[1]), argv[2]
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return
    known: dict[int, psutil.Process] = {}
    fd = sys.stdin.fileno()
    while True:
        known.update(ray_descendants(driver, ray_dir))
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if ready and not os.read(fd, 4096):
            break
    procs = [p for p in known.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=GRACE_S)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


if __name__ == "__main__":
    main(sys.argv)
