"""The one place where the Logger and Metrics are created (configured by POWERTOOLS_* variables).

There is no Powertools Tracer: its X-Ray SDK creates an X-Ray client when imported, which cost
140 ms of every cold start on our machines (bench/cold_import.py). `Tracing: Active` in the
template still traces every invocation, end to end, without it.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

__all__ = ["logger", "metrics"]
