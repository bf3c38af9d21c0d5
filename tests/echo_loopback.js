// A speaker next to the microphone, for tests/test_browser_echo.py (added with page.addInitScript, so
// it runs before the page's own code). Headless Chromium's fake capture device has no acoustic path:
// this gives it one. Everything the page plays from an AudioBufferSourceNode (the interviewer's voice)
// is also sent, 40 ms later and at half amplitude, into the microphone track that getUserMedia
// returns, mixed with the fake capture device. The test makes the candidate speak by calling
// window.__loopback.say(<base64 16 kHz s16le PCM>), which plays into the microphone only.
(() => {
  const state = { mixer: null, mixDest: null, bus: null, pending: [], voiceSamples: 0, said: 0, peak: 0 };
  window.__loopback = state;

  function plug(stream) {
    if (!state.mixer) { state.pending.push(stream); return; }
    const src = state.mixer.createMediaStreamSource(stream);
    const delay = state.mixer.createDelay(1.0);
    delay.delayTime.value = 0.04;
    const gain = state.mixer.createGain();
    gain.gain.value = 0.5;
    src.connect(delay).connect(gain).connect(state.bus);
  }

  const connect = AudioNode.prototype.connect;
  AudioNode.prototype.connect = function (target, ...rest) {
    if (this instanceof AudioBufferSourceNode && target instanceof AudioDestinationNode
        && this.context !== state.mixer) {
      const ctx = this.context;
      if (!ctx.__loopbackDest) {
        ctx.__loopbackDest = ctx.createMediaStreamDestination();
        plug(ctx.__loopbackDest.stream);
      }
      connect.call(this, ctx.__loopbackDest);
      if (this.buffer) state.voiceSamples += this.buffer.length;
    }
    return connect.call(this, target, ...rest);
  };

  const getUserMedia = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = async function (constraints) {
    const media = await getUserMedia.call(this, constraints);
    if (!constraints || !constraints.audio || media.getAudioTracks().length === 0) return media;
    state.mixer = new AudioContext({ sampleRate: 48000 });
    state.mixDest = state.mixer.createMediaStreamDestination();
    state.bus = state.mixer.createGain();              // everything the microphone hears
    state.bus.connect(state.mixDest);
    state.mixer.createMediaStreamSource(new MediaStream(media.getAudioTracks())).connect(state.bus);
    const resume = () => state.mixer.resume().catch(() => {});
    resume();
    document.addEventListener('click', resume);
    // the loudest sample the microphone track has carried so far (the fake device itself is silent)
    const analyser = state.mixer.createAnalyser();
    analyser.fftSize = 2048;
    const quiet = state.mixer.createGain();
    quiet.gain.value = 0;
    state.bus.connect(analyser).connect(quiet).connect(state.mixer.destination);
    const buf = new Float32Array(analyser.fftSize);
    setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      for (const v of buf) if (Math.abs(v) > state.peak) state.peak = Math.abs(v);
    }, 20);
    for (const s of state.pending.splice(0)) plug(s);
    return new MediaStream([...state.mixDest.stream.getAudioTracks(), ...media.getVideoTracks()]);
  };

  state.say = (b64) => {
    const bin = atob(b64);
    const pcm = new Int16Array(bin.length >> 1);
    for (let i = 0; i < pcm.length; i += 1) {
      pcm[i] = (bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8)) << 16 >> 16;
    }
    const buffer = state.mixer.createBuffer(1, pcm.length, 16000);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) data[i] = pcm[i] / 32768;
    const src = state.mixer.createBufferSource();
    src.buffer = buffer;
    connect.call(src, state.bus);
    src.start();
    state.said += 1;
    return buffer.duration;
  };
})();
