"""lmms-eval's own API models on our tasks: the ``openai`` chat model against a local stub server on 127.0.0.1.

The stub is an OpenAI-compatible chat-completions endpoint written here (a stand-in for vLLM's, SGLang's
or a provider's server); lmms-eval's real ``openai`` model, its real HTTP client and our real tasks
run unchanged. The stub answers a constant letter, so the score is exactly the share of questions
whose answer is that letter, and it records every request, so the prompt and image can be checked.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import add_questions, open_image
from clsbench.tasks.protocol.questions import format_prompt

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]


@pytest.fixture()
def stub_server():
    """An OpenAI-compatible ``/v1/chat/completions`` on 127.0.0.1 replying ``"A"``; yields (base_url, requests)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "body": body})
            reply = {
                "id": f"stub-{len(received)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    server.shutdown()


def test_lmms_evals_openai_model_runs_our_tasks_in_generate_mode(stub_server, fixture_root, tmp_path):
    base_url, received = stub_server
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "OPENAI_API_KEY": "stub",
    }
    run = subprocess.run(
        [
            *CLSBENCH,
            "lmms",
            "--data-dir",
            str(fixture_root),
            "--model",
            "openai",
            "--model_args",
            f"model_version=stub-vlm,base_url={base_url},max_retries=1",
            "--tasks",
            "cls_logo_mcq",
            "--output_path",
            str(tmp_path / "out"),
            "--log_samples",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    docs = add_questions(load_rows("logo", fixture_root), "logo")
    results = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())["results"]
    expected = sum(answer == "A" for answer in docs["answer"]) / len(docs)
    assert results["cls_logo_mcq"]["accuracy,none"] == pytest.approx(expected)
    assert results["cls_logo_mcq"]["unparseable_rate,none"] == 0.0
    # What the server saw: the paper's prompt and the sample's own pixels, one request per question.
    assert len(received) == len(docs) and all(r["path"] == "/v1/chat/completions" for r in received)
    prompts = {format_prompt(doc["question"], doc["options"]): doc for doc in docs}
    for request in received:
        (message,) = [m for m in request["body"]["messages"] if m["role"] == "user"]
        text = "".join(part["text"] for part in message["content"] if part["type"] == "text").strip()
        images = [part["image_url"]["url"] for part in message["content"] if part["type"] == "image_url"]
        doc = prompts[text]
        (url,) = images
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
        original = open_image(doc["image"], dataset="logo", sample_key=doc["sample_key"])
        assert sent.size == original.size
        assert request["body"]["model"] == "stub-vlm"
    assert set(prompts) == {
        "".join(p["text"] for p in m["content"] if p["type"] == "text").strip()
        for r in received
        for m in r["body"]["messages"]
        if m["role"] == "user"
    }


def test_the_stub_is_not_the_toolkit(stub_server):
    """The stand-in answers only what an OpenAI-compatible server would; lmms-eval does everything else."""
    import urllib.request

    base_url, received = stub_server
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["choices"][0]["message"]["content"] == "A"
    assert Path(received[0]["path"]).name == "completions"
