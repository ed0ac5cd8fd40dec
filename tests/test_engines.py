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
from types import SimpleNamespace

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


# --- clsbench_vllm: our logic on vLLM's API, against a stand-in for the engine object (vLLM needs a GPU) ---


class StandInLLM:
    """What ``vllm.LLM.generate`` returns for our requests, computed with the same tiny HF model.

    It follows vLLM's documented semantics, not its code: text prompts with image placeholders expanded by
    the model's processor; ``prompt_logprobs`` (the actual token's log-prob and rank per prompt position,
    None at 0); one greedy step restricted to ``allowed_token_ids`` whose ``logprobs`` are the unrestricted
    (raw) ones; greedy ``max_tokens`` generation cut at ``stop``. It records every request it gets.
    """

    def __init__(self, model_dir):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
        self.requests: list[tuple[dict, object]] = []

    def generate(self, requests, params, use_tqdm=False):
        import torch

        outputs = []
        for request, param in zip(requests, params):
            self.requests.append((request, param))
            image = request.get("multi_modal_data", {}).get("image")
            inputs = self.processor(
                text=[request["prompt"]], images=[image] if image is not None else None, return_tensors="pt"
            )
            ids = inputs["input_ids"][0].tolist()
            with torch.inference_mode():
                logits = self.model(**inputs).logits[0].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            prompt_logprobs = None
            if getattr(param, "prompt_logprobs", None) is not None:
                prompt_logprobs = [None] + [
                    {
                        ids[i]: SimpleLogprob(
                            float(logprobs[i - 1, ids[i]]), 1 + int((logprobs[i - 1] > logprobs[i - 1, ids[i]]).sum())
                        )
                    }
                    for i in range(1, len(ids))
                ]
            last = logprobs[-1]
            if param.max_tokens == 1:
                allowed = getattr(param, "allowed_token_ids", None)
                candidates = torch.tensor(allowed) if allowed else torch.arange(last.numel())
                token = int(candidates[last[candidates].argmax()])
                top = {}
                if getattr(param, "logprobs", None):
                    values, indices = last.topk(param.logprobs)
                    top = {int(i): SimpleLogprob(float(v), r + 1) for r, (v, i) in enumerate(zip(values, indices))}
                    top.setdefault(token, SimpleLogprob(float(last[token]), 1 + int((last > last[token]).sum())))
                tokens, text, sample_logprobs = [token], self.processor.tokenizer.decode([token]), [top]
            else:
                with torch.inference_mode():
                    generated = self.model.generate(**inputs, max_new_tokens=param.max_tokens, do_sample=False)
                tokens = generated[0, len(ids) :].tolist()
                text = self.processor.tokenizer.decode(tokens, skip_special_tokens=True)
                for stop in param.stop or ():
                    text = text.split(stop, 1)[0]
                sample_logprobs = None
            completion = SimpleNamespace(text=text, token_ids=tokens, logprobs=sample_logprobs)
            outputs.append(SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=prompt_logprobs, outputs=[completion]))
        return outputs


class SimpleLogprob:
    def __init__(self, logprob: float, rank: int) -> None:
        self.logprob, self.rank = logprob, rank


@pytest.fixture()
def vllm_model(tiny_llava, monkeypatch, tmp_path):
    from clsbench.models.lmms.vllm import ClsbenchVLLM

    monkeypatch.setattr(
        ClsbenchVLLM,
        "sampling",
        staticmethod(
            lambda **settings: SimpleNamespace(
                **{"stop": None, "logprobs": None, "prompt_logprobs": None, "allowed_token_ids": None, **settings}
            )
        ),
    )

    def make(mode: str, **settings):
        return ClsbenchVLLM(
            pretrained=str(tiny_llava),
            mode=mode,
            engine=StandInLLM(tiny_llava),
            log_dir=str(tmp_path / "logs"),
            **settings,
        )

    return make


@pytest.mark.parametrize(
    "mode,settings", [("score", {}), ("loglik", {}), ("loglik", {"loglik_norm": "mean", "cfg_weight": 1.0})]
)
def test_clsbench_vllm_gives_clsbench_hfs_letters(vllm_model, tiny_llava, fixture_root, mode, settings):
    """The same questions through lmms-eval with clsbench_vllm (on the stand-in) and clsbench_hf: same letters."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    tasks = ["cls_logo_mcq"]
    theirs = vllm_model(mode, **settings)
    ours = ClsbenchHF(pretrained=str(tiny_llava), mode=mode, log_dir="none", answer_store="none", **settings)
    letters = []
    for model in (theirs, ours):
        output = simple_evaluate(model=model, tasks=tasks, task_manager=manager, batch_size=4, log_samples=True)
        letters.append({s["doc_id"]: s["resps"][0][0] for s in output["samples"]["cls_logo_mcq"]})
    assert letters[0] == letters[1] and len(letters[0]) == 6
    requests = theirs.engine.requests
    if mode == "score":  # one restricted step per question: every spelling of A..J, nothing else
        allowed = {token for letter in "ABCDEFGHIJ" for token in theirs.letter_ids[letter]}
        assert all(set(param.allowed_token_ids) == allowed and param.max_tokens == 1 for _, param in requests)
    else:  # one request per option, all sharing the rendered prefix (what vLLM's prefix cache reuses)
        per_question = 10 * (2 if settings.get("cfg_weight") else 1)
        assert len(requests) == 6 * per_question and all(param.prompt_logprobs == 0 for _, param in requests)
        first = [request["prompt"] for request, _ in requests[:10]]
        prefix = first[0][: -len(first[0].rsplit("ASSISTANT:", 1)[-1])] if "ASSISTANT:" in first[0] else None
        assert prefix is None or all(prompt.startswith(prefix) for prompt in first)


def test_clsbench_vllm_generate_mode_replies_as_the_engine_generates(vllm_model, fixture_root):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    model = vllm_model("generate")
    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    output = simple_evaluate(model=model, tasks=["cls_logo_mcq"], task_manager=manager, batch_size=4)
    assert 0.0 <= output["results"]["cls_logo_mcq"]["accuracy,none"] <= 1.0
    assert all(param.temperature == 0.0 and param.max_tokens == 16 for _, param in model.engine.requests)
