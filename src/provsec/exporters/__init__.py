"""The security-event exporter (`provsec exporter`): auth events from the journal and log files as Prometheus
metrics, with positions that survive rotation and restarts. Metrics: exporters/METRICS.md."""
