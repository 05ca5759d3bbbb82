"""The record's "environment" and "process" objects, with iol's keys (src/iol/bench/environment.cpp,
results.cpp) plus a "versions" object naming the baseline's software stack.

iol_version and git_commit are copied from the request file: they name the iol tree that
exported the workload, the same tree whose baselines/pytorch/ is running.
"""
import os
import platform
import resource
import socket
import time


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def collect_environment(iol_version, git_commit, gpu, gpu_unavailable_reason, cuda_runtime, versions):
    """gpu: {"name", "driver_version", "memory_total_bytes"} or None; versions: {"torch": ..., ...}."""
    uname = os.uname()
    return {"date": utc_now(), "iol_version": iol_version, "git_commit": git_commit,
            "host": uname.nodename or socket.gethostname(), "kernel": f"{uname.sysname} {uname.release}",
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count() or 0, "gpu": gpu,
            "gpu_unavailable_reason": gpu_unavailable_reason, "cuda_runtime": cuda_runtime,
            "versions": dict(versions)}


def process_stats():
    """CPU time and peak RSS of this process (getrusage, as iol)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_user_s": usage.ru_utime, "cpu_system_s": usage.ru_stime, "peak_rss_bytes": usage.ru_maxrss * 1024}
