// The interviewer's voice in the room (README, "The interviewer's voice"): plays the server's
// tts_audio chunks gaplessly on an AudioContext of its own, highlights the sentence being spoken,
// reports playback (tts_playback started / finished / interrupted), obeys tts_stop, replays the last
// message (重听) and, when the server has no voice, speaks with the browser's speechSynthesis (zh-CN).

const STORAGE_KEY = 'mianshi.voice';
// The room still carries the voice after its last sample (the output device's buffer, the way from the
// speaker, reverberation): the microphone stays muted this long after it (bench/bench_echo.py, README).
const ECHO_TAIL_S = 0.3;

function base64ToInt16(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
  return new Int16Array(bytes.buffer, 0, bytes.length >> 1);
}

export class Voice {
  constructor({ send, highlight, stats }) {
    this.send = send;                 // (message) => bool
    this.highlight = highlight;       // (text, start, end) => void; start < 0: nothing highlighted
    this.stats = stats;               // window.__mianshi.voice
    this.enabled = localStorage.getItem(STORAGE_KEY) === 'on';
    this.serverVoice = null;          // stream_created.tts.voice
    this.ctx = null;
    this.cursor = 0;                  // AudioContext time the scheduled audio ends
    this.messages = new Map();        // message_id -> {text, chunks, sources, reported, done}
    this.last = null;                 // the last message spoken (重听)
  }

  wanted() { return this.enabled; }

  setEnabled(on) {
    this.enabled = on;
    localStorage.setItem(STORAGE_KEY, on ? 'on' : 'off');
    if (!on) this.stopAll(true);
  }

  context() {
    if (!this.ctx) {
      this.ctx = new AudioContext();
      const resume = () => this.ctx && this.ctx.resume().catch(() => {});
      document.addEventListener('click', resume, { once: true });
    }
    return this.ctx;
  }

  playing() {
    if (this.ctx && this.ctx.currentTime < this.cursor) return true;
    return typeof speechSynthesis !== 'undefined' && speechSynthesis.speaking;
  }

  // Whether the microphone may be hearing the voice: while it plays, and ECHO_TAIL_S (plus the output
  // latency the browser reports) after its last sample.
  echoing() {
    if (this.ctx && this.ctx.currentTime < this.cursor + ECHO_TAIL_S + (this.ctx.outputLatency || 0)) return true;
    return this.playing();
  }

  report(id, event) {
    const m = this.messages.get(id);
    if (!m || m.done) return;
    if (event === 'started') { if (m.reported) return; m.reported = true; }
    else m.done = true;
    this.send({ type: 'tts_playback', message_id: id, event });
  }

  onMessage(msg) {
    if (!msg.message_id) return;
    const m = { id: msg.message_id, text: msg.text || '', chunks: [], sources: [], reported: false, done: false, spoken: 0 };
    this.messages.set(m.id, m);
    if (this.messages.size > 20) this.messages.delete(this.messages.keys().next().value);
    this.last = m;
    if (this.serverVoice === false && this.enabled) this.speakLocally(m);
  }

  onAudio(msg) {
    const m = this.messages.get(msg.message_id);
    if (!m) return;
    if (!this.enabled) { this.report(m.id, 'interrupted'); return; }
    if (msg.audio_data) m.chunks.push(msg);
    this.schedule(m, msg, true);
    if (msg.last && m.spoken === 0) this.speakLocally(m);      // the server could not voice it
  }

  schedule(m, chunk, live) {
    if (!chunk.audio_data) {
      if (chunk.last && live) this.finishAt(m, this.cursor);
      return;
    }
    const ctx = this.context();
    const pcm = base64ToInt16(chunk.audio_data);
    const buffer = ctx.createBuffer(1, pcm.length, chunk.sample_rate);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) data[i] = pcm[i] / 32768;
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(ctx.destination);
    const at = Math.max(ctx.currentTime + 0.05, this.cursor);
    src.start(at);
    m.sources.push(src);
    m.spoken += pcm.length;
    this.cursor = at + buffer.duration;
    this.stats.samplesScheduled += pcm.length;
    const delay = Math.max(0, (at - ctx.currentTime) * 1000);
    setTimeout(() => {
      if (live) this.report(m.id, 'started');
      if (typeof chunk.char_start === 'number') this.highlight(m.text, chunk.char_start, chunk.char_end);
    }, delay);
    if (chunk.last) this.finishAt(m, this.cursor, live);
  }

  finishAt(m, end, live = true) {
    const ctx = this.context();
    setTimeout(() => {
      this.highlight(m.text, -1, -1);
      if (live) this.report(m.id, 'finished');
    }, Math.max(0, (end - ctx.currentTime) * 1000));
  }

  speakLocally(m) {
    if (typeof speechSynthesis === 'undefined' || !m.text) { this.report(m.id, 'interrupted'); return; }
    const u = new SpeechSynthesisUtterance(m.text.split('\n')[0]);
    u.lang = 'zh-CN';
    const zh = speechSynthesis.getVoices().find((v) => v.lang && v.lang.toLowerCase().startsWith('zh'));
    if (zh) u.voice = zh;
    u.onstart = () => { this.report(m.id, 'started'); this.highlight(m.text, 0, m.text.length); };
    u.onend = () => { this.report(m.id, 'finished'); this.highlight(m.text, -1, -1); };
    u.onerror = () => { this.report(m.id, 'interrupted'); this.highlight(m.text, -1, -1); };
    speechSynthesis.speak(u);
    this.stats.localUtterances += 1;
  }

  stop(id, report) {
    const m = this.messages.get(id);
    if (!m) return;
    for (const src of m.sources) { try { src.stop(); } catch { /* not started */ } }
    m.sources = [];
    if (this.ctx) this.cursor = Math.min(this.cursor, this.ctx.currentTime);
    if (report) this.report(id, 'interrupted'); else m.done = true;
    this.highlight(m.text, -1, -1);
  }

  stopAll(report) {
    for (const id of this.messages.keys()) this.stop(id, report);
    if (typeof speechSynthesis !== 'undefined') speechSynthesis.cancel();
  }

  replay() {
    const m = this.last;
    if (!m) return;
    this.stopAll(true);
    if (m.chunks.length === 0) { this.speakLocally({ ...m, id: null }); return; }
    for (const chunk of m.chunks) this.schedule(m, chunk, false);
  }
}
