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
//   conversation.on('media_state', state => …);      // 'reconnecting' | 'peer_reconnecting' | 'connected'
//   conversation.on('network_quality', ({ local, remote }) => …); // 0 (nothing) to 5 (excellent)
//   video.networkChanged();                          // the page saw the network change
//
// Network changes: a call restarts ICE (protocol.md, ICE restart) when its media connection
// goes disconnected or failed, when the signaling connection comes back during the call, and
// when the page calls `networkChanged()` (say, on the window's 'online' event). 'media_state'
// says so; a call that stays down for `mediaTimeoutMs` (30 s) ends with 'error'
// 'network_lost' and 'closed' 'network_lost', which is not a hang-up.
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
// followed by 'closed' with the status in lower case, and an error that ends the call by
// 'closed' 'failed' (or 'unreachable', 'connection_lost'), so 'closed' always marks the end
// of a conversation ended by the other side, the server or a failure. `close()` itself
// emits nothing.
//
// Errors: every error duet.js reports is a DuetError with a `kind` to switch on (the native
// SDK's CallError, ActionError and ConnectError cases, in snake_case); the message is for
// people. See DuetError below for the kinds and the fields each carries.

const PROTOCOL_VERSION = 1;
const HELLO_TIMEOUT_MS = 10000;
/// How long past the server's `grace_ms` a lost connection may take to come back before this
/// side gives its calls up (the native engine's margin).
const GRACE_MARGIN_MS = 3000;
/// The close code of a draining server (protocol.md, Draining).
const CLOSE_DRAINING = 1012;
const BACKOFF_MIN_MS = 100;
// During a call: a ping every second, and the connection given up once a ping is
// unanswered and the server has been silent this long (docs/protocol.md, Keepalive).
const CALL_PING_MS = 1000;
const CALL_SILENCE_MS = 4000;
const BACKOFF_MAX_MS = 5000;
/// How long a call's media may stay down, ICE restarts and all, before the call ends
/// ('network_lost'); the native engine's `ReconnectPolicy::media_timeout`.
const MEDIA_TIMEOUT_MS = 30000;
/// How often the network quality levels are worked out (the native engine's period).
const QUALITY_PERIOD_MS = 2000;
/// The server's rate limit when a `welcome` states none (docs/protocol.md, Limits).
const DEFAULT_LIMITS = { messages_per_second: 20, message_burst: 60 };
/// How much later than sent the server may read a message (a busy server, a slow network).
/// The server's bucket counts arrivals: messages sent at the rate limit but delayed unevenly
/// arrive bunched, up to this much of the refill rate above the burst. The bucket here
/// keeps that much of its burst in reserve, so that they still fit.
const ARRIVAL_JITTER_MS = 500;
/// Errors after which reconnecting with the same token cannot help.
const FATAL_CODES = new Set(['unsupported_version', 'unauthorized', 'token_expired', 'replaced']);

/// The longest uid the server takes, in UTF-8 bytes (rust/protocol's MAX_UID_BYTES).
const MAX_UID_BYTES = 128;

/// Every error duet.js reports: switch on `kind`, never on the message. `callId` is set when
/// the error concerns one call. The subclass says where it comes from:
///
/// CallError, a conversation's 'error' event ('closed' follows when it ended the call):
///   'unreachable'             the callee has no device connected (`uid`); 'closed' 'unreachable'
///   'connection_lost'         the server stayed unreachable past its grace period, or refused to
///                             take this device back; 'closed' 'connection_lost'
///   'server'                  the server refused a message about the call (`code`, as in
///                             docs/protocol.md's error table); the Video's 'error' when it
///                             names no call (or is `rate_limited` for a call already gone)
///   'ice_failed'              no network path to the other party was found while the call was
///                             set up (iceConnectionState 'failed'); 'closed' 'failed'
///   'network_lost'            the media connection went down mid-call and ICE restarts did not
///                             bring it back within `mediaTimeoutMs`; 'closed' 'network_lost'
///   'dtls_failed'             a path was found but the encrypted session (DTLS-SRTP) failed
///                             (connectionState 'failed' while ICE did not); 'closed' 'failed'
///   'no_codec'                the two sides have no codec in common for `media` ('audio' or
///                             'video'); the call goes on with the other kind, and ends
///                             ('closed' 'failed') only when neither is left
///   'bad_remote_description'  the other party's offer or answer could not be used; 'closed' 'failed'
///   'media_setup'             the peer connection could not be set up otherwise; 'closed' 'failed'
///
/// ActionError, thrown by `call()` or rejecting the promise `accept()` returns:
///   'invalid_argument'        `argument`: 'uid' (empty, over 128 bytes, a control character),
///                             'calling_yourself' or 'data_too_long' (over `limits.max_data_bytes`)
///   'invalid_state'           `state`: 'not_the_callee' (accepting a call this side placed),
///                             'already_accepted'
///   'closed'                  `endReason`: why the call ended ('cancelled', 'local', …), or null
///                             when the Video is disconnected
///
/// ConnectError, rejecting `connect()` (and the Video's 'error' when a reconnect is refused):
///   'unreachable'             no WebSocket to the server, or it closed before `welcome`
///   'refused'                 the server said no (`code`: 'unauthorized', 'token_expired', …)
///   'timeout'                 no `welcome` within 10 s
export class DuetError extends Error {
  constructor(kind, message, fields = {}) {
    super(message || kind);
    this.name = 'DuetError';
    this.kind = kind;
    this.callId = fields.callId ?? null;
    Object.assign(this, fields);
  }
}

export class CallError extends DuetError {
  constructor(kind, message, fields) { super(kind, message, fields); this.name = 'CallError'; }
}

export class ActionError extends DuetError {
  constructor(kind, message, fields) { super(kind, message, fields); this.name = 'ActionError'; }
}

export class ConnectError extends DuetError {
  constructor(kind, message, fields) { super(kind, message, fields); this.name = 'ConnectError'; }
}

/// A server `error` message as a CallError 'server' (or, before `welcome`, a ConnectError
/// 'refused'), keeping its code.
function serverError(msg, Kind = CallError) {
  const kind = Kind === ConnectError ? 'refused' : 'server';
  const text = msg.message ? `${msg.code}: ${msg.message}` : msg.code;
  return new Kind(kind, text, { code: msg.code, callId: msg.call_id ?? null });
}

/// Why `call(remoteUid, …, {data})` cannot go out, as the server would see it: an ActionError
/// 'invalid_argument', or null.
function invalidCall(remoteUid, ownUid, data, limits) {
  const invalid = (argument, message) => new ActionError('invalid_argument', message, { argument });
  if (typeof remoteUid !== 'string' || remoteUid === '') return invalid('uid', 'uid is empty');
  if (new TextEncoder().encode(remoteUid).length > MAX_UID_BYTES) {
    return invalid('uid', `uid is longer than ${MAX_UID_BYTES} bytes`);
  }
  // Unicode's control characters (Cc), as the server's check.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(remoteUid)) return invalid('uid', 'uid contains a control character');
  if (remoteUid === ownUid) return invalid('calling_yourself', 'cannot call yourself');
  const maxData = limits?.max_data_bytes ?? 8192;
  if (data != null && new TextEncoder().encode(String(data)).length > maxData) {
    return invalid('data_too_long', `data is longer than ${maxData} bytes`);
  }
  return null;
}

/// Which transport of a failed peer connection failed: ICE (no path: 'ice_failed') or, with
/// a path, DTLS ('dtls_failed'); null while neither has.
export function transportFailure(pc) {
  if (pc.iceConnectionState === 'failed') return 'ice_failed';
  const dtls = [...pc.getSenders(), ...pc.getReceivers()].map(x => x.transport).find(Boolean);
  if (dtls?.state === 'failed' || pc.connectionState === 'failed') return 'dtls_failed';
  return null;
}

/// The media kinds an SDP answer turned down: an m= section with port 0 that is not merely
/// bundled into another (`a=bundle-only`) has no codec in common.
function rejectedKinds(sdp) {
  return (sdp || '').split(/\r?\n(?=m=)/).slice(1)
    .filter(section => /^m=(audio|video) 0 /.test(section) && !/\na=bundle-only/.test(section))
    .map(section => section.slice(2, 7));
}

/// The network quality level for a path with `loss` (0 to 1), `rttMs` and `jitterMs`: 5
/// excellent to 1 barely usable, from the E-model's simplified R factor and mean opinion
/// score, as the native engine works it out (rust/core/src/peer/quality.rs).
export function qualityLevel(loss, rttMs, jitterMs) {
  const latency = rttMs / 2 + 2 * jitterMs + 10;
  let r = latency < 160 ? 93.2 - latency / 40 : 93.2 - (latency - 120) / 10;
  r -= 2.5 * Math.min(Math.max(loss, 0), 1) * 100;
  r = Math.min(Math.max(r, 0), 100);
  const mos = 1 + 0.035 * r + 0.000007 * r * (r - 60) * (100 - r);
  if (mos >= 4.2) return 5;
  if (mos >= 4.0) return 4;
  if (mos >= 3.6) return 3;
  if (mos >= 3.1) return 2;
  return 1;
}

/// Both sides' levels from a stats report and the counters of the look before: this side's
/// from what it received since (0 when nothing came), the other party's from its receiver
/// reports (remote-inbound-rtp), or this side's when it sent none yet.
function qualityOf(report, before) {
  let received = 0, lost = 0, jitter = 0, rtt = 0, remote = null;
  report.forEach(s => {
    if (s.type === 'inbound-rtp') {
      received += s.packetsReceived || 0;
      lost += Math.max(s.packetsLost || 0, 0);
      jitter = Math.max(jitter, (s.jitter || 0) * 1000);
    } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      rtt = Math.max(rtt, (s.currentRoundTripTime || 0) * 1000);
    } else if (s.type === 'remote-inbound-rtp') {
      const r = { loss: s.fractionLost || 0, jitter: (s.jitter || 0) * 1000 };
      remote = remote ? { loss: Math.max(remote.loss, r.loss), jitter: Math.max(remote.jitter, r.jitter) } : r;
    }
  });
  const got = Math.max(received - before.received, 0);
  const gone = Math.max(lost - before.lost, 0);
  const local = got === 0 ? 0 : qualityLevel(gone / (got + gone), rtt, jitter);
  const far = remote ? qualityLevel(remote.loss, rtt, remote.jitter) : local;
  return { levels: { local, remote: far }, counts: { received, lost } };
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

/// One signed-in device. Events: 'called' (Conversation), 'error' (DuetError), 'disconnected',
/// 'reconnected'.
export class Video extends Emitter {
  constructor(serverUrl, token, options = {}) {
    super();
    this.url = websocketUrl(serverUrl);
    this.token = token;
    this.deviceId = options.deviceId || stableDeviceId();
    /// Whether a call ringing here (this user's only device) pre-connects: ICE and DTLS while
    /// it rings, nothing sent or shown before the accept, but the caller learns this device's
    /// candidates meanwhile (protocol.md, Pre-connect). `{preConnect: false}` turns it off.
    this.preConnect = options.preConnect !== false;
    this.uid = null;
    this.welcome = null;
    this._ws = null;
    this._closed = false;
    this._conversation = null;     // the one call this device is in (or is placing/ringing)
    this._calls = new Map();       // call id -> Conversation (current and ringing incoming)
    this._crossing = null;         // the id of a call from the uid we are calling, which our
                                   // invite crossed: the server merges ours into it (Glare)
    this._queue = [];              // messages not sent yet, in order: waiting for the
                                   // connection (flushed after welcome) or for the rate limit
    this._bucket = null;           // this connection's rate limit, from its welcome
    this._pumpTimer = null;        // the next send the rate limit allows
    this._pingTimer = null;
    this._keepaliveMs = 0;         // the server's keepalive_ms, from its welcome
    this._pingPeriod = 0;          // the period _pingTimer runs at now
    this._awaitingPong = false;
    this._lastHeard = 0;           // when the server was last heard from (Date.now())
    this._graceTimer = null;       // ends the calls when the connection stays lost too long
    this._nonce = 0;
    this._backoff = BACKOFF_MIN_MS;
    /// How long a call's media may stay down before the call ends ('network_lost').
    this.mediaTimeoutMs = options.mediaTimeoutMs ?? MEDIA_TIMEOUT_MS;
  }

  /// The device's network changed (an interface came or went, a new address): every call
  /// under way is reconnecting, and the signaling connection, bound to the old network and
  /// likely dead, is replaced at once rather than after the keepalive notices (about 5 s);
  /// its welcome restarts ICE on every call, as the native engine does.
  networkChanged() {
    for (const conv of [...this._calls.values()]) conv._markDown();
    if (this._ws) {
      this._backoff = BACKOFF_MIN_MS;
      try { this._ws.close(); } catch (_) { /* closing already */ }
    }
  }

  get iceServers() { return this.welcome?.ice_servers || []; }

  /// Places a call; ends the call this device is in, if any (the seed's rule). Throws an
  /// ActionError: 'invalid_argument' (a bad uid, calling yourself, data over the limit) or
  /// 'closed' once `disconnect()`ed.
  call(remoteUid, localStream, options = {}) {
    if (typeof options === 'string') options = { data: options };
    if (this._closed) throw new ActionError('closed', 'this device is disconnected', { endReason: null });
    const invalid = invalidCall(remoteUid, this.uid, options.data, this.welcome?.limits);
    if (invalid) throw invalid;
    for (const conv of [...this._calls.values()]) {
      // A call ringing here from the uid we now call is left to the server's glare rule: it
      // merges the two calls and tells us to answer that one. Not a pre-connected one: the
      // caller has applied its early answer, which a fresh answer could not replace, so it
      // is declined and our call rings as a new one (protocol.md, Glare).
      if (conv.role === 'callee' && conv.state === 'ringing' && conv.remoteUid === remoteUid
          && !conv._preconnecting) continue;
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
    clearTimeout(this._graceTimer);
    this._graceTimer = null;
    this._stopKeepalive();
    this._pump();
  }

  // ---- connection ----

  _open() {
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url);
      this._ws = ws;
      const timer = setTimeout(
        () => fail(new ConnectError('timeout', `no welcome within ${HELLO_TIMEOUT_MS / 1000} s`)), HELLO_TIMEOUT_MS);
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
        this._lastHeard = Date.now();
        this._awaitingPong = false;
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        if (!settled) {
          if (msg.type === 'welcome') {
            settled = true;
            clearTimeout(timer);
            this._onWelcome(msg);
            resolve(this);
          } else if (msg.type === 'error') {
            fail(serverError(msg, ConnectError));
          }
          return;
        }
        this._onMessage(msg);
      };
      ws.onerror = () => fail(new ConnectError('unreachable', `cannot connect to ${this.url}`));
      ws.onclose = ev => {
        if (!settled) { fail(new ConnectError('unreachable', `connection closed (${ev.code}) before welcome`)); return; }
        if (this._ws === ws) this._onDisconnected(ev);
      };
    });
  }

  _onWelcome(msg) {
    clearTimeout(this._graceTimer);
    this._graceTimer = null;
    const again = this.welcome !== null;
    this.welcome = msg;
    this.uid = msg.uid;
    this._backoff = BACKOFF_MIN_MS;
    this._startKeepalive(msg.keepalive_ms || 15000);
    this._bucket = newBucket(msg.limits);
    this._pump();
    // Signaling came back: what took it down has likely taken the media path too, and a
    // restart offer sent over the old connection may be lost (protocol.md, ICE restart).
    if (again) for (const conv of [...this._calls.values()]) conv._linkBack();
  }

  _onDisconnected(ev) {
    this._stopKeepalive();
    this._stopPump();
    this._ws = null;
    // A keepalive belongs to the connection that sent it; the rest waits for the next one.
    this._queue = this._queue.filter(m => m.type !== 'ping');
    if (this._closed) return;
    this._emit('disconnected', ev.code);
    // 1012: the server is draining (a restart); not a failure. Reconnect at once, the
    // backoff started over, and restate the calls to the next server (protocol.md, Draining).
    if (ev.code === CLOSE_DRAINING) this._backoff = BACKOFF_MIN_MS;
    // The server keeps this device's calls for `grace_ms`; past that (and a margin for the
    // reconnect under way), they are gone, as the native engine decides too.
    if (!this._graceTimer) {
      const graceMs = (this.welcome?.grace_ms ?? 20000) + GRACE_MARGIN_MS;
      this._graceTimer = setTimeout(() => { this._graceTimer = null; this._loseCalls(); }, graceMs);
    }
    this._reconnect();
  }

  /// The connection is lost for good, for the calls: each hears 'error' connection_lost, then
  /// 'closed' 'connection_lost'.
  _loseCalls() {
    for (const conv of [...this._calls.values()]) {
      conv._emit('error', new CallError('connection_lost', 'the connection to the server was lost', { callId: conv.callId }));
      conv._end('connection_lost', true);
    }
  }

  _reconnect() {
    const delay = this._backoff * (0.5 + Math.random() / 2);
    this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
    setTimeout(() => {
      if (this._closed) return;
      this._open().then(
        () => this._emit('reconnected'),
        err => {
          if (err instanceof ConnectError && FATAL_CODES.has(err.code)) {
            this._closed = true;
            clearTimeout(this._graceTimer);
            this._graceTimer = null;
            this._emit('error', err);
            this._loseCalls();
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

  // Keepalive (docs/protocol.md, Keepalive): a ping every keepalive_ms while idle; during a
  // call every second, the connection given up once a ping is unanswered and the server has
  // been silent for 4 s, so that a dead connection does not hold up the call's signaling.
  _startKeepalive(ms) {
    this._stopKeepalive();
    this._keepaliveMs = ms;
    this._lastHeard = Date.now();
    this._scheduleKeepalive();
  }

  _stopKeepalive() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    this._pingPeriod = 0;
    this._awaitingPong = false;
  }

  /// (Re)starts the ping timer at the period for now: idle or in a call.
  _scheduleKeepalive() {
    if (!this._keepaliveMs || !this._ws) return;
    const inCall = this._calls.size > 0;
    const period = inCall ? Math.min(CALL_PING_MS, this._keepaliveMs) : this._keepaliveMs;
    if (period === this._pingPeriod) return;
    clearInterval(this._pingTimer);
    this._pingPeriod = period;
    const silenceLimit = inCall
      ? Math.max(Math.min(CALL_SILENCE_MS, this._keepaliveMs), period)
      : this._keepaliveMs;
    this._pingTimer = setInterval(() => this._keepaliveTick(silenceLimit), period);
  }

  _keepaliveTick(silenceLimit) {
    if (this._awaitingPong) {
      // No pong yet: the connection is lost once the server has been silent long enough.
      if (Date.now() - this._lastHeard >= silenceLimit && this._ws) this._ws.close(4000, 'no pong');
      return;
    }
    // A ping the rate limit would refuse waits for the next tick rather than counting as sent.
    if (!this._canSend()) return;
    this._awaitingPong = true;
    this._send({ type: 'ping', nonce: ++this._nonce });
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
    this._scheduleKeepalive();
  }

  _forget(conv) {
    if (this._calls.get(conv.callId) === conv) this._calls.delete(conv.callId);
    if (this._conversation === conv) this._conversation = null;
    if (conv.role === 'caller') this._declineCrossing();
    this._scheduleKeepalive();
  }

  /// Our call was answered, or ended, without the server merging it into the call that
  /// crossed it: that call is declined as busy rather than left ringing unseen.
  _declineCrossing() {
    if (!this._crossing) return;
    this._send({ type: 'reject', call_id: this._crossing, busy: true });
    this._crossing = null;
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
        return;
      case 'welcome':
        return;
      case 'incoming':
        return this._onIncoming(msg);
      case 'merged':
        return this._onMerged(msg);
      case 'error': {
        const err = serverError(msg);
        const conv = msg.call_id && this._calls.get(msg.call_id);
        if (conv) conv._emit('error', err);
        else if (!msg.call_id || msg.code === 'rate_limited') this._emit('error', err);
        // Other errors about calls this device already dropped are expected (e.g. a
        // candidate that crossed a hang-up) and ignored; a dropped message never is.
        return;
      }
      default: {
        if (msg.type === 'closed' && msg.call_id === this._crossing) this._crossing = null;
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
    const mine = this._conversation;
    if (mine && mine.role === 'caller' && mine.state === 'ringing' && mine.remoteUid === msg.from
        && !this._crossing) {
      // Glare: our invite (sent, or still being made) reaches the server after this call
      // did, so the server merges ours into it; declining it as busy would end both.
      this._crossing = msg.call_id;
      return;
    }
    const ringing = [...this._calls.values()].some(c => c.role === 'callee' && c.state === 'ringing');
    if (this._busy() || ringing) {
      // One call at a time: decline as busy, without bothering the app.
      this._send({ type: 'reject', call_id: msg.call_id, busy: true });
      return;
    }
    this._adopt(conv);
    // Started before the app hears of the call, so that an accept from its handler waits for
    // the pre-connect instead of making a second peer connection.
    if (msg.preconnect && this.preConnect && msg.sdp) conv._preconnecting = conv._preconnect();
    this._emit('called', conv);
  }

  _onMerged(msg) {
    const conv = this._calls.get(msg.call_id);
    const into = msg.into;
    if (!conv || !into) return;
    if (this._crossing === into.call_id) this._crossing = null;
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

/// Sets the other party's offer or answer; a description the browser cannot use is a
/// CallError 'bad_remote_description'.
async function remoteDescription(pc, description, missing = 'no session description') {
  if (!description.sdp) throw new CallError('bad_remote_description', missing);
  try {
    await pc.setRemoteDescription(description);
  } catch (e) {
    throw new CallError('bad_remote_description', `the other party's ${description.type} is unusable: ${e.message || e}`);
  }
}

/// Turns every sender's encodings on or off: a caller sends nothing before the accept.
/// Browsers without `setParameters` send as soon as the connection is up.
async function setSending(pc, active) {
  for (const sender of pc.getSenders()) {
    if (!sender.track || !sender.getParameters || !sender.setParameters) continue;
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) continue;
    for (const e of params.encodings) e.active = active;
    try {
      await sender.setParameters(params);
    } catch (e) {
      console.warn('duet: could not turn the senders', active ? 'on' : 'off', e);
    }
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
/// ({video, audio}), 'closed' (reason), 'error' (CallError), 'state' (state),
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
    /// Why the call ended, once it has ('closed''s reason, or 'local' when this side ended it).
    this.closeReason = null;
    this.localStream = null;
    this.remoteStream = null;
    /// What the other party says it sends ('remote_media'); both until it says otherwise.
    this.remoteMedia = { ...BOTH_MEDIA };
    this.pc = null;
    this._toldMedia = BOTH_MEDIA;   // what the other party was told this side sends
    this._mediaConnected = false;   // media signals wait for the peer connection
    this._remoteOffer = remoteOffer || null;
    this._localSdp = null;
    this._acceptStream = null;      // what accept() was given, for a pre-connect under way
    this._sendingOff = null;        // the caller's senders being turned off until accepted
    this._preconnecting = null;     // the pre-connect under way (a promise), callee
    this._preconnected = false;     // its answer went out: the accept only adds the tracks
    this._earlyAnswered = false;    // the caller applied the callee's early answer
    this._heldStream = null;        // a remote stream that waits for the accept
    this._canSignal = false;        // local candidates wait until invite/accept is sent
    this._outbox = [];              // local signals waiting for that
    this._inbox = [];               // remote signals waiting for a remote description
    this._ringStart = Date.now();
    this._merged = false;
    this._acceptWaiters = [];
    this._everConnected = false;    // once media has flowed, a lost path is restarted
    this._downSince = null;         // when this side's media path went down (Date.now())
    this._peerDown = false;         // the other party said its path is down
    this._offering = false;         // a restart offer is out, unanswered (the caller's)
    this._again = false;            // another restart is due once it is answered
    this._mediaTimer = null;        // ends the call when the media stays down too long
    this._qualityTimer = null;
    /// The network quality levels, 0 (nothing gets through) to 5 (excellent): what this side
    /// receives (`local`) and what the other party receives (`remote`).
    this.networkQuality = null;
  }

  /// Accepts a ringing incoming call with `localStream`; resolves with this conversation once
  /// the server confirms this device's accept won. Rejects with an ActionError: 'closed' (with
  /// `endReason`) when the call is over, also when it ends before the server confirms;
  /// 'invalid_state' when this side placed the call or already accepted it.
  accept(localStream) {
    const refused = this._cannotAccept();
    if (refused) return Promise.reject(refused);
    const video = this._video;
    // One call at a time: accepting ends the call this device was in.
    if (video._conversation && video._conversation !== this) video._conversation.close();
    video._conversation = this;
    const done = new Promise((resolve, reject) => this._acceptWaiters.push({ resolve, reject }));
    this.state = 'accepting';
    this._acceptStream = localStream || null;
    const preconnecting = this._preconnecting || Promise.resolve();
    preconnecting
      .then(() => (this._preconnected ? this._acceptPreconnected(localStream) : this._answer(this._remoteOffer, localStream)))
      .catch(e => this._fail(e));
    return done;
  }

  _cannotAccept() {
    const fields = { callId: this.callId };
    if (this.state === 'closed') {
      return new ActionError('closed', `the call is over (${this.closeReason})`, { ...fields, endReason: this.closeReason });
    }
    if (this.role !== 'callee') {
      return new ActionError('invalid_state', 'only the callee can accept', { ...fields, state: 'not_the_callee' });
    }
    if (this.state !== 'ringing') {
      return new ActionError('invalid_state', 'the call is already accepted', { ...fields, state: 'already_accepted' });
    }
    return null;
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
        stream = this.remoteStream || this._heldStream || new MediaStream();
        stream.addTrack(ev.track);
      }
      // Pre-connected: the app gets the other party's stream once the call is accepted.
      if (this.state === 'ringing') {
        this._heldStream = stream;
        return;
      }
      if (this.remoteStream !== stream) {
        this.remoteStream = stream;
        this._emit('stream_received', stream);
      }
    };
    // ICE's state changes first when no path is found; the connection's when DTLS fails.
    const failedYet = () => {
      if (this.pc !== pc) return;
      // Once media has flowed, losing the path is the restart's to handle, not a failure.
      if (this._everConnected) return this._pathState(pc.iceConnectionState);
      const kind = transportFailure(pc);
      if (kind === 'ice_failed') this._fail(new CallError(kind, 'no network path to the other party (ICE failed)'));
      else if (kind) this._fail(new CallError(kind, 'the secure media session failed (DTLS)'));
    };
    pc.oniceconnectionstatechange = failedYet;
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      this._emit('connection_state', pc.connectionState);
      if (pc.connectionState === 'connected') {
        this._everConnected = true;
        this._startQuality(pc);
        this._onMediaConnected();
      }
      failedYet();
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
    if (!await this._describe(pc, 'offer')) return;
    // Nothing is sent before the callee accepts, even over a connection it pre-connected.
    // Not awaited before the invite: the connection cannot be up before the callee has
    // answered it, and the invite should not wait for the browser.
    this._sendingOff = setSending(pc, false);
    const invite = {
      type: 'invite',
      call_id: this.callId,
      to: this.remoteUid,
      options: { ice_transport_policy: this.policy, early_answer: true },
      sdp: this._localSdp,
    };
    if (this.data != null && this.data !== '') invite.data = String(this.data);
    this._ringStart = Date.now();
    this._video._send(invite);
    this._openSignals();
  }

  /// Makes and applies this side's offer or answer (H.264 first) and keeps its SDP; false if
  /// the call moved on meanwhile.
  async _describe(pc, type) {
    const munge = !applyCodecPreferences(pc);
    const description = type === 'offer' ? await pc.createOffer() : await pc.createAnswer();
    if (munge) description.sdp = preferH264InSdp(description.sdp);
    if (this.pc !== pc || this.state === 'closed') return false;
    await pc.setLocalDescription(description);
    if (this.pc !== pc || this.state === 'closed') return false;
    this._localSdp = pc.localDescription.sdp;
    return true;
  }

  /// Pre-connect (protocol.md): answers the offer while the call rings, without tracks, and
  /// sends the answer and candidates, so ICE and DTLS are done by the accept. The answer
  /// says send-and-receive, so the accept's tracks need no renegotiation.
  async _preconnect() {
    const pc = this._newPeerConnection();
    this._canSignal = false;
    await remoteDescription(pc, { type: 'offer', sdp: this._remoteOffer }, 'the caller sent no offer');
    if (this.pc !== pc || this.state === 'closed') return;
    // Accepted already (an app that answers at once): its tracks go in the answer itself.
    if (this.state === 'accepting') this._addLocal(pc, this._acceptStream);
    else for (const t of pc.getTransceivers()) t.direction = 'sendrecv';
    if (!await this._describe(pc, 'answer')) return;
    this._preconnected = true;
    const signal = { kind: 'description', sdp_type: 'answer', sdp: this._localSdp };
    this._video._send({ type: 'signal', call_id: this.callId, signal });
    this._openSignals();
    if (!this._codecsInCommon(this._localSdp)) return;
    // Not awaited: an accept waiting for this pre-connect need not wait for the caller's
    // candidates to be applied too (each signal's failure is handled where it is applied).
    this._drainInbox();
  }

  /// The accept of a pre-connected call: the local tracks go on the senders it already has.
  async _acceptPreconnected(localStream) {
    const pc = this.pc;
    if (!pc || this.state === 'closed') return;
    // Accepted while the pre-connect was under way: its tracks went in the answer.
    const attached = !!localStream && this.localStream === localStream;
    this.localStream = localStream || null;
    const tracks = localStream && !attached ? localStream.getTracks() : [];
    for (const t of pc.getTransceivers()) {
      const track = tracks.find(x => x.kind === t.receiver.track.kind);
      if (!track) continue;
      if (t.sender.setStreams) t.sender.setStreams(localStream);
      await t.sender.replaceTrack(track);
    }
    if (this.pc !== pc || this.state === 'closed') return;
    this._video._send({ type: 'accept', call_id: this.callId, sdp: this._localSdp });
    this._releaseHeldStream();
  }

  _releaseHeldStream() {
    if (!this._heldStream) return;
    this.remoteStream = this._heldStream;
    this._heldStream = null;
    this._emit('stream_received', this.remoteStream);
  }

  async _answer(offerSdp, localStream) {
    const pc = this._newPeerConnection();
    this.state = 'accepting';
    this._canSignal = false;
    await remoteDescription(pc, { type: 'offer', sdp: offerSdp }, 'the caller sent no offer');
    if (this.pc !== pc || this.state === 'closed') return;
    this._addLocal(pc, localStream);
    if (!await this._describe(pc, 'answer')) return;
    this._video._send({ type: 'accept', call_id: this.callId, sdp: this._localSdp });
    this._openSignals();
    if (!this._codecsInCommon(this._localSdp)) return;
    await this._drainInbox();
  }

  /// Tells 'no_codec' for each kind the answer `sdp` turned down; ends the call when it
  /// turned down every kind. False when it ended it.
  _codecsInCommon(sdp) {
    const rejected = rejectedKinds(sdp);
    for (const media of rejected) {
      this._emit('error', new CallError('no_codec', `no ${media} codec in common with the other party`,
        { media, callId: this.callId }));
    }
    const offered = (sdp.match(/^m=(audio|video) /gm) || []).length;
    if (rejected.length && rejected.length >= offered) {
      this._fail(new CallError('media_setup', 'no media kind in common with the other party'));
      return false;
    }
    return true;
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
    if (pc && this.role === 'caller' && this.state === 'ringing'
        && signal.kind === 'description' && signal.sdp_type === 'answer') {
      return this._applyEarlyAnswer(pc, signal.sdp);
    }
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
      } else if (signal.kind === 'description' && signal.sdp_type === 'offer') {
        // An ICE-restart offer: answered with the latest welcome's servers.
        this._peerReconnecting();
        this._useLatestServers(pc);
        await remoteDescription(pc, { type: 'offer', sdp: signal.sdp });
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        this._signal({ kind: 'description', sdp_type: 'answer', sdp: pc.localDescription.sdp });
        this._awaitNewPair(pc);
      } else if (signal.kind === 'description') {
        try {
          await remoteDescription(pc, { type: signal.sdp_type, sdp: signal.sdp });
        } finally {
          this._restartAnswered();
        }
      }
    } catch (e) {
      // A candidate that does not fit is harmless; an unusable description is the call's.
      if (e instanceof CallError) this._emit('error', e);
      else console.warn('duet: applying a remote signal failed', signal, e);
    }
  }

  /// The callee pre-connects: its answer comes while the call rings (once; repeats are
  /// ignored), and its candidates follow.
  async _applyEarlyAnswer(pc, sdp) {
    if (this._earlyAnswered) return;
    this._earlyAnswered = true;
    try {
      await remoteDescription(pc, { type: 'answer', sdp });
    } catch (e) {
      this._fail(e);
      return;
    }
    if (!this._codecsInCommon(sdp)) return;
    await this._drainInbox();
  }

  _onMessage(msg) {
    switch (msg.type) {
      case 'ringing':
        this._emit('ringing');
        return;
      case 'signal':
        if (msg.signal?.kind === 'media') this._onRemoteMedia(msg.signal);
        else if (msg.signal?.kind === 'reconnecting') this._onPeerReconnecting();
        else this._applySignal(msg.signal);
        return;
      case 'closed':
        if (msg.reason === 'unreachable') {
          this._emit('error', new CallError('unreachable', `${this.remoteUid} has no device connected`,
            { uid: this.remoteUid, callId: this.callId }));
        }
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
        this._video._declineCrossing();
        this._emit('response', status);
        const pc = this.pc;
        if (pc) (this._sendingOff || Promise.resolve()).then(() => setSending(pc, true));
        this._releaseHeldStream();
        // An early answer is applied already; the accept's copy of it is not news.
        if (msg.sdp && this.pc && !this._earlyAnswered) {
          try {
            await remoteDescription(this.pc, { type: 'answer', sdp: msg.sdp });
          } catch (e) {
            this._fail(e);
            return;
          }
          if (!this._codecsInCommon(msg.sdp)) return;
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

  // ---- ICE restart (protocol.md, ICE restart) and network quality ----

  /// ICE's state once media has flowed: down starts a restart, up ends one.
  _pathState(ice) {
    if (ice === 'disconnected' || ice === 'failed') this._pathLost(false);
    else if (ice === 'connected' || ice === 'completed') this._pathUp();
  }

  /// This side's path is down (or about to be, `force`: the network changed): tells the
  /// page and the other party the first time, and restarts ICE. Only the caller offers; a
  /// callee's 'reconnecting' asks the caller to.
  _pathLost(force) {
    if (this.state !== 'active' || !this.pc || !this._everConnected) return;
    const offering = this._offering;
    const newly = this._markDown();
    if (!newly && !force && offering) return;
    if (newly || this.role !== 'caller') this._signal({ kind: 'reconnecting' });
    if (this.role === 'caller') this._restartOffer();
  }

  /// Marks a call under way reconnecting ('media_state' the first time, and the media
  /// timeout starts); true if it was not already.
  _markDown() {
    if (this.state !== 'active' || !this.pc || !this._everConnected) return false;
    if (this._downSince !== null) return false;
    this._downSince = Date.now();
    this._peerDown = false;
    this._mediaTimer = setTimeout(() => {
      this._fail(new CallError('network_lost', 'the media connection was lost and did not recover'));
    }, this._video.mediaTimeoutMs);
    this._emit('media_state', 'reconnecting');
    return true;
  }

  _pathUp() {
    const wasDown = this._downSince !== null || this._peerDown;
    this._downSince = null;
    this._peerDown = false;
    clearTimeout(this._mediaTimer);
    this._mediaTimer = null;
    if (wasDown) this._emit('media_state', 'connected');
  }

  /// Signaling came back during the call: restart, offering anew (the old offer may be lost).
  _linkBack() {
    this._offering = false;
    this._pathLost(true);
  }

  _onPeerReconnecting() {
    if (this.state !== 'active' || !this.pc) return;
    this._peerReconnecting();
    if (this.role === 'caller') this._restartOffer();
  }

  /// The other party's path is down: the page hears it, unless this side's is down too.
  _peerReconnecting() {
    if (this._downSince !== null || this._peerDown) return;
    this._peerDown = true;
    this._emit('media_state', 'peer_reconnecting');
  }

  /// The next gathering uses the latest welcome's servers (fresh TURN credentials).
  _useLatestServers(pc) {
    try {
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this._video.iceServers });
    } catch (e) {
      console.warn('duet: could not update the ICE servers for a restart', e);
    }
  }

  async _restartOffer() {
    const pc = this.pc;
    if (!pc || this.state !== 'active') return;
    if (this._offering) { this._again = true; return; }
    this._offering = true;
    try {
      this._useLatestServers(pc);
      pc.restartIce();
      const offer = await pc.createOffer({ iceRestart: true });
      if (this.pc !== pc || this.state === 'closed') return;
      await pc.setLocalDescription(offer);
      if (this.pc !== pc || this.state === 'closed') return;
      this._signal({ kind: 'description', sdp_type: 'offer', sdp: pc.localDescription.sdp });
    } catch (e) {
      // The call stays down; the next trigger or the media timeout decides.
      console.warn('duet: ICE restart offer failed', e);
      this._offering = false;
    }
  }

  /// The answer to a restart offer was applied (or refused): another restart that was asked
  /// for meanwhile goes now.
  _restartAnswered() {
    this._offering = false;
    if (this.pc) this._awaitNewPair(this.pc);
    if (this._again) {
      this._again = false;
      this._restartOffer();
    }
  }

  /// A restart whose ICE never left 'connected' (Chromium keeps using the old pair while the
  /// new generation is checked) ends when the new generation's pair is selected.
  _awaitNewPair(pc) {
    const ice = [...pc.getSenders(), ...pc.getReceivers()]
      .map(x => x.transport?.iceTransport).find(Boolean);
    if (!ice) return;
    const onChange = () => {
      ice.removeEventListener('selectedcandidatepairchange', onChange);
      if (this.pc === pc && ['connected', 'completed'].includes(pc.iceConnectionState)) this._pathUp();
    };
    ice.addEventListener('selectedcandidatepairchange', onChange);
  }

  _startQuality(pc) {
    if (this._qualityTimer) return;
    let before = { received: 0, lost: 0 };
    this._qualityTimer = setInterval(async () => {
      if (this.pc !== pc) return;
      let report;
      try { report = await pc.getStats(); } catch (_) { return; }
      const { levels, counts } = qualityOf(report, before);
      before = counts;
      const last = this.networkQuality;
      this.networkQuality = levels;
      if (!last || last.local !== levels.local || last.remote !== levels.remote) {
        this._emit('network_quality', { ...levels });
      }
    }, QUALITY_PERIOD_MS);
  }

  _closePc() {
    clearTimeout(this._mediaTimer);
    this._mediaTimer = null;
    clearInterval(this._qualityTimer);
    this._qualityTimer = null;
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
      try { pc.close(); } catch (_) { /* closed */ }
    }
  }

  /// Ends the conversation locally; `notify` emits 'closed' with `reason` (null: this side
  /// ended it, 'local').
  _end(reason, notify) {
    if (this.state === 'closed') return;
    this.closeReason = reason || 'local';
    this._setState('closed');
    this._closePc();
    this._video._forget(this);
    for (const w of this._acceptWaiters.splice(0)) {
      w.reject(new ActionError('closed', `the call ended (${this.closeReason}) before it was accepted`,
        { endReason: this.closeReason, callId: this.callId }));
    }
    if (notify) this._emit('closed', reason);
  }

  /// The call failed on this side: 'error' with what (a CallError; anything else thrown while
  /// setting up the peer connection is 'media_setup'), the other party hears a hang-up, and
  /// 'closed' 'failed' follows, as the native engine does.
  _fail(err) {
    if (this.state === 'closed') return;
    const error = err instanceof CallError
      ? err
      : new CallError('media_setup', `media setup failed: ${err?.message || err}`);
    error.callId = this.callId;
    this._emit('error', error);
    this._video._send({ type: 'hangup', call_id: this.callId });
    this._end(error.kind === 'network_lost' ? 'network_lost' : 'failed', true);
  }
}

export const Duet = {
  connect, websocketUrl, transportFailure, Video, Conversation, DuetError, CallError, ActionError, ConnectError,
};
export default Duet;
