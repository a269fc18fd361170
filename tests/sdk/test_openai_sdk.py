"""The official OpenAI Python SDK against a running Portcullis gateway.

Launched by crates/portcullis/tests/sdk_python.rs, which starts a mock upstream and the
gateway binary and passes everything through the environment:

    PORTCULLIS_GATEWAY_URL             e.g. http://127.0.0.1:PORT/v1
    PORTCULLIS_GATEWAY_KEY             a key allowed every model
    PORTCULLIS_GATEWAY_RESTRICTED_KEY  a key limited to `mock-*`
    PORTCULLIS_GATEWAY_KIND_MODELS     comma-separated models, one per provider kind

Models: `mock-echo` (built-in mock provider) and, on an openai-compatible provider pointing
at the testkit MockUpstream: `upstream-gpt`, `upstream-embed`, `upstream-503`
(upstream_model fault-status-503) and `upstream-drop` (fault-stream-drop-2). The kind
models (`m-openai`, `m-compat`, `m-mistral`, `m-azure`, `m-anthropic`, `m-gemini`,
`m-bedrock`) reach the mock's native API double of each provider kind, through the
gateway's translation.
"""

import json
import os

import openai
import pytest

URL = os.environ.get("PORTCULLIS_GATEWAY_URL")
KEY = os.environ.get("PORTCULLIS_GATEWAY_KEY")
RESTRICTED_KEY = os.environ.get("PORTCULLIS_GATEWAY_RESTRICTED_KEY")
KIND_MODELS = [
    m for m in os.environ.get("PORTCULLIS_GATEWAY_KIND_MODELS", "").split(",") if m
]
BASE_MODELS = ["mock-echo", "upstream-gpt", "upstream-embed", "upstream-503", "upstream-drop"]
# Per kind model `m`: `m-429` (429 with Retry-After: 7), `m-401` (the provider refuses the
# gateway's credentials) and `m-err` (an error event after two stream chunks).
FAULT_SUFFIXES = ["429", "401", "err"]
FAULT_MODELS = [f"{m}-{s}" for m in KIND_MODELS for s in FAULT_SUFFIXES]

pytestmark = pytest.mark.skipif(
    not (URL and KEY), reason="PORTCULLIS_GATEWAY_URL / PORTCULLIS_GATEWAY_KEY not set"
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def make_client(key=None):
    return openai.OpenAI(base_url=URL, api_key=key or KEY, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client():
    return make_client()


@pytest.mark.parametrize("model", ["mock-echo", "upstream-gpt"])
def test_chat_non_stream(client, model):
    resp = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello gateway"}],
    )
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "echo: hello gateway"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("model", ["mock-echo", "upstream-gpt"])
def test_chat_stream(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
    )
    text = []
    finish = None
    chunks = 0
    for chunk in stream:
        chunks += 1
        assert chunk.object == "chat.completion.chunk"
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            text.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
    assert chunks >= 3
    assert "".join(text) == "echo: one two three four"
    assert finish == "stop"


def test_chat_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="upstream-gpt",
        messages=[{"role": "user", "content": "count my tokens"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].completion_tokens > 0


def test_tools_non_stream(client):
    resp = client.chat.completions.create(
        model="upstream-gpt",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"location": "Paris"}


def test_tools_stream(client):
    stream = client.chat.completions.create(
        model="upstream-gpt",
        messages=[{"role": "user", "content": "weather in Paris please"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            if delta.id:
                call["id"] = delta.id
            if delta.function and delta.function.name:
                call["name"] += delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris"}


def test_embeddings_base64_default(client):
    # The SDK asks for base64 by default and decodes it into floats.
    resp = client.embeddings.create(model="upstream-embed", input=["alpha", "beta"])
    assert len(resp.data) == 2
    for item in resp.data:
        assert len(item.embedding) == 8
        assert all(isinstance(x, float) for x in item.embedding)
        norm = sum(x * x for x in item.embedding)
        assert abs(norm - 1.0) < 1e-3
    assert resp.usage.prompt_tokens > 0


def test_embeddings_float(client):
    resp = client.embeddings.create(
        model="upstream-embed", input="alpha", encoding_format="float", dimensions=16
    )
    assert len(resp.data[0].embedding) == 16


def test_embeddings_builtin_mock(client):
    resp = client.embeddings.create(model="mock-echo", input="hello")
    assert len(resp.data) == 1
    assert len(resp.data[0].embedding) > 0


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == BASE_MODELS + KIND_MODELS + FAULT_MODELS


def test_models_list_restricted():
    if not RESTRICTED_KEY:
        pytest.skip("PORTCULLIS_GATEWAY_RESTRICTED_KEY not set")
    ids = [m.id for m in make_client(RESTRICTED_KEY).models.list()]
    assert ids == ["mock-echo"]


def test_bad_key_is_authentication_error():
    with pytest.raises(openai.AuthenticationError) as err:
        make_client("pcl_not_a_valid_key_0000000000000000").chat.completions.create(
            model="mock-echo", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 401
    assert err.value.response.headers.get("x-request-id")


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 404
    assert err.value.code == "model_not_found"


def test_disallowed_model_is_permission_denied():
    if not RESTRICTED_KEY:
        pytest.skip("PORTCULLIS_GATEWAY_RESTRICTED_KEY not set")
    restricted = make_client(RESTRICTED_KEY)
    ok = restricted.chat.completions.create(
        model="mock-echo", messages=[{"role": "user", "content": "hi"}]
    )
    assert ok.choices[0].message.content == "echo: hi"
    with pytest.raises(openai.PermissionDeniedError) as err:
        restricted.chat.completions.create(
            model="upstream-gpt", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 403


def test_bad_request_is_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="mock-echo", messages=[])
    assert err.value.status_code == 400


def test_upstream_503(client):
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model="upstream-503", messages=[{"role": "user", "content": "hi"}]
        )
    assert isinstance(err.value, openai.InternalServerError)
    assert err.value.status_code == 503


def test_upstream_503_stream(client):
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(
            model="upstream-503", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert err.value.status_code == 503


def test_mid_stream_drop_raises_api_error(client):
    stream = client.chat.completions.create(
        model="upstream-drop",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    # Some content arrived before the drop, and not all of it.
    assert "".join(received) != "echo: one two three four five six"
    assert err.value.message


# ---------------------------------------------------------------- every provider kind


def kind_models():
    """The models to run the per-kind tests on: a visible failure when none were passed."""
    return KIND_MODELS or ["<PORTCULLIS_GATEWAY_KIND_MODELS not set>"]


def reassemble_tool_calls(stream):
    """Tool calls of a streamed completion, reassembled by index; also the finish reason."""
    calls = {}
    finish = None
    text = []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            text.append(choice.delta.content)
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(
                delta.index, {"id": None, "type": None, "name": "", "arguments": ""}
            )
            if delta.id:
                call["id"] = delta.id
            if delta.type:
                call["type"] = delta.type
            if delta.function and delta.function.name:
                call["name"] += delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason
    return calls, finish, "".join(text)


@pytest.mark.parametrize("model", kind_models())
def test_kind_chat_non_stream(client, model):
    resp = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello from the openai sdk"},
        ],
    )
    assert resp.object == "chat.completion"
    assert resp.model
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: hello from the openai sdk"
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("model", kind_models())
def test_kind_chat_stream(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
    )
    text = []
    finish = None
    ids = set()
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        ids.add(chunk.id)
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            text.append(choice.delta.content)
        if choice.finish_reason:
            assert finish is None, "two finish reasons"
            finish = choice.finish_reason
    assert "".join(text) == "echo: one two three four"
    assert finish == "stop"
    assert len(ids) == 1, f"chunk ids differ: {ids}"


@pytest.mark.parametrize("model", kind_models())
def test_kind_chat_stream_with_usage(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "count my tokens"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].prompt_tokens > 0
    assert usage[0].completion_tokens > 0


@pytest.mark.parametrize("model", kind_models())
def test_kind_tools_non_stream(client, model):
    resp = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.role == "assistant"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].id
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"location": "Paris"}


@pytest.mark.parametrize("model", kind_models())
def test_kind_tools_stream(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather in Paris please"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls, finish, _ = reassemble_tool_calls(stream)
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["type"] in (None, "function")
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris"}


@pytest.mark.parametrize("model", kind_models())
def test_kind_tool_result_round_trip(client, model):
    # The assistant's tool call and the tool's result go back upstream in the provider's
    # shape; the mock then echoes the last user turn's text. Anthropic and Bedrock carry the
    # tool result and the following text in one user turn (the mock echoes both), the others
    # keep the tool result in its own turn (sdk_python.rs checks that every upstream got it).
    resp = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
            {"role": "user", "content": "thanks"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert resp.choices[0].finish_reason == "stop"
    both = model in ("m-anthropic", "m-bedrock")
    assert resp.choices[0].message.content == (
        "echo: 18C and sunny thanks" if both else "echo: thanks"
    )



@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("model", kind_models())
def test_kind_upstream_429_is_rate_limit_error(client, model, stream):
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(
            model=f"{model}-429", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "7"


@pytest.mark.parametrize("model", kind_models())
def test_kind_upstream_auth_failure_does_not_blame_the_client_key(client, model):
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model=f"{model}-401", messages=[{"role": "user", "content": "hi"}]
        )
    assert not isinstance(err.value, (openai.AuthenticationError, openai.PermissionDeniedError))
    assert err.value.status_code == 502
    assert err.value.code == "upstream_misconfigured"


@pytest.mark.parametrize("model", kind_models())
def test_kind_error_after_stream_start_raises(client, model):
    stream = client.chat.completions.create(
        model=f"{model}-err",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert "".join(received) != "echo: one two three four five six"
    assert err.value.message
