"""Remote-ASR helpers shared by tests/test_asr_openai.py and the benchmarks: a small, randomly
initialised offline Paraformer model directory (funasr's own classes and the ``paraformer-zh``
architecture, shrunk: the real weights cannot be downloaded here) and a real ``funasr-server``
process serving it on a free local port. Protocol and flow, not accuracy."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# paraformer-zh's architecture (SANM encoder, SANM decoder, CIF predictor, LFR fbank frontend), shrunk:
# 2 blocks of width 64 instead of 50/16 of 512, so that a server loads it in well under a second.
# ``streaming=True``: paraformer-zh-streaming's (SANM chunk encoder, online frontend), same sizes.
def paraformer_config(streaming: bool = False) -> dict:
    encoder_conf = {"output_size": 64, "attention_heads": 2, "linear_units": 128, "num_blocks": 2,
                    "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.1,
                    "input_layer": "pe", "pos_enc_class": "SinusoidalPositionEncoder",
                    "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
                    "selfattention_layer_type": "sanm"}
    if streaming:
        encoder_conf.update({"input_layer": "pe_online", "chunk_size": [12, 15], "stride": [8, 10],
                             "pad_left": [0, 0], "encoder_att_look_back_factor": [4, 4],
                             "decoder_att_look_back_factor": [1, 1]})
    return {
        "model": "ParaformerStreaming" if streaming else "Paraformer",
        "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True,
                       "predictor_weight": 1.0, "predictor_bias": 1, "sampling_ratio": 0.75},
        "encoder": "SANMEncoderChunkOpt" if streaming else "SANMEncoder",
        "encoder_conf": encoder_conf,
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {"attention_heads": 2, "linear_units": 128, "num_blocks": 2, "dropout_rate": 0.1,
                         "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.1,
                         "src_attention_dropout_rate": 0.1, "att_layer_num": 2, "kernel_size": 11,
                         "sanm_shfit": 5 if streaming else 0},
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": 64, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontendOnline" if streaming else "WavFrontend",
        "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25,
                          "frame_shift": 10, "lfr_m": 7, "lfr_n": 6, "dither": 0.0},
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }


# a tiny vocabulary; the random model emits some of these characters
TOKENS = ["<blank>", "<s>", "</s>"] + list("面试官您好我叫李明的是说完了数据库缓存") + ["<unk>"]


def build_model_dir(target: Path, streaming: bool = False, tokens: list[str] = TOKENS, seed: int = 0) -> Path:
    """Write config.yaml, tokens.json and model.pt (random weights) into ``target``."""
    import torch
    import yaml
    import funasr.models  # noqa: F401  (registers the classes)
    from funasr.register import tables
    config = paraformer_config(streaming)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (target / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    cls = tables.model_classes.get(config["model"])
    torch.manual_seed(seed)
    model = cls(**config["model_conf"], encoder=config["encoder"], encoder_conf=config["encoder_conf"],
                decoder=config["decoder"], decoder_conf=config["decoder_conf"],
                predictor=config["predictor"], predictor_conf=config["predictor_conf"],
                input_size=80 * 7, vocab_size=len(tokens))
    torch.save(model.state_dict(), target / "model.pt")
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def funasr_server_command(model_dir: Path, port: int) -> list[str]:
    exe = Path(sys.executable).with_name("funasr-server")
    return [str(exe), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
            "--model-path", str(model_dir)]


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float = 120.0) -> None:
    """Until ``url`` answers 200 (or the process died / ``timeout`` passed: RuntimeError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout:g} s")


def start_funasr_server(model_dir: Path, log_path: Path, port: int | None = None,
                        threads: int = 1) -> tuple[subprocess.Popen, str]:
    """A real funasr-server process serving ``model_dir``; returns (process, base_url .../v1)."""
    port = port or free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "MODELSCOPE_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    log = open(log_path, "wb")
    proc = subprocess.Popen(funasr_server_command(model_dir, port), stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=str(ROOT))
    log.close()
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc)
    except Exception:
        stop(proc)
        raise RuntimeError(f"funasr-server did not start; its output: {Path(log_path).read_text(errors='replace')[-3000:]}")
    return proc, f"http://127.0.0.1:{port}/v1"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class ThreadedAiohttp:
    """An aiohttp app on 127.0.0.1 (a free port) served by its own thread and event loop, for fakes
    of remote servers; ``add_routes(router)`` adds the routes. ``close()`` stops it."""

    def __init__(self, add_routes) -> None:
        import asyncio
        import threading
        self.port = free_port()
        self._add_routes = add_routes
        self._ready = threading.Event()
        self._loop: "asyncio.AbstractEventLoop | None" = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _main(self) -> None:
        import asyncio
        from aiohttp import web
        self._loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=50 * 1024 * 1024)
        self._add_routes(app.router)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        import asyncio
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

