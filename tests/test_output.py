import json

from hypothesis import given, settings
from hypothesis import strategies as st

from frictionlens import semconv
from frictionlens.features import output as fmt


def test_plain_json_is_valid():
    assert fmt.check_json('{"a": 1}') == fmt.FormatCheck(True)


def test_preamble_before_json_is_flagged():
    c = fmt.check_json('Sure! Here is the JSON:\n{"a": 1}')
    assert not c.valid and c.error == semconv.FORMAT_ERROR_PREAMBLE and c.preamble


def test_code_fence_is_flagged():
    c = fmt.check_json('```json\n{"a": 1}\n```')
    assert not c.valid and c.error == semconv.FORMAT_ERROR_CODE_FENCE and c.code_fence


def test_preamble_and_fence_together():
    c = fmt.check_json('Here you go:\n```json\n{"a": 1}\n```')
    assert c.preamble and c.code_fence and c.error == semconv.FORMAT_ERROR_PREAMBLE


def test_broken_json_and_empty():
    assert fmt.check_json('{"a": ').error == semconv.FORMAT_ERROR_JSON_DECODE
    assert fmt.check_json("   ").error == semconv.FORMAT_ERROR_EMPTY


def test_schema_required_keys_and_types():
    schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {"age": {"type": "integer"}},
    }
    assert fmt.check_json('{"name": "x", "age": 3}', schema).valid
    assert fmt.check_json('{"name": "x"}', schema).error == semconv.FORMAT_ERROR_SCHEMA
    assert fmt.check_json('{"name": "x", "age": "3"}', schema).error == semconv.FORMAT_ERROR_SCHEMA
    assert fmt.check_json('{"name": "x", "age": true}', schema).error == semconv.FORMAT_ERROR_SCHEMA
    assert fmt.check_json("[1]", schema).error == semconv.FORMAT_ERROR_SCHEMA


def test_tool_arguments():
    assert fmt.check_tool_arguments(['{"q": 1}', ""]).valid
    assert fmt.check_tool_arguments(['{"q": ']).error == semconv.FORMAT_ERROR_JSON_DECODE
    assert fmt.check_tool_arguments(["[1, 2]"]).error == semconv.FORMAT_ERROR_SCHEMA


def test_text_preamble_is_noted_not_failed():
    c = fmt.check_text("Certainly! The capital of France is Paris.")
    assert c.valid and c.preamble
    assert not fmt.check_text("The capital of France is Paris.").preamble
    assert fmt.check_text("").error == semconv.FORMAT_ERROR_EMPTY
    assert fmt.check_text("", has_tool_calls=True).valid


@settings(max_examples=300, deadline=None)
@given(
    st.text(),
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["object", "array", "x"]),
                "required": st.lists(st.text(max_size=3), max_size=3),
            }
        ),
    ),
)
def test_checks_never_raise(text, schema):
    for c in (fmt.check_json(text, schema), fmt.check_text(text), fmt.check_tool_arguments([text])):
        assert isinstance(c.valid, bool)
        assert c.valid or c.error


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=10,
    )
)
def test_any_serialised_json_is_valid(value):
    assert fmt.check_json(json.dumps(value)).valid
