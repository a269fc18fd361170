#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets from the project's fixtures (fixtures/**),
the README configuration example and the configuration tests' YAML documents.

    python3 fuzz/seed_corpus.py          # from the workspace root, or anywhere

Output: fuzz/corpus/<target>/seed-* (gitignored; libFuzzer adds what it finds next to them).
"""

import hashlib
import json
import re
import struct
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
FIXTURES = ROOT / "fixtures"
CORPUS = FUZZ / "corpus"


def write(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def files(pattern):
    return sorted(FIXTURES.glob(pattern))


# --- AWS event-stream encoding (same framing as aws::eventstream::Message::encode) -------
def string_header(name, value):
    n, v = name.encode(), value.encode()
    return bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v


def headers_of(message):
    return b"".join(string_header(k, v) for k, v in message.items() if k.startswith(":"))


def payload_of(message):
    return json.dumps(message.get("payload", {}), separators=(",", ":")).encode()


def frame(headers, payload):
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def bedrock_messages():
    for path in files("bedrock/*.events.json"):
        yield json.loads(path.read_text())


def main():
    # sse_splitter: two bytes choosing the cut, then an SSE stream.
    for path in files("**/*.sse"):
        body = path.read_bytes()
        for cut in (0, len(body) // 3, len(body) // 2):
            write("sse_splitter", struct.pack("<H", cut) + body)
    write("sse_splitter", b"\x05\x00data: a\r\n\r\ndata: b\r\rdata: c\n\n: x\r\n")

    # bedrock_eventstream: mode byte (bit 0: raw/structured, rest: chunk size), then bytes.
    for messages in bedrock_messages():
        raw = b"".join(frame(headers_of(m), payload_of(m)) for m in messages)
        for mode in (0x00, 0x0e, 0xfe):
            write("bedrock_eventstream", bytes([mode]) + raw)
        structured = b""
        for m in messages:
            h, p = headers_of(m), payload_of(m)
            if len(h) < 256 and len(p) < 65536:
                structured += bytes([len(h)]) + h + struct.pack(">H", len(p)) + p
        write("bedrock_eventstream", b"\x01" + structured)
        write("bedrock_eventstream", b"\x01" + structured[: len(structured) // 2])

    # Request parsers: client bodies.
    for path in files("openai/request_*.json") + files("bedrock/openai_request_*.json"):
        write("openai_request", path.read_bytes())
    for path in files("anthropic/request_*.json") + files("bedrock/anthropic_request_*.json"):
        write("anthropic_request", path.read_bytes())
    for path in files("gemini/request_*.json"):
        write("gemini_request", path.read_bytes())

    # responses: selector byte (0..3 parse_response, 4..7 stream decoders; +8 include_usage).
    for sel, provider in enumerate(("openai", "anthropic", "gemini", "bedrock")):
        for path in files(f"{provider}/response_*.json"):
            write("responses", bytes([sel]) + path.read_bytes())
        for path in files(f"{provider}/stream_*.sse"):
            write("responses", bytes([sel + 4]) + path.read_bytes())
            write("responses", bytes([sel + 12]) + path.read_bytes())
    for messages in bedrock_messages():
        sse = b""
        for m in messages:
            if m.get(":message-type") == "exception":
                name = "!" + m.get(":exception-type", "")
            else:
                name = m.get(":event-type", "")
            sse += b"event: " + name.encode() + b"\ndata: " + payload_of(m) + b"\n\n"
        write("responses", b"\x07" + sse)
        write("responses", b"\x0f" + sse)

    # config_yaml: the README example and the YAML documents of the config tests.
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", readme, re.S):
        write("config_yaml", block)
    for path in sorted((ROOT / "crates/portcullis-config").rglob("*.rs")):
        for doc in re.findall(r'r#"(.*?)"#', path.read_text(), re.S):
            if re.search(r"^\s*(server|store|providers|models):", doc, re.M):
                write("config_yaml", doc)
    write("config_yaml", "")

    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {sum(1 for _ in d.glob('seed-*'))} seeds")


if __name__ == "__main__":
    main()
