// AudioWorklet: microphone -> 16 kHz mono s16le, in frames of 640 samples (1 280 bytes, 40 ms).
//
// The context runs at the device rate (48 000 or 44 100 Hz usually). Each render quantum is
// down-mixed to mono and appended to a buffer. Output sample n sits at input position
// t = n * inRate / outRate, computed with integers (no accumulated floating-point drift: after N
// input samples exactly floor(N * outRate / inRate) outputs exist, give or take the filter's
// look-ahead). The value at t is the windowed-sinc low-passed input (cut-off below 8 kHz, so no
// aliasing) at floor(t) and floor(t)+1, linearly interpolated. Filled frames are posted to the
// main thread as transferable Int16Array buffers together with their index.

const TAPS = 127;              // odd: symmetric, centred kernel
const HALF = (TAPS - 1) / 2;

function designLowPass(cutoff) {
  // cutoff in cycles per input sample (0 < cutoff < 0.5); Blackman window, unity DC gain.
  const h = new Float32Array(TAPS);
  let sum = 0;
  for (let k = 0; k < TAPS; k++) {
    const m = k - HALF;
    const sinc = m === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * m) / (Math.PI * m);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * k) / (TAPS - 1))
      + 0.08 * Math.cos((4 * Math.PI * k) / (TAPS - 1));
    h[k] = sinc * w;
    sum += h[k];
  }
  for (let k = 0; k < TAPS; k++) h[k] /= sum;
  return h;
}

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.inRate = Math.round(sampleRate);            // global of the worklet scope
    this.outRate = opts.targetRate || 16000;
    this.frameSamples = opts.frameSamples || 640;
    const ratio = this.outRate / this.inRate;
    // Below 8 kHz with room for the transition band; no filter needed when upsampling.
    this.kernel = ratio < 1 ? designLowPass(0.5 * ratio * 0.875) : null;
    this.buf = new Float32Array(8192);               // input samples [bufStart, bufStart + bufLen)
    this.bufStart = -HALF;                           // pretend HALF zeros precede the stream
    this.bufLen = HALF;
    this.outIndex = 0;                               // next output sample number
    this.frame = new Int16Array(this.frameSamples);
    this.frameFill = 0;
    this.frameCount = 0;
    this.inputSamples = 0;
    this.running = true;
    this.port.onmessage = (ev) => {
      if (ev.data && ev.data.cmd === 'stop') this.running = false;
    };
  }

  append(block) {
    if (this.bufLen + block.length > this.buf.length) {
      const grown = new Float32Array(Math.max(this.buf.length * 2, this.bufLen + block.length));
      grown.set(this.buf.subarray(0, this.bufLen));
      this.buf = grown;
    }
    this.buf.set(block, this.bufLen);
    this.bufLen += block.length;
    this.inputSamples += block.length;
  }

  filtered(i) {
    // low-passed input at absolute index i (needs [i - HALF, i + HALF] in the buffer)
    const base = i - HALF - this.bufStart;
    const k = this.kernel;
    if (!k) return this.buf[i - this.bufStart];
    let acc = 0;
    for (let j = 0; j < TAPS; j++) acc += k[j] * this.buf[base + j];
    return acc;
  }

  emit(value) {
    let v = Math.round(value * 32767);
    if (v > 32767) v = 32767; else if (v < -32768) v = -32768;
    this.frame[this.frameFill++] = v;
    if (this.frameFill === this.frameSamples) {
      const out = this.frame;
      // time: the audio clock (seconds) of the render quantum that completed the frame
      this.port.postMessage({ type: 'frame', index: this.frameCount, pcm: out.buffer, time: currentTime,
        inputSamples: this.inputSamples, inRate: this.inRate }, [out.buffer]);
      this.frameCount += 1;
      this.frame = new Int16Array(this.frameSamples);
      this.frameFill = 0;
    }
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true;   // nothing connected yet
    const n = input[0].length;
    const mono = new Float32Array(n);
    for (let c = 0; c < input.length; c++) {
      const ch = input[c];
      for (let i = 0; i < n; i++) mono[i] += ch[i];
    }
    if (input.length > 1) for (let i = 0; i < n; i++) mono[i] /= input.length;
    this.append(mono);

    const inRate = this.inRate, outRate = this.outRate;
    const lastAvail = this.bufStart + this.bufLen - 1;   // highest absolute input index held
    for (;;) {
      const num = this.outIndex * inRate;                // exact integer position * outRate
      const i0 = Math.floor(num / outRate);
      const frac = (num - i0 * outRate) / outRate;
      const need = frac > 0 ? i0 + 1 : i0;
      if (need + HALF > lastAvail) break;
      const a = this.filtered(i0);
      const v = frac > 0 ? a + (this.filtered(i0 + 1) - a) * frac : a;
      this.emit(v);
      this.outIndex += 1;
    }
    // drop input no longer needed by the next output's filter window
    const nextI0 = Math.floor((this.outIndex * inRate) / outRate);
    const keepFrom = nextI0 - HALF;
    const drop = keepFrom - this.bufStart;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.bufLen);
      this.bufLen -= drop;
      this.bufStart = keepFrom;
    }
    return true;
  }
}

registerProcessor('pcm16k', Pcm16kProcessor);
