// The team's live query over SSE, read with fetch (EventSource cannot send the bearer token):
// it resumes with Last-Event-ID after a drop, and says when it is reconnecting.

const STALL_MS = 40000; // the stream speaks at least every 15 s; silence past this is a dead link

export class LiveStream {
  constructor(url, token, { onSnapshot, onChange, onState, onUnauthorized }) {
    this.url = url;
    this.token = token;
    this.handlers = { onSnapshot, onChange, onState, onUnauthorized };
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
    this.wake = null;
  }

  start() {
    this.loop();
    this.watchdog = setInterval(() => {
      if (this.controller && Date.now() - this.heardAt > STALL_MS) this.drop();
    }, 5000);
    this.onOnline = () => this.wake && this.wake();
    window.addEventListener("online", this.onOnline);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    window.removeEventListener("online", this.onOnline);
    if (this.controller) this.controller.abort();
  }

  // Cut the current connection as a network failure would (the loop reconnects).
  drop() {
    if (this.controller) this.controller.abort();
  }

  async loop() {
    let delay = 250;
    while (!this.stopped) {
      this.handlers.onState(this.lastId === null ? "connecting" : "reconnecting");
      this.controller = new AbortController();
      this.heardAt = Date.now();
      try {
        const headers = { Authorization: `Bearer ${this.token}`, Accept: "text/event-stream" };
        if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
        const response = await fetch(this.url, { headers, signal: this.controller.signal, cache: "no-store" });
        if (response.status === 401 || response.status === 403) {
          this.handlers.onUnauthorized(response.status);
          return;
        }
        if (response.ok) {
          this.handlers.onState("live");
          delay = 250;
          await this.read(response.body);
        }
      } catch {
        // a network error or our own abort: fall through to reconnect
      }
      this.controller = null;
      if (this.stopped) return;
      this.handlers.onState("reconnecting");
      await new Promise((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay);
      });
      delay = Math.min(delay * 2, 5000);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.heardAt = Date.now();
      buffer = (buffer + value).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  dispatch(block) {
    let type = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (type === "snapshot") this.handlers.onSnapshot(payload, id);
    else this.handlers.onChange(type, payload, id);
    if (id !== null) this.lastId = id; // only once applied: a resume never skips a change
  }
}
