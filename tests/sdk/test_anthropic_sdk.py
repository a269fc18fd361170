"""The official Anthropic Python SDK against a running Portcullis gateway (POST /v1/messages).

Launched by crates/portcullis/tests/sdk_python.rs, which starts a mock upstream and the
gateway binary and passes everything through the environment:

    PORTCULLIS_GATEWAY_ROOT         e.g. http://127.0.0.1:PORT (the SDK appends /v1/messages)
    PORTCULLIS_GATEWAY_KEY          a key allowed every model
    PORTCULLIS_GATEWAY_KIND_MODELS  comma-separated models, one per provider kind

Every kind model (`m-openai`, `m-compat`, `m-mistral`, `m-azure`, `m-anthropic`, `m-gemini`,
`m-bedrock`) reaches the mock's native API double of its provider kind; the mock replies
"echo: <last user text>", or a `get_weather` call with {"location": "Paris"} when tools are
offered and the last user text mentions the weather. `mock-echo` is the built-in mock
provider; `upstream-503` and `upstream-drop` are fault models on the openai-compatible
provider.
"""

import json
import os

import anthropic
import pytest

ROOT = os.environ.get("PORTCULLIS_GATEWAY_ROOT")
KEY = os.environ.get("PORTCULLIS_GATEWAY_KEY")
KIND_MODELS = [
    m for m in os.environ.get("PORTCULLIS_GATEWAY_KIND_MODELS", "").split(",") if m
]

pytestmark = pytest.mark.skipif(
    not (ROOT and KEY), reason="PORTCULLIS_GATEWAY_ROOT / PORTCULLIS_GATEWAY_KEY not set"
)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


def kind_models():
    """The models to run the per-kind tests on: a visible failure when none were passed."""
    return KIND_MODELS or ["<PORTCULLIS_GATEWAY_KIND_MODELS not set>"]


def make_client(key=None, bearer=False):
    """A client sending `x-api-key` (the SDK's default) or, with bearer, `Authorization`."""
    key = key or KEY
    if bearer:
        return anthropic.Anthropic(base_url=ROOT, auth_token=key, max_retries=0, timeout=30)
    return anthropic.Anthropic(base_url=ROOT, api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client():
    return make_client()


def assert_text_message(msg, text):
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.id
    assert msg.model
    assert len(msg.content) == 1, msg.content
    assert msg.content[0].type == "text"
    assert msg.content[0].text == text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0
    assert msg.usage.output_tokens > 0


def assert_tool_use_message(msg):
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.stop_reason == "tool_use"
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert len(uses) == 1, msg.content
    assert uses[0].id
    assert uses[0].name == "get_weather"
    assert uses[0].input == {"location": "Paris"}
    assert msg.usage.input_tokens > 0


# ---------------------------------------------------------------- messages.create


@pytest.mark.parametrize("model", ["mock-echo"] + kind_models())
def test_create_text(client, model):
    msg = client.messages.create(
        model=model,
        max_tokens=64,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello from the anthropic sdk"}],
    )
    assert_text_message(msg, "echo: hello from the anthropic sdk")


@pytest.mark.parametrize("model", kind_models())
def test_create_multi_turn_blocks(client, model):
    msg = client.messages.create(
        model=model,
        max_tokens=64,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "first question"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
    )
    assert_text_message(msg, "echo: second question")


@pytest.mark.parametrize("model", kind_models())
def test_create_tool_use(client, model):
    msg = client.messages.create(
        model=model,
        max_tokens=128,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    assert_tool_use_message(msg)


@pytest.mark.parametrize("model", kind_models())
def test_create_tool_result_round_trip(client, model):
    # The mock echoes the last user turn's text. Anthropic and Bedrock keep the tool result
    # and the text in that one turn (the mock echoes both); OpenAI-shaped and Gemini upstreams
    # get the tool result as its own turn. sdk_python.rs checks every upstream received it.
    msg = client.messages.create(
        model=model,
        max_tokens=128,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C and sunny"},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
    )
    both = model in ("m-anthropic", "m-bedrock")
    assert_text_message(msg, "echo: 18C and sunny thanks" if both else "echo: thanks")


# ---------------------------------------------------------------- messages.stream


@pytest.mark.parametrize("model", ["mock-echo"] + kind_models())
def test_stream_text(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=64,
        messages=[{"role": "user", "content": "one two three four"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: one two three four"
    assert_text_message(final, "echo: one two three four")


@pytest.mark.parametrize("model", kind_models())
def test_stream_tool_use(client, model):
    partial = []
    with client.messages.stream(
        model=model,
        max_tokens=128,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather in Paris please"}],
    ) as stream:
        for event in stream:
            if event.type == "input_json":
                partial.append(event.partial_json)
        final = stream.get_final_message()
    assert_tool_use_message(final)
    assert json.loads("".join(partial)) == {"location": "Paris"}


@pytest.mark.parametrize("model", kind_models())
def test_stream_raw_event_sequence(client, model):
    # messages.create(stream=True) yields the raw events (the SDK drops `ping`).
    stream = client.messages.create(
        model=model,
        max_tokens=64,
        stream=True,
        messages=[{"role": "user", "content": "count the events"}],
    )
    types = [event.type for event in stream]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    body = types[1:-2]
    assert body[0] == "content_block_start"
    assert body[-1] == "content_block_stop"
    assert set(body[1:-1]) == {"content_block_delta"}


# ---------------------------------------------------------------- auth and errors


def test_bearer_auth_token(client):
    model = kind_models()[0]
    msg = make_client(bearer=True).messages.create(
        model=model,
        max_tokens=32,
        messages=[{"role": "user", "content": "bearer works"}],
    )
    assert msg.content[0].text == "echo: bearer works"


def test_bearer_auth_token_stream():
    with make_client(bearer=True).messages.stream(
        model="mock-echo",
        max_tokens=32,
        messages=[{"role": "user", "content": "bearer streams"}],
    ) as stream:
        assert "".join(stream.text_stream) == "echo: bearer streams"


@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
def test_bad_key_is_authentication_error(bearer):
    bad = make_client("pcl_not_a_valid_key_0000000000000000", bearer=bearer)
    with pytest.raises(anthropic.AuthenticationError) as err:
        bad.messages.create(
            model="mock-echo", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 401
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "authentication_error"


def test_unknown_model_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(
            model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 404
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "not_found_error"


def test_unknown_model_stream_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError):
        with client.messages.stream(
            model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            stream.get_final_message()


def test_bad_request_is_bad_request_error(client):
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model="mock-echo", max_tokens=16, messages=[])
    assert err.value.status_code == 400
    assert err.value.body["error"]["type"] == "invalid_request_error"


def test_upstream_503_is_server_error(client):
    with pytest.raises(anthropic.APIStatusError) as err:
        client.messages.create(
            model="upstream-503", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code >= 500
    assert err.value.body["type"] == "error"


def test_mid_stream_drop_raises_api_error(client):
    received = []
    with pytest.raises(anthropic.APIError):
        with client.messages.stream(
            model="upstream-drop",
            max_tokens=64,
            messages=[{"role": "user", "content": "one two three four five six"}],
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    assert "".join(received) != "echo: one two three four five six"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("model", kind_models())
def test_upstream_429_is_rate_limit_error(client, model, stream):
    with pytest.raises(anthropic.RateLimitError) as err:
        client.messages.create(
            model=f"{model}-429",
            max_tokens=16,
            stream=stream,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "7"
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("model", kind_models())
def test_upstream_auth_failure_does_not_blame_the_client_key(client, model):
    with pytest.raises(anthropic.APIStatusError) as err:
        client.messages.create(
            model=f"{model}-401", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert not isinstance(
        err.value, (anthropic.AuthenticationError, anthropic.PermissionDeniedError)
    )
    assert err.value.status_code == 502
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] != "authentication_error"


@pytest.mark.parametrize("model", kind_models())
def test_error_after_stream_start_raises(client, model):
    received = []
    with pytest.raises(anthropic.APIError):
        with client.messages.stream(
            model=f"{model}-err",
            max_tokens=64,
            messages=[{"role": "user", "content": "one two three four five six"}],
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    assert "".join(received) != "echo: one two three four five six"
