// Live voice chat over the WebSocket /v1/voice-chat/live: the microphone streams as 16-bit
// PCM, transcripts and the reply's text arrive as events, the reply's speech as PCM frames
// played back to back; speaking over a reply interrupts it (the server says so).

export class LiveChat {
  /** `events` gets every JSON event the server sends; `ended(error)` once the session is over. */
  constructor(key, { voice, conversationId }, events, ended) {
    this.key = key;
    this.start = { type: "start", voice: voice || undefined, conversation_id: conversationId || undefined };
    this.events = events;
    this.ended = ended;
    this.playing = [];
    this.playAt = 0;
  }

  async open() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    this.input = new AudioContext({ sampleRate: 16000 });
    await this.input.audioWorklet.addModule("/playground/js/pcm-worklet.js");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // Browsers cannot set headers on a WebSocket: the key travels as a subprotocol, never in the URL.
    this.socket = new WebSocket(`${scheme}://${location.host}/v1/voice-chat/live`, ["speechmesh.v1", `bearer.${this.key}`]);
    this.socket.binaryType = "arraybuffer";
    this.socket.addEventListener("open", () => this.socket.send(JSON.stringify({ ...this.start, sample_rate: 16000 })));
    this.socket.addEventListener("message", (message) => this.receive(message.data));
    this.socket.addEventListener("close", (event) => this.finish(event.code === 1000 ? null : new Error(event.reason || `closed (${event.code})`)));
  }

  receive(data) {
    if (data instanceof ArrayBuffer) return this.speak(data);
    const event = JSON.parse(data);
    if (event.type === "ready") {
      this.output = new AudioContext({ sampleRate: event.reply_sample_rate });
      const microphone = this.input.createMediaStreamSource(this.stream);
      // No outputs: the browser then runs the node although nothing plays what it makes.
      this.frames = new AudioWorkletNode(this.input, "pcm-frames", { numberOfOutputs: 0 });
      this.frames.port.onmessage = (frame) => {
        if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame.data);
      };
      microphone.connect(this.frames);
    } else if (event.type === "interrupted") {
      for (const source of this.playing) source.stop();
      this.playing = [];
    }
    this.events(event);
  }

  speak(buffer) {
    const pcm = new Int16Array(buffer);
    const audio = this.output.createBuffer(1, pcm.length, this.output.sampleRate);
    const samples = audio.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) samples[i] = pcm[i] / 0x8000;
    const source = this.output.createBufferSource();
    source.buffer = audio;
    source.connect(this.output.destination);
    this.playAt = Math.max(this.playAt, this.output.currentTime);
    source.start(this.playAt);
    this.playAt += audio.duration;
    this.playing.push(source);
    source.addEventListener("ended", () => (this.playing = this.playing.filter((s) => s !== source)));
  }

  stop() {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "stop" }));
    this.finish(null);
  }

  finish(error) {
    if (this.done) return;
    this.done = true;
    this.frames?.disconnect();
    this.stream?.getTracks().forEach((track) => track.stop());
    this.input?.close();
    this.ended(error);
  }
}
