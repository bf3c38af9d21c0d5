"""FSMN-VAD without FunASR's per-call machinery: the same model and the same decisions, in numpy.

FunASR's streaming ``generate()`` spends ~1.7 ms per 200 ms chunk of one stream (``bench/bench_vad.py``),
and a fifth of that is the network's arithmetic: the rest is per-call set-up (deep copies of its runtime config), a Kaldi
fbank call per chunk, a few hundred small torch calls and a per-frame state machine that also
copies the audio into output buffers nobody here reads. This module keeps what decides the
segments and drops the rest:

* **Features** — Kaldi-style 80-bin log-mel fbank (25 ms Hamming window, 10 ms shift, DC removal,
  pre-emphasis 0.97, 512-point FFT, power spectrum, no dither), computed for all new frames of all
  streams of a call in one numpy pass; low frame rate splice (5 frames, shift 1, the first and last
  frames repeated at the edges) and the model's CMVN (``am.mvn``).
* **Network** — the FSMN encoder (affine 400→140→250, ReLU, 4 FSMN layers of a 250→128 projection,
  a 20-tap left memory per channel with a residual and a 128→250 affine + ReLU, then 250→140→248,
  softmax), weights read from the model directory's ``model.pt``; only the silence posterior is
  kept. Each stream carries its 19-frame memory per layer; frames of many streams go through the
  dense layers as one matrix.
* **Endpointing** — the rules of FunASR's ``FsmnVADStreaming`` (its ``config.yaml`` options: a frame
  is speech when P(speech) ≥ P(silence) + ``speech_noise_thres``; a 200 ms window turns to speech at
  150 ms of speech frames and back at 150 ms or less; a segment starts ``window + lookback`` frames
  before it is confirmed, never before the previous segment's end, ends after
  ``max_end_silence_time`` of silence with ``lookahead`` frames kept, and is cut at
  ``max_single_segment_time``), reduced to the segment boundaries: no audio is copied.

``tests/test_vad_fsmn_lean.py`` runs both engines over every shared clip (and degraded variants)
and requires the same segments.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FRAME_SHIFT = 160          # 10 ms at 16 kHz
FRAME_LEN = 400            # 25 ms
FFT_LEN = 512
LFR_M = 5                  # frames spliced per model input
LFR_HALF = (LFR_M - 1) // 2


class LeanSetupError(RuntimeError):
    pass


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_banks(n_mels: int = 80, fs: int = 16000, low: float = 20.0, high: float = 0.0) -> np.ndarray:
    """Kaldi's triangular mel filters over the first FFT_LEN/2 bins: (FFT_LEN // 2, n_mels)."""
    nyquist = fs / 2.0
    high = nyquist + high if high <= 0 else high
    mel_low, mel_high = _mel(low), _mel(high)
    delta = (mel_high - mel_low) / (n_mels + 1)
    bins = _mel(np.arange(FFT_LEN // 2) * (fs / FFT_LEN))
    left = mel_low + np.arange(n_mels) * delta
    center, right = left + delta, left + 2 * delta
    m = bins[:, None]
    up = (m - left) / (center - left)
    down = (right - m) / (right - center)
    w = np.where(m <= center, up, down)
    w[(m <= left) | (m >= right)] = 0.0
    return w.astype(np.float32)


def _parse_mvn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``<AddShift>`` and ``<Rescale>`` vectors of a Kaldi nnet text file (FunASR's am.mvn)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: dict[str, np.ndarray] = {}
    for i, line in enumerate(lines[:-1]):
        head = line.split()[:1]
        if head and head[0] in ("<AddShift>", "<Rescale>"):
            items = lines[i + 1].split()
            if items[:1] == ["<LearnRateCoef>"]:
                found[head[0]] = np.array(items[3:-1], dtype=np.float32)
    if set(found) != {"<AddShift>", "<Rescale>"}:
        raise LeanSetupError(f"{path}: no <AddShift>/<Rescale> vectors")
    return found["<AddShift>"], found["<Rescale>"]


@dataclass
class Options:
    """The endpointing options of the model's config.yaml (``model_conf``), in 10 ms frames."""
    max_end_silence_time: int = 800
    window_size_ms: int = 200
    sil_to_speech_time_thres: int = 150
    speech_to_sil_time_thres: int = 150
    speech_2_noise_ratio: float = 1.0
    do_extend: int = 1
    lookback_time_start_point: int = 200
    lookahead_time_end_point: int = 100
    max_single_segment_time: int = 60000
    snr_thres: float = -100.0
    noise_frame_num_used_for_snr: int = 100
    decibel_thres: float = -100.0
    speech_noise_thres: float = 0.6
    sil_pdf_ids: list = field(default_factory=lambda: [0])
    detect_mode: int = 1
    frame_in_ms: int = 10


class LeanFsmnModel:
    """Weights, features and options of one FSMN-VAD model directory (shared by all streams)."""

    def __init__(self, model_dir: Path, max_end_silence_time: int) -> None:
        import yaml
        model_dir = Path(model_dir)
        try:
            conf = yaml.safe_load((model_dir / "config.yaml").read_text(encoding="utf-8"))
        except OSError as exc:
            raise LeanSetupError(f"{model_dir}: no config.yaml ({exc})") from exc
        fe, enc, mc = conf.get("frontend_conf", {}), conf.get("encoder_conf", {}), conf.get("model_conf", {})
        wanted = {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10,
                  "lfr_m": LFR_M, "lfr_n": 1}
        odd = {k: fe.get(k) for k, v in wanted.items() if fe.get(k, v) != v}
        if float(fe.get("dither", 0.0)) != 0.0:
            odd["dither"] = fe.get("dither")
        if conf.get("encoder") != "FSMN" or enc.get("rorder", 0) != 0 or enc.get("lstride", 1) != 1:
            odd["encoder"] = (conf.get("encoder"), enc.get("rorder"), enc.get("lstride"))
        if mc.get("detect_mode", 1) != 1 or mc.get("snr_mode", 0) != 0 or len(mc.get("sil_pdf_ids", [0])) != 1:
            odd["model_conf"] = {k: mc.get(k) for k in ("detect_mode", "snr_mode", "sil_pdf_ids")}
        if odd:
            raise LeanSetupError(f"{model_dir}: a configuration the lean engine does not implement ({odd}); "
                                 "use [plugins.fsmn] engine = \"funasr\"")
        known = set(Options.__dataclass_fields__)
        self.opts = Options(**{k: v for k, v in mc.items() if k in known})
        self.opts.max_end_silence_time = int(max_end_silence_time)
        self.shift, self.scale = _parse_mvn(model_dir / "am.mvn")
        self.banks = mel_banks(int(fe.get("n_mels", 80)))
        n = np.arange(FRAME_LEN)
        self.window = (0.54 - 0.46 * np.cos(2 * np.pi * n / (FRAME_LEN - 1))).astype(np.float32)
        self.layers = self._load_weights(model_dir / "model.pt", int(enc.get("fsmn_layers", 4)))
        self.lorder = int(enc.get("lorder", 20))
        self.sil_id = int(self.opts.sil_pdf_ids[0])

    @staticmethod
    def _load_weights(path: Path, n_layers: int) -> dict:
        import torch
        sd = torch.load(str(path), map_location="cpu", weights_only=True)

        def get(name):
            key = "encoder." + name
            if key not in sd:
                raise LeanSetupError(f"{path}: weight {key} missing")
            return sd[key].detach().numpy().astype(np.float32)

        w = {"in1": (get("in_linear1.linear.weight").T.copy(), get("in_linear1.linear.bias")),
             "in2": (get("in_linear2.linear.weight").T.copy(), get("in_linear2.linear.bias")),
             "out1": (get("out_linear1.linear.weight").T.copy(), get("out_linear1.linear.bias")),
             "out2": (get("out_linear2.linear.weight").T.copy(), get("out_linear2.linear.bias")),
             "fsmn": []}
        for i in range(n_layers):
            conv = get(f"fsmn.{i}.fsmn_block.conv_left.weight")        # (proj, 1, lorder, 1)
            w["fsmn"].append((get(f"fsmn.{i}.linear.linear.weight").T.copy(),
                              conv[:, 0, :, 0].T.copy(),                    # (lorder, proj)
                              get(f"fsmn.{i}.affine.linear.weight").T.copy(),
                              get(f"fsmn.{i}.affine.linear.bias")))
        return w

    # --- features ---------------------------------------------------------------------------------------
    def fbank(self, frames: np.ndarray) -> np.ndarray:
        """(n, 400) int16-scale samples -> (n, 80) log-mel energies."""
        x = frames - frames.mean(axis=1, keepdims=True)
        x[:, 1:] -= 0.97 * x[:, :-1].copy()
        x[:, 0] *= 1.0 - 0.97
        x *= self.window
        spec = np.fft.rfft(x, n=FFT_LEN, axis=1)[:, : FFT_LEN // 2]
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        return np.log(np.maximum(power @ self.banks, np.finfo(np.float32).eps))

    # --- the network --------------------------------------------------------------------------------------
    def silence_posteriors(self, feats: np.ndarray, groups: list[tuple[list, int]]) -> np.ndarray:
        """P(silence) of every row of ``feats`` (CMVN'd LFR features of several streams, stream after
        stream). ``groups``: (the streams' memory lists, rows per stream) for runs of streams with the
        same number of rows, in row order; each stream's memories are updated in place."""
        w = self.layers
        h = feats @ w["in1"][0] + w["in1"][1]
        h = np.maximum(h @ w["in2"][0] + w["in2"][1], 0.0)
        keep = self.lorder - 1
        for li, (proj, taps, aff, aff_b) in enumerate(w["fsmn"]):
            p = h @ proj
            out = np.empty_like(p)
            row = 0
            for memories, t in groups:
                s = len(memories)
                block = p[row: row + s * t].reshape(s, t, -1)
                padded = np.concatenate([np.stack([m[li] for m in memories]), block], axis=1)
                windows = np.lib.stride_tricks.sliding_window_view(padded, self.lorder, axis=1)[:, :t]
                acc = block + np.einsum("stck,kc->stc", windows, taps)
                out[row: row + s * t] = acc.reshape(s * t, -1)
                for m, tail in zip(memories, padded[:, -keep:]):
                    m[li] = tail.copy()
                row += s * t
            h = np.maximum(out @ aff + aff_b, 0.0)
        h = h @ w["out1"][0] + w["out1"][1]
        logits = h @ w["out2"][0] + w["out2"][1]
        top = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - top)
        return (e[:, self.sil_id] / e.sum(axis=1)).astype(np.float64)


class Endpointer:
    """FunASR FSMN-VAD's segment rules for one stream, on per-frame P(silence) and level."""

    NOT_STARTED, IN_SPEECH = 1, 2

    def __init__(self, o: Options) -> None:
        self.o = o
        f = o.frame_in_ms
        self.win = int(o.window_size_ms / f)
        self.to_speech = int(o.sil_to_speech_time_thres / f)
        self.to_sil = int(o.speech_to_sil_time_thres / f)
        self.start_latency = self.win + (int(o.lookback_time_start_point / f) if o.do_extend else 0)
        self.end_sil_ms = o.max_end_silence_time - o.speech_to_sil_time_thres
        self.lookahead = int(o.lookahead_time_end_point / f)
        self.max_frames = o.max_single_segment_time / f
        self.noise_db = -100.0
        self.buf_start = 0           # first frame not yet handed out (FunASR's data_buf_start_frame)
        self.ends = 0                # segment ends so far (fake ones included)
        self._reset()

    def _reset(self) -> None:
        self.ring = [0] * self.win
        self.ring_sum = 0
        self.ring_pos = 0
        self.speechy = False         # the window's state
        self.state = self.NOT_STARTED
        self.sil_run = 0
        self.latest_speech = 0
        self.last_sil = -1
        self.seg_start = -1

    def _frame_is_speech(self, p_sil: float, db: float) -> bool:
        o = self.o
        if db < o.decibel_thres:
            return False
        noise = math.log(p_sil) * o.speech_2_noise_ratio if p_sil > 0 else -math.inf
        speech = math.log(1.0 - p_sil) if p_sil < 1 else -math.inf
        if math.exp(speech) >= math.exp(noise) + o.speech_noise_thres:
            return db - self.noise_db >= o.snr_thres
        n = o.noise_frame_num_used_for_snr
        self.noise_db = db if self.noise_db < -99.9 else (db + self.noise_db * (n - 1)) / n
        return False

    def _voice(self, t: int) -> None:
        self.latest_speech = t
        self.buf_start = max(self.buf_start, t) + 1

    def _end(self, t: int, out: list) -> None:
        if t - 1 > self.latest_speech:
            self._voice(t - 1)
        self.buf_start = max(self.buf_start, t) + 1
        self.ends += 1
        out.append(("end", (t + 1) * self.o.frame_in_ms))
        self._reset()

    def step(self, t: int, p_sil: float, db: float, last: bool, out: list) -> None:
        """Frame ``t`` (``last``: the stream's final frame); segment boundaries (ms) go to ``out``."""
        v = 1 if self._frame_is_speech(p_sil, db) else 0
        pos = self.ring_pos
        self.ring_sum += v - self.ring[pos]
        self.ring[pos] = v
        self.ring_pos = (pos + 1) % self.win
        if not self.speechy and self.ring_sum >= self.to_speech:
            self.speechy, change = True, "sil2speech"
        elif self.speechy and self.ring_sum <= self.to_sil:
            self.speechy, change = False, "speech2sil"
        else:
            change = "speech" if self.speechy else "sil"
        if change == "sil2speech" and self.state == self.NOT_STARTED:
            self.sil_run = 0
            start = max(self.buf_start, t - self.start_latency)
            self.seg_start = start
            self.buf_start = max(self.buf_start, start) + 1
            self.state = self.IN_SPEECH
            out.append(("start", start * self.o.frame_in_ms))
            if t > start:
                self._voice(t)
            return
        if change != "sil":
            self.sil_run = 0
            if self.state != self.IN_SPEECH:
                return
            if change == "sil2speech" and t - 1 > self.latest_speech:
                self._voice(t - 1)
            if t - self.seg_start + 1 > self.max_frames or last:
                self._end(t, out)
            else:
                self._voice(t)
            return
        self.sil_run += 1
        if self.state == self.NOT_STARTED:
            if last and self.ends == 0:
                # FunASR closes an utterance-less stream with an empty (unreported) segment
                if t - 1 > self.last_sil:
                    self.buf_start = max(self.buf_start, t - 1)
                self.ends += 1
                self._reset()
            elif t >= self.start_latency:
                self.last_sil = t - self.start_latency
                self.buf_start = max(self.buf_start, self.last_sil)
            return
        if self.sil_run * self.o.frame_in_ms >= self.end_sil_ms:
            back = int(self.end_sil_ms / self.o.frame_in_ms)
            if self.o.do_extend:
                back = max(0, back - self.lookahead - 1)
            self._end(t - back, out)
        elif t - self.seg_start + 1 > self.max_frames:
            self._end(t, out)
        elif self.o.do_extend and not last:
            if self.sil_run <= self.lookahead:
                self._voice(t)
        elif last:
            self._end(t, out)


class LeanStream:
    """One stream's features, network memory and endpointer."""

    def __init__(self, model: LeanFsmnModel) -> None:
        self.samples = np.zeros(0, np.float32)      # from the next fbank frame's first sample on
        self.fbank_rows = np.zeros((0, model.banks.shape[1]), np.float32)   # fbank frames from ``row0`` on
        self.row0 = 0
        self.n_fbank = 0
        self.n_out = 0                               # model frames done
        self.levels: list[float] = []                # frame level (dB) of fbank frames from n_out on
        self.memories = [np.zeros((model.lorder - 1, model.layers["fsmn"][0][0].shape[1]), np.float32)
                         for _ in model.layers["fsmn"]]
        self.ep = Endpointer(model.opts)


def run(model: LeanFsmnModel, items: list[tuple[LeanStream, np.ndarray, bool]]) -> list[list[tuple[str, int]]]:
    """Feed each ``(stream, int16 audio, is_final)``; returns each stream's segment boundaries
    (``("start"|"end", ms)``). All streams' new frames go through the features and the network
    together."""
    frames, lfr, plan = [], [], []
    for stream, audio, final in items:
        x = np.concatenate([stream.samples, np.asarray(audio, dtype=np.float32)])
        n = (len(x) - FRAME_LEN) // FRAME_SHIFT + 1 if len(x) >= FRAME_LEN else 0
        if n:
            view = np.lib.stride_tricks.sliding_window_view(x, FRAME_LEN)[::FRAME_SHIFT][:n]
            frames.append(view)
        stream.samples = x[n * FRAME_SHIFT:]
        plan.append((stream, n, final))
    if frames:
        allf = np.concatenate(frames)               # float32 (samples are kept as float32)
        fb = model.fbank(allf)                      # reads allf, does not change it
        scaled = allf / 32768.0
        db = 10.0 * np.log10(np.einsum("ij,ij->i", scaled, scaled).astype(np.float64) + 1e-6)
    row = 0
    emits = []
    for stream, n, final in plan:
        if n:
            stream.fbank_rows = np.concatenate([stream.fbank_rows, fb[row: row + n]])
            stream.levels.extend(db[row: row + n].tolist())
            stream.n_fbank += n
            row += n
        # model frame j splices fbank frames j-2..j+2 (edges repeated); it waits for j+2 unless final
        end = stream.n_fbank if final else max(stream.n_fbank - LFR_HALF, stream.n_out)
        count = end - stream.n_out
        if count > 0:
            j = np.arange(stream.n_out, end)[:, None] + np.arange(-LFR_HALF, LFR_HALF + 1)
            idx = np.clip(j, 0, stream.n_fbank - 1) - stream.row0
            lfr.append(stream.fbank_rows[idx].reshape(count, -1))
        emits.append((stream, count, final))
    results: list[list[tuple[str, int]]] = []
    if lfr:
        feats = (np.concatenate(lfr) + model.shift) * model.scale
        groups: list[tuple[list, int]] = []
        for stream, count, _ in emits:
            if count > 0:
                if groups and groups[-1][1] == count:
                    groups[-1][0].append(stream.memories)
                else:
                    groups.append(([stream.memories], count))
        p_sil = model.silence_posteriors(feats, groups).tolist()
    row = 0
    for stream, count, final in emits:
        out: list[tuple[str, int]] = []
        ep = stream.ep
        for k in range(count):
            t = stream.n_out + k
            ep.step(t, p_sil[row + k], stream.levels[k], final and k == count - 1, out)
        row += count
        if count > 0:
            stream.n_out += count
            del stream.levels[:count]
            # keep the fbank rows later frames still splice (and row 0's copy for the left edge)
            first_needed = max(stream.n_out - LFR_HALF, 0)
            drop = first_needed - stream.row0
            if drop > 0:
                stream.fbank_rows = stream.fbank_rows[drop:]
                stream.row0 = first_needed
        results.append(out)
    return results
