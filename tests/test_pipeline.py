from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frictionlens import health
from frictionlens.processors import features
from frictionlens.processors.features import CallFeatures
from frictionlens.processors.pipeline import SignalPipeline, SpanRecord


class Tag:
    def __init__(self):
        self.seen: list[CallFeatures | None] = []
        self.closed = 0

    def process(self, record: SpanRecord, emit):
        self.seen.append(record.features)
        record.set("test.tag", record.get("test.n", 0) + 1)
        record.add_event("test.event", {"k": 1})

    def tick(self, now_ns, emit):
        pass

    def close(self, emit):
        self.closed += 1
        emit(ReadableSpan("summary", context=SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))))


class Broken(Tag):
    def process(self, record, emit):
        raise RuntimeError("boom")


def _setup(*stages):
    exporter = InMemorySpanExporter()
    pipeline = SignalPipeline(stages, downstream=SimpleSpanProcessor(exporter))
    tp = TracerProvider()
    tp.add_span_processor(pipeline)
    return tp, pipeline, exporter


def test_stages_enrich_a_copy_and_see_features():
    tag = Tag()
    tp, pipeline, exporter = _setup(tag)
    span = tp.get_tracer("t").start_span("call", attributes={"test.n": 4})
    feats = CallFeatures(system_digest=7)
    features.attach(span, feats)
    span.end()
    (out,) = exporter.get_finished_spans()
    assert out.attributes["test.tag"] == 5 and out.attributes["test.n"] == 4
    assert [e.name for e in out.events] == ["test.event"]
    assert span.attributes.get("test.tag") is None  # the app's span is untouched
    assert tag.seen == [feats] and features.pop(span) is None  # handed over once, then gone


def test_a_failing_stage_is_skipped_and_counted():
    before = health.internal_errors().get("Broken", 0)
    tag = Tag()
    tp, _, exporter = _setup(Broken(), tag)
    tp.get_tracer("t").start_span("call").end()
    (out,) = exporter.get_finished_spans()
    assert out.attributes["test.tag"] == 1
    assert health.internal_errors()["Broken"] == before + 1


def test_close_flushes_stage_state_once():
    tag = Tag()
    tp, pipeline, exporter = _setup(tag)
    pipeline.close_stages()
    pipeline.close_stages()
    assert tag.closed == 1
    assert [s.name for s in exporter.get_finished_spans()] == ["summary"]


def test_pending_features_are_bounded(monkeypatch):
    monkeypatch.setattr(features, "MAX_PENDING", 5)
    tp = TracerProvider()
    spans = [tp.get_tracer("t").start_span(f"s{i}") for i in range(20)]
    for s in spans:
        features.attach(s, CallFeatures())
    assert features.pending_count() <= 5
