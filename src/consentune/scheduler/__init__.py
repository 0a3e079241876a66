"""Periodic jobs run once per deployment, by the worker holding the leader lease in the database."""

from consentune.scheduler.leases import SqlLeases
from consentune.scheduler.runner import LEADER_LEASE, Job, Leases, Scheduler, worker_name

__all__ = ["LEADER_LEASE", "Job", "Leases", "Scheduler", "SqlLeases", "worker_name"]
