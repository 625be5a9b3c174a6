import os
import threading
import time

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

from frictionlens import health
from frictionlens.features import record as features
from frictionlens.features.record import CallFeatures
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
        emit(
            ReadableSpan(
                "summary", context=SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))
            )
        )


class Broken(Tag):
    def process(self, record, emit):
        raise RuntimeError("boom")


def _setup(*stages, **options):
    if options.get("background"):  # the worker runs lone spans at its next round
        options.setdefault("tick_interval_s", 0.05)
    exporter = InMemorySpanExporter()
    pipeline = SignalPipeline(stages, downstream=SimpleSpanProcessor(exporter), **options)
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


class Gate(Tag):
    """A stage that records its thread and, while closed, holds the worker inside a span."""

    def __init__(self):
        super().__init__()
        self.threads: list[str] = []
        self.open = threading.Event()
        self.entered = threading.Event()

    def process(self, record, emit):
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        self.open.wait(10)
        super().process(record, emit)


def test_background_stages_run_off_the_app_thread_and_flush_drains_them():
    gate = Gate()
    tp, pipeline, exporter = _setup(gate, background=True)
    span = tp.get_tracer("t").start_span("call", attributes={"test.n": 1})
    feats = CallFeatures(system_digest=7)
    features.attach(span, feats)
    span.end()  # returns while the stage is still held
    assert gate.entered.wait(10) and exporter.get_finished_spans() == ()
    gate.open.set()
    assert pipeline.force_flush()
    (out,) = exporter.get_finished_spans()
    assert out.attributes["test.tag"] == 2 and gate.seen == [feats]
    assert (
        gate.threads == ["frictionlens-pipeline"]
        and threading.current_thread().name not in gate.threads
    )
    pipeline.shutdown()


def test_background_queue_is_bounded_and_overflow_is_exported_without_signals():
    gate = Gate()
    tp, pipeline, exporter = _setup(gate, background=True, max_queued=1)
    before = health.internal_errors().get("pipeline_queue_full", 0)
    tracer = tp.get_tracer("t")
    tracer.start_span("held").end()
    assert gate.entered.wait(10)
    tracer.start_span("queued").end()
    tracer.start_span("overflow").end()  # the worker holds one span, the queue one more
    assert [s.name for s in exporter.get_finished_spans()] == ["overflow"]
    assert health.internal_errors()["pipeline_queue_full"] == before + 1
    gate.open.set()
    pipeline.force_flush()
    tagged = {s.name: s.attributes.get("test.tag") for s in exporter.get_finished_spans()}
    assert tagged == {"overflow": None, "held": 1, "queued": 1}
    pipeline.shutdown()


def test_background_close_runs_queued_spans_through_the_stages_first():
    gate = Gate()
    tp, pipeline, exporter = _setup(gate, background=True)
    tracer = tp.get_tracer("t")
    for name in ("a", "b", "c"):
        tracer.start_span(name).end()
    assert gate.entered.wait(10)
    threading.Timer(0.2, gate.open.set).start()
    pipeline.shutdown()
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["a", "b", "c", "summary"] and gate.closed == 1
    assert all(s.attributes.get("test.tag") == 1 for s in exporter.get_finished_spans()[:3])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_background_worker_starts_afresh_in_a_forked_child():
    tag = Tag()
    tp, pipeline, exporter = _setup(tag, background=True)
    tp.get_tracer("t").start_span("parent").end()
    pipeline.force_flush()
    pid = os.fork()
    if pid == 0:  # the child: the parent's worker thread does not exist here
        ok = False
        try:
            tp.get_tracer("t").start_span("child").end()
            ok = (
                pipeline.force_flush(5000)
                and exporter.get_finished_spans()[-1].attributes.get("test.tag") == 1
            )
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pipeline.shutdown()


def test_submitted_work_runs_in_order_and_a_span_it_ends_goes_through_the_stages_at_once():
    gate = Gate()
    tp, pipeline, exporter = _setup(gate, background=True)
    tracer = tp.get_tracer("t")
    handed = tracer.start_span("handed over")
    ended_on: list[str] = []

    def end_it() -> None:
        ended_on.append(threading.current_thread().name)
        handed.end(end_time=123)

    tracer.start_span("first").end()
    assert gate.entered.wait(10)  # the worker is held inside the first span
    assert pipeline.submit(end_it)
    tracer.start_span("ended by the app").end()  # queued behind the handed-over work
    assert ended_on == []  # not on the submitting call
    gate.open.set()
    assert pipeline.force_flush()
    out = exporter.get_finished_spans()
    assert [s.name for s in out] == ["first", "handed over", "ended by the app"]
    assert all(s.attributes["test.tag"] == 1 for s in out) and out[1].end_time == 123
    assert len(ended_on) == 1  # by the worker, or by the flushing thread: once
    pipeline.shutdown()


def test_submit_is_refused_where_the_caller_must_do_the_work_itself():
    inline = SignalPipeline([Tag()])
    assert not inline.submit(lambda: None)  # no worker
    gate = Gate()
    tp, pipeline, _ = _setup(gate, background=True, max_queued=1)
    tp.get_tracer("t").start_span("held").end()
    assert gate.entered.wait(10)
    ran: list[int] = []
    assert pipeline.submit(lambda: ran.append(1))
    assert not pipeline.submit(lambda: ran.append(2))  # full
    gate.open.set()
    pipeline.force_flush()
    assert ran == [1]
    pipeline.close_stages()
    assert not pipeline.submit(lambda: ran.append(3))  # closed
    pipeline.shutdown()


def test_close_runs_handed_over_work_through_the_stages_before_closing_them():
    gate = Gate()
    tp, pipeline, exporter = _setup(gate, background=True)
    tracer = tp.get_tracer("t")
    tracer.start_span("first").end()
    assert gate.entered.wait(10)
    late = tracer.start_span("handed over")
    assert pipeline.submit(late.end)
    threading.Timer(0.2, gate.open.set).start()
    pipeline.shutdown()
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["first", "handed over", "summary"]
    assert exporter.get_finished_spans()[1].attributes.get("test.tag") == 1


def test_spans_ended_on_the_worker_start_the_ticker_that_expires_stage_state():
    class Ticks(Tag):
        def __init__(self):
            super().__init__()
            self.ticked = threading.Event()

        def tick(self, now_ns, emit):
            self.ticked.set()

    stage = Ticks()
    tp, pipeline, _ = _setup(stage, background=True, tick_interval_s=0.05)
    assert pipeline.submit(
        tp.get_tracer("t").start_span("handed over").end
    )  # the app thread ends no span
    assert stage.ticked.wait(10)
    pipeline.shutdown()


def test_process_batch_returns_the_records_and_hands_nothing_on():
    """The collector's batch path: stages run in order on every span (a failing one skipped
    and counted), the additions come back, and the export stage sees nothing."""
    before = health.internal_errors().get("Broken", 0)
    tag = Tag()
    exporter = InMemorySpanExporter()
    pipeline = SignalPipeline([Broken(), tag], downstream=SimpleSpanProcessor(exporter))
    spans = [
        ReadableSpan(f"call-{n}", context=SpanContext(1, n, False), attributes={"test.n": n})
        for n in (1, 2)
    ]
    records = pipeline.process_batch(spans)
    assert [r.span for r in records] == spans
    assert [r.attributes for r in records] == [{"test.tag": 2}, {"test.tag": 3}]
    assert [[e.name for e in r.events] for r in records] == [["test.event"], ["test.event"]]
    assert tag.seen == [None, None]  # spans finished elsewhere carry no in-process features
    assert health.internal_errors()["Broken"] == before + 2
    assert exporter.get_finished_spans() == ()

    pipeline.close_stages()
    (late,) = pipeline.process_batch(spans[:1])  # closed: the stages are not run any more
    assert (late.attributes, late.events, len(tag.seen)) == ({}, [], 2)


def test_merged_attributes_put_what_stages_added_over_the_span_own():
    tp, _, exporter = _setup()
    tp.get_tracer("t").start_span("call", attributes={"a": 1, "b": 2}).end()
    (span,) = exporter.get_finished_spans()
    record = SpanRecord(span)
    assert record.merged() == {"a": 1, "b": 2}
    record.set("b", 3)
    record.set("c", 4)
    assert record.merged() == {"a": 1, "b": 3, "c": 4}
    assert dict(span.attributes) == {"a": 1, "b": 2}  # the span itself is untouched


def test_a_flush_runs_queued_work_on_the_flushing_thread_without_waking_the_worker():
    tag = Tag()
    tp, pipeline, exporter = _setup(tag, background=True, tick_interval_s=3600)
    threads: list[str] = []
    tp.get_tracer("t").start_span("lone").end()
    assert pipeline.submit(lambda: threads.append(threading.current_thread().name))
    assert exporter.get_finished_spans() == ()  # a lone span waits for the worker's round
    assert pipeline.force_flush()
    (out,) = exporter.get_finished_spans()
    assert out.attributes["test.tag"] == 1 and threads == [threading.current_thread().name]
    pipeline.shutdown()


def test_a_full_batch_wakes_the_worker_before_its_round():
    tag = Tag()
    tp, pipeline, exporter = _setup(tag, background=True, tick_interval_s=3600, max_queued=8)
    tracer = tp.get_tracer("t")
    for n in range(4):  # half the queue: a batch
        tracer.start_span(f"s{n}").end()
    deadline = time.monotonic() + 10
    while len(exporter.get_finished_spans()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [s.name for s in exporter.get_finished_spans()] == ["s0", "s1", "s2", "s3"]
    pipeline.shutdown()
