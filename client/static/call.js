// The call panel: starting, ringing, joining; participants, speaking, mute, leave, end; audio.

import { api, ApiError, commands, newId } from "./api.js";
import { AudioLink, MicrophoneRefused, openMicrophone } from "./rtc.js";

const $ = (id) => document.getElementById(id);
const NO_ROOM_MS = 4000; // an active call without a room after this long: no media node has room
const OFFER_RETRIES = 5; // a fresh room may not know the join yet (404/403 for a moment)

export class CallPanel {
  constructor(state, { showMessage, explain, teamMember }) {
    this.state = state;
    this.showMessage = showMessage;
    this.explain = explain;
    this.teamMember = teamMember;
    this.onChange = () => {};
    this.callId = null; // the call this page is in
    this.pending = false; // a start or join is on its way
    this.link = null;
    this.linkUrl = null;
    this.prepared = null; // a link made at the click, waiting for the room's offer_url
    this.clickAt = null;
    this.connectedMs = null;
    this.muted = false;
    this.microphone = null;
    this.noRoomTimer = null;
    this.awaitingSelf = false; // entered a call whose live view does not list us yet
    $("mute").addEventListener("click", () => this.toggleMute());
    $("leave").addEventListener("click", () => this.command($("leave"), "leave", {}, true));
    $("end").addEventListener("click", () => this.command($("end"), "end", {}, true));
  }

  busy() {
    return this.pending || this.callId !== null;
  }

  me() {
    return this.state.session.user_id;
  }

  // One click on a colleague: exactly one call, however often it is clicked meanwhile.
  async start(userId, button) {
    if (this.busy()) return;
    this.begin(button);
    const key = newId(); // the same key on a retry of this click: still one call
    try {
      const path = commands(`/v1/teams/${this.state.teamId}/calls`);
      const answer = await api("POST", path, { invitees: [userId] }, { "Idempotency-Key": key, Prefer: "wait=5" });
      this.enter(answer.call_id);
    } catch (error) {
      const existing = error instanceof ApiError && error.code === "already_in_call" && rejectedCallId(error.body);
      if (existing) this.enter(existing);
      else this.fail(error);
    } finally {
      this.pending = false;
      this.onChange();
    }
  }

  async join(callId, button) {
    if (this.busy()) return;
    this.begin(button);
    try {
      await api("POST", commands(`/v1/calls/${callId}/join`), {}, { "Idempotency-Key": newId(), Prefer: "wait=5" });
      this.enter(callId);
    } catch (error) {
      if (error instanceof ApiError && error.code === "already_joined") this.enter(callId);
      else if (error instanceof ApiError && error.code === "call_ended") this.fail(new Error("That call has ended."));
      else this.fail(error);
    } finally {
      this.pending = false;
      this.onChange();
    }
  }

  begin(button) {
    this.pending = true;
    if (button) button.disabled = true;
    this.clickAt = performance.now();
    this.connectedMs = null;
    this.showMessage("");
    this.onChange();
    this.prepare(); // the microphone, the peer connection and its offer, while the call is set up
  }

  prepare() {
    this.prepared = (async () => {
      if (!this.microphone) {
        try {
          this.microphone = await openMicrophone();
        } catch (error) {
          if (!(error instanceof MicrophoneRefused)) throw error;
          this.showMessage(error.message);
        }
      }
      this.applyMute();
      return new AudioLink(this.microphone, $("remote-audio"), (s) => this.linkState(s));
    })();
  }

  fail(error) {
    this.discardPrepared();
    this.showMessage(this.explain(error));
  }

  enter(callId) {
    this.callId = callId;
    this.muted = false;
    // The command is decided, but the live view may not show us in the call yet: until it
    // does, our absence from its participants means "not projected yet", not "left".
    this.awaitingSelf = true;
    this.update();
  }

  myCall() {
    const call = this.callId && this.state.calls.get(this.callId);
    return call || null;
  }

  // Called on every change of the team's calls: follow this page's call and its room.
  update() {
    const call = this.myCall();
    const inIt = call && call.state === "active" && call.participants.some((p) => p.user_id === this.me());
    if (inIt) this.awaitingSelf = false;
    const notYetShown = this.awaitingSelf && call && call.state === "active";
    if (this.callId && call && !inIt && !notYetShown) {
      this.showMessage(call.state === "ended" ? "The call has ended." : "You left the call.");
      this.leaveLocally();
    }
    this.renderIncoming();
    this.render();
    if (!this.callId || !call) return;
    const url = call.media && call.media.offer_url;
    clearTimeout(this.noRoomTimer);
    if (!url) {
      this.setStatus("Waiting for a media room…");
      this.noRoomTimer = setTimeout(() => this.setStatus("No media node has room for this call right now: waiting for one."), NO_ROOM_MS);
      return;
    }
    if (url !== this.linkUrl) this.connect(url); // a new room (its node moved): connect again
  }

  async connect(url) {
    this.linkUrl = url;
    const started = this.clickAt ?? performance.now();
    if (this.link) this.link.close();
    if (!this.prepared) this.prepare();
    const link = await this.prepared;
    this.prepared = null;
    this.link = link;
    this.setStatus("Connecting audio…");
    for (let attempt = 0; ; attempt++) {
      if (this.linkUrl !== url || this.link !== link) return link.close(); // superseded meanwhile
      try {
        await link.connect(url);
        break;
      } catch (error) {
        const transient = error instanceof ApiError && [403, 404].includes(error.status) && attempt < OFFER_RETRIES;
        if (transient) {
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
          continue;
        }
        if (error instanceof ApiError && error.status === 503) this.setStatus("The media node is full or unavailable: waiting for another room.");
        else this.setStatus(`Audio could not connect: ${this.explain(error)}`);
        return;
      }
    }
    this.waitForAudio(link, started);
  }

  // The measured connection time: the click to the first audio energy received.
  async waitForAudio(link, started) {
    const deadline = performance.now() + 15000;
    while (this.link === link && performance.now() < deadline) {
      const { energy } = await link.received();
      if (energy > 0) {
        this.connectedMs = Math.round(performance.now() - started);
        this.clickAt = null;
        this.setStatus(`Connected: audio in ${this.connectedMs} ms`);
        return;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  linkState(connectionState) {
    if (connectionState === "failed" || connectionState === "disconnected") {
      this.setStatus("Audio connection lost: reconnecting…");
      const url = this.linkUrl;
      this.linkUrl = null;
      if (url && this.callId) setTimeout(() => this.update(), 500);
    }
  }

  async toggleMute() {
    this.muted = !this.muted;
    this.applyMute(); // at once, before the mixer hears of it
    this.render();
    try {
      await api("POST", commands(`/v1/calls/${this.callId}/mute`), { muted: this.muted });
    } catch (error) {
      this.showMessage(this.explain(error));
    }
  }

  applyMute() {
    if (!this.microphone) return;
    for (const track of this.microphone.getAudioTracks()) track.enabled = !this.muted;
  }

  async command(button, verb, body, leaving) {
    const callId = this.callId;
    button.disabled = true;
    try {
      await api("POST", commands(`/v1/calls/${callId}/${verb}`), body, { "Idempotency-Key": newId() });
      if (leaving) this.leaveLocally();
    } catch (error) {
      this.showMessage(this.explain(error));
    } finally {
      button.disabled = false;
      this.onChange();
    }
  }

  discardPrepared() {
    if (this.prepared) this.prepared.then((link) => link.close(), () => {});
    this.prepared = null;
  }

  leaveLocally() {
    clearTimeout(this.noRoomTimer);
    this.discardPrepared();
    if (this.link) this.link.close();
    if (this.microphone) for (const track of this.microphone.getTracks()) track.stop();
    Object.assign(this, { link: null, linkUrl: null, callId: null, microphone: null, muted: false });
    this.render();
    this.onChange();
  }

  setStatus(text) {
    $("call-status").textContent = text;
  }

  name(userId) {
    const member = this.teamMember(userId);
    return member ? member.display_name : "someone";
  }

  renderIncoming() {
    const box = $("incoming");
    box.replaceChildren();
    const mine = this.me();
    for (const call of this.state.calls.values()) {
      if (call.state !== "active" || call.call_id === this.callId) continue;
      if (call.participants.some((p) => p.user_id === mine)) continue;
      const ring = document.createElement("div");
      ring.className = "ring";
      ring.dataset.call = call.call_id;
      const text = document.createElement("span");
      text.textContent = `${this.name(call.started_by)} is calling${call.topic ? `: ${call.topic}` : ""}`;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Join";
      button.disabled = this.busy();
      button.addEventListener("click", () => this.join(call.call_id, button));
      ring.append(text, button);
      box.append(ring);
    }
  }

  render() {
    const call = this.myCall();
    $("call").hidden = !this.callId;
    $("mute").textContent = this.muted ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(this.muted));
    const list = $("participants");
    list.replaceChildren();
    if (!call) return;
    for (const p of call.participants) {
      const item = document.createElement("li");
      item.dataset.user = p.user_id;
      item.dataset.speaking = String(Boolean(p.speaking));
      item.className = p.speaking ? "speaking" : "";
      item.textContent = this.name(p.user_id) + (p.user_id === this.me() ? " (you)" : "");
      if (p.muted) {
        const mark = document.createElement("span");
        mark.className = "muted-mark";
        mark.textContent = " muted";
        item.append(mark);
      }
      list.append(item);
    }
  }
}

// The call a rejected start names (already_in_call), from the decided command's events.
function rejectedCallId(body) {
  const events = (body && body.events) || [];
  for (const event of events) if (event.data && event.data.call_id) return event.data.call_id;
  return null;
}
