"""An instrumented run whose metrics a Prometheus client can scrape, for checking metric names.

    python -m tests.scrape_app DATA_DIR

Runs ``frictionlens demo``'s workload (friction, drift, agent tasks, format failures) plus one
SDK call that the server answers with a 429 first (an HTTP retry), with the global meter
provider reading through ``opentelemetry-exporter-prometheus``. Then it serves the
Prometheus endpoint on a free loopback port, prints ``PORT <n>`` and serves until stdin closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import openai
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import start_http_server

import frictionlens
from frictionlens import demo
from frictionlens.localserver import LocalLLMServer, Reply


def main(data_dir: Path) -> None:
    metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
    demo.run(data_dir, calls=100)
    with LocalLLMServer() as server:
        frictionlens.instrument(data_dir=data_dir, exporter="none", providers=["openai"])
        server.script(Reply(status=429, headers={"retry-after-ms": "1"}), Reply(content="ok"))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="local")
        client.chat.completions.create(
            model="gpt-demo", messages=[{"role": "user", "content": "Hello"}]
        )
        frictionlens.uninstrument()
    httpd, _ = start_http_server(0, addr="127.0.0.1")
    print(f"PORT {httpd.server_port}", flush=True)
    sys.stdin.read()
    httpd.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
