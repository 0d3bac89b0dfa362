"""CloudWatch views of the adapter's own metrics, built only from ``adapter.observability.names``.

Scaling policies, alarms and the dashboard all take their metrics from here, so a renamed metric breaks
synthesis (and a test) instead of silently graphing nothing.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw

from adapter.observability import names
from infra.config import DeployConfig

PERIOD = Duration.minutes(1)


def _known(name: str) -> str:
    if name not in names.METRIC_NAMES:
        raise ValueError(f"{name!r} is not defined in adapter/observability/names.py")
    return name


def adapter_metric(config: DeployConfig, name: str, statistic: str, label: str | None = None) -> cw.Metric:
    """One metric of the service's roll-up series (dimension Service only)."""
    return cw.Metric(namespace=names.NAMESPACE, metric_name=_known(name), statistic=statistic, period=PERIOD,
                     dimensions_map={names.SERVICE_DIMENSION: config.service_name}, label=label)


def per_dimension(config: DeployConfig, name: str, dimension: str, per_second: bool = False
                  ) -> cw.MathExpression:
    """Every series of ``name`` split by ``dimension`` (e.g. MessagesIn by Action), found with SEARCH."""
    service = f'{names.SERVICE_DIMENSION}="{config.service_name}"'
    search = (f"SEARCH('{{{names.NAMESPACE},{names.SERVICE_DIMENSION},{dimension}}} "
              f"MetricName=\"{_known(name)}\" {service}', 'Sum', 60)")
    return cw.MathExpression(expression=f"{search} / 60" if per_second else search, period=PERIOD,
                             using_metrics={})


def connections_per_process(config: DeployConfig) -> cw.Metric:
    # Each worker process reports its gauge once per flush; the average over all datapoints is one process's
    # load (a task runs ``config.workers`` of them).
    return adapter_metric(config, names.ACTIVE_CONNECTIONS, "Average", "connections per worker process")


def message_latency_p99(config: DeployConfig) -> cw.Metric:
    return adapter_metric(config, names.MESSAGE_LATENCY_MS, "p99", "message latency p99")
