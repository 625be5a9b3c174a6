from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from frictionlens.exporters.filestore import (
    FileMetricExporter,
    FileSpanExporter,
    read_metrics,
    read_traces,
)
from frictionlens.exporters.otlp_json import to_dict


def test_spans_round_trip_as_otlp_json_lines(tmp_path):
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(FileSpanExporter(tmp_path)))
    with tp.get_tracer("t").start_as_current_span("parent"):
        child = tp.get_tracer("t").start_span(
            "child", attributes={"s": "x", "i": 3, "f": 0.5, "b": True, "a": ("p", "q")}
        )
        child.add_event("ev", {"k": 1})
        child.end()
    tp.shutdown()
    lines = (tmp_path / "traces.jsonl").read_text().splitlines()
    assert len(lines) == 2
    spans = [
        sp
        for req in read_traces(tmp_path)
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for sp in ss.spans
    ]
    by_name = {s.name: s for s in spans}
    assert by_name["child"].parent_span_id == by_name["parent"].span_id
    assert by_name["child"].span_id.hex() == format(child.get_span_context().span_id, "016x")
    attrs = {a.key: a.value for a in by_name["child"].attributes}
    assert attrs["s"].string_value == "x" and attrs["i"].int_value == 3 and attrs["b"].bool_value
    assert [v.string_value for v in attrs["a"].array_value.values] == ["p", "q"]
    # ids are written as hex, as the Collector's file exporter writes them
    doc = to_dict(next(read_traces(tmp_path)))
    assert len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]) == 32


def test_metrics_round_trip(tmp_path):
    reader = PeriodicExportingMetricReader(
        FileMetricExporter(tmp_path), export_interval_millis=60_000
    )
    mp = MeterProvider(metric_readers=[reader])
    mp.get_meter("t").create_counter("c").add(3, {"k": "v"})
    mp.shutdown()
    names = [
        m.name
        for req in read_metrics(tmp_path)
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    ]
    assert names == ["c"]


def test_malformed_lines_are_skipped(tmp_path):
    (tmp_path / "traces.jsonl").write_text(
        'not json\n{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}\n'
    )
    assert list(read_traces(tmp_path)) == []
