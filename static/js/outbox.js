// Nothing the person typed is lost: messages made while the socket is not open wait here and
// go after the next `start`; typed text stays until the server says it received it (`received`
// {id}), so a message sent into a connection that was already dead is sent again after the
// reconnect. What could not be sent in the end is handed back (shown "Not sent", with Resend).
// The microphone's last moments before the socket opened wait in a short pre-roll.

let next = 1;

export class Outbox {
  #entries = []; // {message, kept, on}: kept ones wait for their `received`; `on`: sent there

  /** Add a message; text gets an id and is kept until acknowledged. Returns the message. */
  add(message) {
    const kept = message.type === "text";
    if (kept && !message.id) message = { ...message, id: `t${Date.now().toString(36)}${next++}` };
    this.#entries.push({ message, kept });
    return message;
  }

  /** What to send on `connection` (a socket that is open): what it has not had yet. */
  take(connection) {
    const due = this.#entries.filter((entry) => entry.on !== connection);
    for (const entry of due) entry.on = connection;
    this.#entries = this.#entries.filter(({ kept }) => kept);
    return due.map(({ message }) => message);
  }

  /** The server received text `id`: it is no longer ours to keep. */
  received(id) {
    this.#entries = this.#entries.filter(({ message }) => message.id !== id);
  }

  /** The session is over: control messages are dropped; returns the unsent text. */
  clear() {
    const unsent = this.#entries.filter(({ kept }) => kept).map(({ message }) => message);
    this.#entries = [];
    return unsent;
  }

  get pending() {
    return this.#entries.filter(({ kept }) => kept).length;
  }
}

/** The newest audio chunks (ArrayBuffers), at most `limit` bytes, for when the socket opens. */
export class Preroll {
  #chunks = [];
  #bytes = 0;
  #limit;

  constructor(limit) {
    this.#limit = limit;
  }

  push(bytes) {
    this.#chunks.push(bytes);
    this.#bytes += bytes.byteLength;
    while (this.#bytes > this.#limit) this.#bytes -= this.#chunks.shift().byteLength;
  }

  take() {
    const chunks = this.#chunks;
    this.clear();
    return chunks;
  }

  clear() {
    this.#chunks = [];
    this.#bytes = 0;
  }
}
