// Audio over WebRTC to a call's media room: the microphone out, the room's mix in.

import { api, offerPath } from "./api.js";

export class MicrophoneRefused extends Error {}

export async function openMicrophone() {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    throw new MicrophoneRefused(error.name === "NotAllowedError"
      ? "Microphone blocked: allow it for this page to be heard. You can still listen."
      : `No microphone available (${error.name}). You can still listen.`);
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class AudioLink {
  // `microphone` may be null (refused): the link then only listens.
  constructor(microphone, audioElement, onStateChange) {
    // No STUN/TURN: the media node is reached directly (a public STUN server stalls gathering).
    this.pc = new RTCPeerConnection({ iceServers: [] });
    this.audio = audioElement;
    if (microphone) {
      for (const track of microphone.getAudioTracks()) this.pc.addTrack(track, microphone);
    } else {
      this.pc.addTransceiver("audio", { direction: "recvonly" });
    }
    this.pc.ontrack = (event) => {
      this.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.audio.play().catch(() => {});
    };
    this.pc.onconnectionstatechange = () => onStateChange(this.pc.connectionState);
    // The offer and its candidates are made now, while the call is still being set up.
    this.ready = this.pc.createOffer()
      .then((offer) => this.pc.setLocalDescription(offer))
      .then(() => gathered(this.pc));
  }

  async connect(offerUrl) {
    await this.ready;
    const answer = await api("POST", offerPath(offerUrl), { sdp: this.pc.localDescription.sdp, type: "offer" });
    await this.pc.setRemoteDescription(answer);
  }

  // Received audio so far: energy and seconds (inbound-rtp, summed over tracks).
  async received() {
    let energy = 0;
    let duration = 0;
    const stats = await this.pc.getStats();
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        energy += report.totalAudioEnergy || 0;
        duration += report.totalSamplesDuration || 0;
      }
    });
    return { energy, duration };
  }

  close() {
    this.pc.close();
    if (this.audio.srcObject) this.audio.srcObject = null;
  }
}
