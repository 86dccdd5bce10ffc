"""What SREs watch: samplers turning the service's state into Prometheus series, the service-level
counters fed by the call events, the recording and alert rules and the Grafana dashboards (one
Python source for the files in deploy/prometheus/ and deploy/grafana/), and a local Prometheus.

docs/operations.md ("Monitoring") says what each series means and what to do when an alert fires.
"""
