// The microphone, downsampled to the pipeline's rate (16-bit PCM, 20 ms per message).
// Runs in the AudioWorklet scope: `sampleRate` is the AudioContext's rate.
class MicrophoneCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.targetRate = options.processorOptions.targetRate;
    this.step = sampleRate / this.targetRate;  // input samples per output sample (e.g. 6 at 48 kHz -> 8 kHz)
    this.position = 0;  // where the next output sample falls, in input samples from the block's start
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(Math.round(this.targetRate / 50));
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      // Box filter over each output sample's span of input: a cheap anti-alias low-pass.
      this.sum += channel[i];
      this.count += 1;
      if (i + 1 >= this.position) {
        const value = Math.max(-1, Math.min(1, this.sum / this.count));
        this.frame[this.filled++] = value < 0 ? value * 0x8000 : value * 0x7fff;
        this.sum = 0;
        this.count = 0;
        this.position += this.step;
        if (this.filled === this.frame.length) {
          this.port.postMessage(this.frame.buffer.slice(0));
          this.filled = 0;
        }
      }
    }
    this.position -= channel.length;
    return true;
  }
}

registerProcessor("microphone-capture", MicrophoneCapture);
