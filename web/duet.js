// duet.js: a dependency-free browser client of the Duet signaling protocol (docs/protocol.md),
// on the browser's RTCPeerConnection.
//
//   import * as Duet from './duet.js';
//   const video = await Duet.connect('http://127.0.0.1:7480', token);
//   const conversation = video.call('bob', localStream, { data: 'hi', iceTransportPolicy: 'all' });
//   conversation.on('response', status => …);        // 'ACCEPTED' | 'REJECTED' | 'BUSY' | 'TIMEOUT'
//   conversation.on('stream_received', stream => …);
//   conversation.on('closed', reason => …);          // 'hangup', 'cancelled', 'timeout', …
//   conversation.setMediaEnabled({ video: false });  // camera off (audio: false mutes)
//   conversation.on('remote_media', ({ video, audio }) => …); // the other side's, also
//                                                    // in conversation.remoteMedia
//   video.on('called', incoming => incoming.accept(localStream) /* or incoming.reject() */);
//
// Camera and microphone: `setMediaEnabled` turns this side's tracks off and on during a
// call and tells the other party (the protocol's `media` signal); so does a call whose
// local stream lacks a kind or has it disabled, once its media connects. 'remote_media'
// says what the other party sends; until it says otherwise, assume both, and show
// "camera off" rather than a frozen picture when `video` is false.
//
// Sending: messages leave in order, paced by the rate limit the server states in
// `welcome.limits` (the server's token bucket, with part of its burst kept in reserve for
// messages that reach the server bunched), so the server never drops one
// (`rate_limited`); while the connection is down they wait for the next one. A
// `rate_limited` error (which would mean a message was lost anyway) reaches the call's
// 'error', or the Video's when the call is gone.
//
// One call at a time: `call` ends the previous call, and an incoming call that arrives while
// this device is in a call is declined as busy. A final response (REJECTED, BUSY, TIMEOUT) is
// followed by 'closed' with the status in lower case, so 'closed' always marks the end of a
// conversation ended by the other side or the server. `close()` itself emits nothing.

const PROTOCOL_VERSION = 1;
const HELLO_TIMEOUT_MS = 10000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/// The server's rate limit when a `welcome` states none (docs/protocol.md, Limits).
const DEFAULT_LIMITS = { messages_per_second: 20, message_burst: 60 };
/// How much later than sent the server may read a message (a busy server, a slow network).
/// The server's bucket counts arrivals: messages sent at the rate limit but delayed unevenly
/// arrive bunched, up to this much of the refill rate above the burst. The bucket here
/// keeps that much of its burst in reserve, so that they still fit.
const ARRIVAL_JITTER_MS = 500;
/// Errors after which reconnecting with the same token cannot help.
const FATAL_CODES = new Set(['unsupported_version', 'unauthorized', 'token_expired', 'replaced']);

/// A protocol error: `code` as in the protocol's error table.
export class DuetError extends Error {
  constructor(code, message, callId) {
    super(message ? `${code}: ${message}` : code);
    this.name = 'DuetError';
    this.code = code;
    this.callId = callId;
  }
}

class Emitter {
  constructor() { this._handlers = new Map(); }
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return this;
  }
  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
    return this;
  }
  _emit(event, ...args) {
    for (const handler of [...(this._handlers.get(event) || [])]) {
      try { handler(...args); } catch (e) { console.error(`duet: '${event}' handler threw`, e); }
    }
  }
}

/// The server's per-connection rate limit (`welcome.limits`), kept on this side too, as
/// rust/protocol's TokenBucket: a message the server would drop (`rate_limited`) waits here
/// instead. Refills continuously; holds at most `burst` tokens, and starts full.
class TokenBucket {
  constructor(perSecond, burst, now) {
    this.perSecond = perSecond;
    this.capacity = Math.max(1, burst);
    this.tokens = this.capacity;
    this.updated = now;
  }

  tryTake(now) {
    this._refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /// Milliseconds until `tryTake` would succeed: zero if it would now.
  msUntilToken(now) {
    this._refill(now);
    if (this.tokens >= 1 || !(this.perSecond > 0)) return 0;
    return (1 - this.tokens) * 1000 / this.perSecond;
  }

  _refill(now) {
    const elapsed = Math.max(0, now - this.updated);
    this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.perSecond / 1000);
    this.updated = Math.max(this.updated, now);
  }
}

/// `http://host:port` (or `ws://…`, or `…/ws`) to the WebSocket endpoint.
export function websocketUrl(serverUrl) {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  const url = new URL(serverUrl || '/', base);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (!url.pathname.endsWith('/ws')) url.pathname = url.pathname.replace(/\/*$/, '') + '/ws';
  url.search = '';
  url.hash = '';
  return url.toString();
}

/// A full bucket for a new connection, less the token its `hello` took, and less the
/// reserve for arrival jitter.
function newBucket(limits) {
  const { messages_per_second: perSecond, message_burst: burst } = { ...DEFAULT_LIMITS, ...limits };
  const reserve = Math.min(burst - 1, perSecond * ARRIVAL_JITTER_MS / 1000);
  const bucket = new TokenBucket(perSecond, burst - reserve, performance.now());
  bucket.tryTake(performance.now());
  return bucket;
}

function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map(x => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/// A device id that stays the same across reconnects and reloads of this tab (sessionStorage:
/// two tabs signed in as the same uid are two devices, not one replacing the other).
function stableDeviceId() {
  const key = 'duet.device_id';
  try {
    let id = sessionStorage.getItem(key);
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      id = 'web-' + randomId().replace(/-/g, '').slice(0, 16);
      sessionStorage.setItem(key, id);
    }
    return id;
  } catch (_) {
    return 'web-' + randomId().replace(/-/g, '').slice(0, 16);
  }
}

/// Puts H.264 constrained baseline (packetization-mode 1) first, then other H.264, then the
/// rest, which is what Duet's native side speaks. Audio keeps Opus first.
function preferredCodecs(kind) {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.(kind);
  if (!caps?.codecs?.length) return null;
  const rank = c => {
    const mime = c.mimeType.toLowerCase();
    const fmtp = (c.sdpFmtpLine || '').toLowerCase();
    if (kind === 'audio') return mime === 'audio/opus' ? 0 : 1;
    if (mime !== 'video/h264') return 3;
    const baseline = /profile-level-id=42e0/.test(fmtp) || /profile-level-id=4200/.test(fmtp);
    const mode1 = /packetization-mode=1/.test(fmtp);
    return baseline && mode1 ? 0 : baseline || mode1 ? 1 : 2;
  };
  const codecs = caps.codecs.map((c, i) => [rank(c), i, c]);
  codecs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return codecs.map(x => x[2]);
}

function applyCodecPreferences(pc) {
  if (!globalThis.RTCRtpTransceiver?.prototype?.setCodecPreferences) return false;
  for (const t of pc.getTransceivers()) {
    const kind = t.receiver?.track?.kind || t.sender?.track?.kind;
    if (!kind || t.stopped) continue;
    const codecs = preferredCodecs(kind);
    if (!codecs) continue;
    try { t.setCodecPreferences(codecs); } catch (e) { console.warn('duet: setCodecPreferences', e); }
  }
  return true;
}

/// Fallback for browsers without setCodecPreferences: reorders the payload types of each
/// m=video line so that H.264 (packetization-mode 1 first) leads.
function preferH264InSdp(sdp) {
  const lines = sdp.split('\r\n');
  const h264 = new Map(); // payload type -> rank
  for (const line of lines) {
    const m = /^a=rtpmap:(\d+) H264\/90000/i.exec(line);
    if (m) h264.set(m[1], 1);
  }
  for (const line of lines) {
    const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (m && h264.has(m[1]) && /packetization-mode=1/.test(m[2]) && /profile-level-id=42e0/i.test(m[2])) {
      h264.set(m[1], 0);
    }
  }
  if (!h264.size) return sdp;
  return lines.map(line => {
    const m = /^(m=video \d+ [A-Z/]+) (.*)$/.exec(line);
    if (!m) return line;
    const pts = m[2].split(' ');
    const first = pts.filter(p => h264.has(p)).sort((a, b) => h264.get(a) - h264.get(b));
    return `${m[1]} ${[...first, ...pts.filter(p => !h264.has(p))].join(' ')}`;
  }).join('\r\n');
}

/// Connects to a Duet server: opens the WebSocket, says `hello`, and resolves with a `Video`
/// once the server answers `welcome` (rejects with a DuetError on `error`).
export async function connect(serverUrl, token, options = {}) {
  const video = new Video(serverUrl, token, options);
  await video._open();
  return video;
}

/// One signed-in device. Events: 'called' (Conversation), 'error' (Error), 'disconnected',
/// 'reconnected'.
export class Video extends Emitter {
  constructor(serverUrl, token, options = {}) {
    super();
    this.url = websocketUrl(serverUrl);
    this.token = token;
    this.deviceId = options.deviceId || stableDeviceId();
    this.uid = null;
    this.welcome = null;
    this._ws = null;
    this._closed = false;
    this._conversation = null;     // the one call this device is in (or is placing/ringing)
    this._calls = new Map();       // call id -> Conversation (current and ringing incoming)
    this._queue = [];              // messages not sent yet, in order: waiting for the
                                   // connection (flushed after welcome) or for the rate limit
    this._bucket = null;           // this connection's rate limit, from its welcome
    this._pumpTimer = null;        // the next send the rate limit allows
    this._pingTimer = null;
    this._pongTimer = null;
    this._nonce = 0;
    this._backoff = BACKOFF_MIN_MS;
  }

  get iceServers() { return this.welcome?.ice_servers || []; }

  /// Places a call; ends the call this device is in, if any (the seed's rule).
  call(remoteUid, localStream, options = {}) {
    if (typeof options === 'string') options = { data: options };
    for (const conv of [...this._calls.values()]) {
      // A call ringing here from the uid we now call is left to the server's glare rule: it
      // merges the two calls and tells us to answer that one.
      if (conv.role === 'callee' && conv.state === 'ringing' && conv.remoteUid === remoteUid) continue;
      conv.close();
    }
    const conv = new Conversation(this, {
      callId: randomId(),
      role: 'caller',
      remoteUid,
      data: options.data,
      policy: options.iceTransportPolicy === 'relay' ? 'relay' : 'all',
    });
    this._adopt(conv);
    conv._placeCall(localStream).catch(e => conv._fail(e));
    return conv;
  }

  /// The conversation this device is in, if any.
  get conversation() { return this._conversation; }

  /// Hangs up any call and closes the connection for good, once the hang-ups are sent.
  disconnect() {
    for (const conv of [...this._calls.values()]) conv.close();
    this._closed = true;
    this._stopKeepalive();
    this._pump();
  }

  // ---- connection ----

  _open() {
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url);
      this._ws = ws;
      const timer = setTimeout(() => fail(new DuetError('hello_required', 'no welcome in time')), HELLO_TIMEOUT_MS);
      const fail = err => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try { ws.close(); } catch (_) { /* already closed */ }
        reject(err);
      };
      ws.onopen = () => {
        const hello = { type: 'hello', v: PROTOCOL_VERSION, token: this.token, device_id: this.deviceId };
        const calls = this._restatements();
        if (calls.length) hello.calls = calls;
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = ev => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        if (!settled) {
          if (msg.type === 'welcome') {
            settled = true;
            clearTimeout(timer);
            this._onWelcome(msg);
            resolve(this);
          } else if (msg.type === 'error') {
            fail(new DuetError(msg.code, msg.message));
          }
          return;
        }
        this._onMessage(msg);
      };
      ws.onerror = () => fail(new Error(`cannot connect to ${this.url}`));
      ws.onclose = ev => {
        if (!settled) { fail(new Error(`connection closed (${ev.code}) before welcome`)); return; }
        if (this._ws === ws) this._onDisconnected(ev);
      };
    });
  }

  _onWelcome(msg) {
    this.welcome = msg;
    this.uid = msg.uid;
    this._backoff = BACKOFF_MIN_MS;
    this._startKeepalive(msg.keepalive_ms || 15000);
    this._bucket = newBucket(msg.limits);
    this._pump();
  }

  _onDisconnected(ev) {
    this._stopKeepalive();
    this._stopPump();
    this._ws = null;
    // A keepalive belongs to the connection that sent it; the rest waits for the next one.
    this._queue = this._queue.filter(m => m.type !== 'ping');
    if (this._closed) return;
    this._emit('disconnected', ev.code);
    this._reconnect();
  }

  _reconnect() {
    const delay = this._backoff * (0.5 + Math.random() / 2);
    this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
    setTimeout(() => {
      if (this._closed) return;
      this._open().then(
        () => this._emit('reconnected'),
        err => {
          if (err instanceof DuetError && FATAL_CODES.has(err.code)) {
            this._closed = true;
            this._emit('error', err);
            for (const conv of [...this._calls.values()]) conv._end('peer_disconnected', true);
          } else {
            this._reconnect();
          }
        });
    }, delay);
  }

  /// The calls this device holds, restated in `hello` after a reconnect.
  _restatements() {
    const out = [];
    for (const conv of this._calls.values()) {
      if (conv.state === 'closed') continue;
      const entry = {
        call_id: conv.callId,
        role: conv.role,
        peer: conv.remoteUid,
        state: conv.state,
        options: { ice_transport_policy: conv.policy },
      };
      if (conv.state !== 'active') {
        if (conv.data != null) entry.data = conv.data;
        const sdp = conv.role === 'caller' ? conv._localSdp : (conv.state === 'accepting' ? conv._localSdp : conv._remoteOffer);
        if (sdp) entry.sdp = sdp;
        entry.ring_elapsed_ms = Math.max(0, Math.round(Date.now() - conv._ringStart));
      }
      out.push(entry);
    }
    return out;
  }

  _startKeepalive(ms) {
    this._stopKeepalive();
    this._pingTimer = setInterval(() => {
      const nonce = ++this._nonce;
      this._send({ type: 'ping', nonce });
      clearTimeout(this._pongTimer);
      this._pongTimer = setTimeout(() => {
        // No pong in time: the connection is lost; reconnect.
        if (this._ws) this._ws.close(4000, 'no pong');
      }, ms);
    }, ms);
  }

  _stopKeepalive() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = this._pongTimer = null;
  }

  /// Queues `msg` and sends what the connection and its rate limit allow now, in order.
  _send(msg) {
    if (this._closed) return;
    if (msg.type === 'ping' && !this._canSend()) return;
    this._queue.push(msg);
    this._pump();
  }

  /// Is the connection up, with its `welcome` (and so its rate limit) received?
  _canSend() {
    return !!this._bucket && !!this._ws && this._ws.readyState === WebSocket.OPEN;
  }

  /// Sends queued messages while the rate limit has tokens; when it runs dry, comes back
  /// once it has one. After `disconnect`, closes the socket when the queue is empty.
  _pump() {
    if (this._pumpTimer) return;
    while (this._queue.length && this._canSend()) {
      const wait = this._bucket.msUntilToken(performance.now());
      if (wait > 0) {
        this._pumpTimer = setTimeout(() => { this._pumpTimer = null; this._pump(); }, Math.ceil(wait));
        return;
      }
      this._bucket.tryTake(performance.now());
      this._ws.send(JSON.stringify(this._queue.shift()));
    }
    if (this._closed && this._ws && (!this._queue.length || !this._canSend())) this._ws.close(1000);
  }

  _stopPump() {
    clearTimeout(this._pumpTimer);
    this._pumpTimer = null;
    this._bucket = null;
  }

  _adopt(conv) {
    this._calls.set(conv.callId, conv);
    if (!(conv.role === 'callee' && conv.state === 'ringing')) this._conversation = conv;
  }

  _forget(conv) {
    if (this._calls.get(conv.callId) === conv) this._calls.delete(conv.callId);
    if (this._conversation === conv) this._conversation = null;
  }

  /// Is this device busy with a call other than `except`?
  _busy(except) {
    const c = this._conversation;
    return !!c && c !== except && c.state !== 'closed';
  }

  // ---- messages from the server ----

  _onMessage(msg) {
    switch (msg.type) {
      case 'pong':
        clearTimeout(this._pongTimer);
        return;
      case 'welcome':
        return;
      case 'incoming':
        return this._onIncoming(msg);
      case 'merged':
        return this._onMerged(msg);
      case 'error': {
        const err = new DuetError(msg.code, msg.message, msg.call_id);
        const conv = msg.call_id && this._calls.get(msg.call_id);
        if (conv) conv._emit('error', err);
        else if (!msg.call_id || msg.code === 'rate_limited') this._emit('error', err);
        // Other errors about calls this device already dropped are expected (e.g. a
        // candidate that crossed a hang-up) and ignored; a dropped message never is.
        return;
      }
      default: {
        const conv = msg.call_id && this._calls.get(msg.call_id);
        if (conv) conv._onMessage(msg);
      }
    }
  }

  _onIncoming(msg) {
    if (this._calls.has(msg.call_id)) return; // a repeat after a reconnect
    const conv = new Conversation(this, {
      callId: msg.call_id,
      role: 'callee',
      remoteUid: msg.from,
      data: msg.data,
      policy: msg.options?.ice_transport_policy === 'relay' ? 'relay' : 'all',
      remoteOffer: msg.sdp,
    });
    const ringing = [...this._calls.values()].some(c => c.role === 'callee' && c.state === 'ringing');
    if (this._busy() || ringing) {
      // One call at a time: decline as busy, without bothering the app.
      this._send({ type: 'reject', call_id: msg.call_id, busy: true });
      return;
    }
    this._adopt(conv);
    this._emit('called', conv);
  }

  _onMerged(msg) {
    const conv = this._calls.get(msg.call_id);
    const into = msg.into;
    if (!conv || !into) return;
    // The incoming call that the server merged ours into, if it rang here: it lives on as
    // our conversation rather than as a second one.
    const ringing = this._calls.get(into.call_id);
    if (ringing && ringing !== conv) {
      ringing.state = 'closed';
      this._forget(ringing);
    }
    this._calls.delete(conv.callId);
    conv._merge(into).catch(e => conv._fail(e));
    this._calls.set(conv.callId, conv);
  }
}

/// Both kinds: what a peer is assumed to send until its `media` signal says otherwise.
const BOTH_MEDIA = Object.freeze({ video: true, audio: true });

function sameMedia(a, b) {
  return a.video === b.video && a.audio === b.audio;
}

/// What `stream` sends: a kind counts if the stream has a track of it that is enabled.
function mediaOf(stream) {
  const on = tracks => tracks.some(t => t.enabled && t.readyState !== 'ended');
  return {
    video: !!stream && on(stream.getVideoTracks()),
    audio: !!stream && on(stream.getAudioTracks()),
  };
}

/// One call. Events: 'response' (status), 'stream_received' (MediaStream), 'remote_media'
/// ({video, audio}), 'closed' (reason), 'error' (Error), 'state' (state),
/// 'connection_state' (the peer connection's).
export class Conversation extends Emitter {
  constructor(video, { callId, role, remoteUid, data, policy, remoteOffer }) {
    super();
    this._video = video;
    this.callId = callId;
    this.role = role;               // 'caller' | 'callee'
    this.remoteUid = remoteUid;
    this.data = data ?? null;
    this.policy = policy || 'all';
    /// 'ringing' | 'accepting' | 'active' | 'closed' (the protocol's restated states)
    this.state = 'ringing';
    this.localStream = null;
    this.remoteStream = null;
    /// What the other party says it sends ('remote_media'); both until it says otherwise.
    this.remoteMedia = { ...BOTH_MEDIA };
    this.pc = null;
    this._toldMedia = BOTH_MEDIA;   // what the other party was told this side sends
    this._mediaConnected = false;   // media signals wait for the peer connection
    this._remoteOffer = remoteOffer || null;
    this._localSdp = null;
    this._canSignal = false;        // local candidates wait until invite/accept is sent
    this._outbox = [];              // local signals waiting for that
    this._inbox = [];               // remote signals waiting for a remote description
    this._ringStart = Date.now();
    this._merged = false;
    this._acceptWaiters = [];
  }

  /// Accepts a ringing incoming call with `localStream`; resolves with this conversation once
  /// the server confirms this device's accept won.
  accept(localStream) {
    if (this.role !== 'callee' || this.state !== 'ringing') {
      return Promise.reject(new DuetError('invalid_state', `cannot accept a call that is ${this.state}`, this.callId));
    }
    const video = this._video;
    // One call at a time: accepting ends the call this device was in.
    if (video._conversation && video._conversation !== this) video._conversation.close();
    video._conversation = this;
    const done = new Promise((resolve, reject) => this._acceptWaiters.push({ resolve, reject }));
    this._answer(this._remoteOffer, localStream).catch(e => this._fail(e));
    return done;
  }

  /// Declines a ringing incoming call.
  reject() {
    if (this.state === 'closed') return;
    if (this.role === 'callee' && this.state === 'ringing') {
      this._video._send({ type: 'reject', call_id: this.callId });
      this._end(null, false);
    } else {
      this.close();
    }
  }

  /// What this side sends now: `{video, audio}`, from the local stream's enabled tracks.
  get localMedia() { return mediaOf(this.localStream); }

  /// Turns this side's camera (`video`) or microphone (`audio`) off (false) or on (true)
  /// during the call, leaving a kind not given as it is. It disables the local stream's
  /// tracks rather than removing them, so turning back on needs no renegotiation, and tells
  /// the other party ('remote_media' there). The tracks are the caller's: a stream shared
  /// with a preview shows the change too.
  setMediaEnabled({ video, audio } = {}) {
    const stream = this.localStream;
    if (stream && video !== undefined) for (const t of stream.getVideoTracks()) t.enabled = !!video;
    if (stream && audio !== undefined) for (const t of stream.getAudioTracks()) t.enabled = !!audio;
    this._tellMedia();
    return this.localMedia;
  }

  /// Cancels, declines or hangs up. Emits nothing here; the other party gets 'closed'.
  close() {
    if (this.state === 'closed') return;
    this._video._send({ type: 'hangup', call_id: this.callId });
    this._end(null, false);
  }

  // ---- internals ----

  _newPeerConnection() {
    if (this.pc) this._closePc();
    const pc = new RTCPeerConnection({
      iceServers: this._video.iceServers,
      iceTransportPolicy: this.policy,
      // One transport for audio and video from the start: every Duet peer bundles, and the
      // browser's default ('balanced') gathers candidates, and allocates TURN relays, for
      // each media type until the answer says bundle: twice the candidates to signal.
      bundlePolicy: 'max-bundle',
    });
    this.pc = pc;
    pc.onicecandidate = ev => {
      if (this.pc !== pc) return;
      if (ev.candidate && ev.candidate.candidate) {
        const signal = { kind: 'candidate', candidate: ev.candidate.candidate };
        if (ev.candidate.sdpMid != null) signal.sdp_mid = ev.candidate.sdpMid;
        if (ev.candidate.sdpMLineIndex != null) signal.sdp_mline_index = ev.candidate.sdpMLineIndex;
        this._signal(signal);
      } else if (!ev.candidate) {
        this._signal({ kind: 'end_of_candidates' });
      }
    };
    pc.ontrack = ev => {
      if (this.pc !== pc) return;
      let stream = ev.streams && ev.streams[0];
      if (!stream) {
        stream = this.remoteStream || new MediaStream();
        stream.addTrack(ev.track);
      }
      if (this.remoteStream !== stream) {
        this.remoteStream = stream;
        this._emit('stream_received', stream);
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      this._emit('connection_state', pc.connectionState);
      if (pc.connectionState === 'connected') this._onMediaConnected();
      if (pc.connectionState === 'failed') {
        this._emit('error', new Error('the peer connection failed'));
      }
    };
    return pc;
  }

  _addLocal(pc, localStream) {
    this.localStream = localStream || null;
    if (localStream) for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
  }

  async _placeCall(localStream) {
    const pc = this._newPeerConnection();
    this._addLocal(pc, localStream);
    if (!localStream || !localStream.getAudioTracks().length) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (!localStream || !localStream.getVideoTracks().length) pc.addTransceiver('video', { direction: 'recvonly' });
    const munge = !applyCodecPreferences(pc);
    const offer = await pc.createOffer();
    if (munge) offer.sdp = preferH264InSdp(offer.sdp);
    if (this.pc !== pc || this.state === 'closed') return;
    await pc.setLocalDescription(offer);
    if (this.pc !== pc || this.state === 'closed') return;
    this._localSdp = pc.localDescription.sdp;
    const invite = {
      type: 'invite',
      call_id: this.callId,
      to: this.remoteUid,
      options: { ice_transport_policy: this.policy },
      sdp: this._localSdp,
    };
    if (this.data != null && this.data !== '') invite.data = String(this.data);
    this._ringStart = Date.now();
    this._video._send(invite);
    this._openSignals();
  }

  async _answer(offerSdp, localStream) {
    const pc = this._newPeerConnection();
    this.state = 'accepting';
    this._canSignal = false;
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    if (this.pc !== pc || this.state === 'closed') return;
    this._addLocal(pc, localStream);
    const munge = !applyCodecPreferences(pc);
    const answer = await pc.createAnswer();
    if (munge) answer.sdp = preferH264InSdp(answer.sdp);
    if (this.pc !== pc || this.state === 'closed') return;
    await pc.setLocalDescription(answer);
    if (this.pc !== pc || this.state === 'closed') return;
    this._localSdp = pc.localDescription.sdp;
    this._video._send({ type: 'accept', call_id: this.callId, sdp: this._localSdp });
    this._openSignals();
    await this._drainInbox();
  }

  /// Glare: the server ended our call and hands us the other caller's call to answer.
  async _merge(into) {
    this._merged = true;
    this.callId = into.call_id;
    this.role = 'callee';
    this.remoteUid = into.from;
    this.data = into.data ?? null;
    this.policy = into.options?.ice_transport_policy === 'relay' ? 'relay' : 'all';
    this._remoteOffer = into.sdp || null;
    this._outbox = [];
    this._inbox = [];
    this.remoteMedia = { ...BOTH_MEDIA };
    this._toldMedia = BOTH_MEDIA;
    this._mediaConnected = false;
    this._video._conversation = this;
    await this._answer(this._remoteOffer, this.localStream);
  }

  _openSignals() {
    this._canSignal = true;
    const out = this._outbox;
    this._outbox = [];
    for (const signal of out) this._video._send({ type: 'signal', call_id: this.callId, signal });
  }

  _signal(signal) {
    if (this.state === 'closed') return;
    if (this._canSignal) this._video._send({ type: 'signal', call_id: this.callId, signal });
    else this._outbox.push(signal);
  }

  async _drainInbox() {
    const pending = this._inbox;
    this._inbox = [];
    for (const signal of pending) await this._applySignal(signal);
  }

  async _applySignal(signal) {
    const pc = this.pc;
    if (!pc || !pc.remoteDescription) { this._inbox.push(signal); return; }
    try {
      if (signal.kind === 'candidate') {
        await pc.addIceCandidate({
          candidate: signal.candidate,
          sdpMid: signal.sdp_mid ?? null,
          sdpMLineIndex: signal.sdp_mline_index ?? null,
        });
      } else if (signal.kind === 'end_of_candidates') {
        await pc.addIceCandidate();
      } else if (signal.kind === 'description') {
        await pc.setRemoteDescription({ type: signal.sdp_type, sdp: signal.sdp });
        if (signal.sdp_type === 'offer') {
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          this._signal({ kind: 'description', sdp_type: 'answer', sdp: pc.localDescription.sdp });
        }
      }
    } catch (e) {
      console.warn('duet: applying a remote signal failed', signal, e);
    }
  }

  _onMessage(msg) {
    switch (msg.type) {
      case 'ringing':
        this._emit('ringing');
        return;
      case 'signal':
        if (msg.signal?.kind === 'media') this._onRemoteMedia(msg.signal);
        else this._applySignal(msg.signal);
        return;
      case 'closed':
        this._end(msg.reason, true);
        return;
      case 'response':
        this._onResponse(msg);
        return;
    }
  }

  async _onResponse(msg) {
    const status = String(msg.status || '').toUpperCase();
    if (msg.status === 'accepted') {
      if (this.state === 'active') return; // a repeat after a reconnect
      if (this.role === 'caller') {
        this._setState('active');
        this._emit('response', status);
        if (msg.sdp && this.pc) {
          try {
            await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
          } catch (e) {
            this._emit('error', e);
            return;
          }
          await this._drainInbox();
        }
      } else {
        this._setState('active');
        if (this._merged) this._emit('response', status);
        for (const w of this._acceptWaiters.splice(0)) w.resolve(this);
      }
      return;
    }
    // rejected | busy | timeout: the call is over.
    this._emit('response', status);
    this._end(msg.status, true);
  }

  /// The other party's camera or microphone went off or on (or it said at the start of the
  /// call that it sends less than both). Needs no peer connection: it may come first.
  _onRemoteMedia(signal) {
    const now = { video: signal.video !== false, audio: signal.audio !== false };
    if (sameMedia(now, this.remoteMedia)) return;
    this.remoteMedia = now;
    this._emit('remote_media', { ...now });
  }

  /// The call is established: the other party can now hear what this side sends, if that
  /// is not the both it assumes (a stream without a camera, a microphone muted before).
  _onMediaConnected() {
    if (this._mediaConnected) return;
    this._mediaConnected = true;
    this._tellMedia();
  }

  /// Sends `media` when what this side sends differs from what the other party was told.
  _tellMedia() {
    if (!this._mediaConnected || this.state === 'closed') return;
    const now = this.localMedia;
    if (sameMedia(now, this._toldMedia)) return;
    this._toldMedia = now;
    this._signal({ kind: 'media', video: now.video, audio: now.audio });
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', state);
  }

  _closePc() {
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = null;
      try { pc.close(); } catch (_) { /* closed */ }
    }
  }

  /// Ends the conversation locally; `notify` emits 'closed' with `reason`.
  _end(reason, notify) {
    if (this.state === 'closed') return;
    this._setState('closed');
    this._closePc();
    this._video._forget(this);
    for (const w of this._acceptWaiters.splice(0)) {
      w.reject(new DuetError(reason || 'closed', 'the call ended before it was accepted', this.callId));
    }
    if (notify) this._emit('closed', reason);
  }

  _fail(err) {
    this._emit('error', err);
    this.close();
  }
}

export const Duet = { connect, websocketUrl, Video, Conversation, DuetError };
export default Duet;
