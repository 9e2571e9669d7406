"""An executor for the time-planning tests: it records the jobs it is given and fails them,
so no child process runs."""
from __future__ import annotations


class RecordingExecutor:
    def __init__(self):
        self.jobs = []

    def run_jobs(self, jobs, timeout_s):
        self.jobs += jobs
        return [{"status": "failed", "reason": "recorded only"} for _ in jobs]
