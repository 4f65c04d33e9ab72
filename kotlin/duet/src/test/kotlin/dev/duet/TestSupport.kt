package dev.duet

import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.Assert.assertEquals
import org.junit.rules.TestWatcher
import org.junit.runner.Description
import java.util.concurrent.CopyOnWriteArrayList

/** What a [ConversationDelegate] heard, in order. */
sealed class Event {
    data class Response(val status: CallStatus) : Event()
    data class Stream(val stream: RemoteStream) : Event()
    data class Failed(val error: CallException) : Event()
    object Closed : Event() { override fun toString() = "Closed" }
}

/** A conversation delegate that records every event, for [next] to await. */
class RecordingConversationDelegate : ConversationDelegate {
    private val channel = Channel<Event>(Channel.UNLIMITED)
    val all = CopyOnWriteArrayList<Event>()
    val threads = CopyOnWriteArrayList<String>()

    private fun record(event: Event) {
        threads.add(Thread.currentThread().name)
        all.add(event)
        channel.trySend(event)
    }

    override fun didReceiveResponse(status: CallStatus) = record(Event.Response(status))
    override fun didReceiveStream(stream: RemoteStream) = record(Event.Stream(stream))
    override fun didFailWithError(error: CallException) = record(Event.Failed(error))
    override fun didClose() = record(Event.Closed)

    /** (video, audio) as [didChangeRemoteMedia] heard them, apart from [all]. */
    val remoteMedia = CopyOnWriteArrayList<Pair<Boolean, Boolean>>()
    override fun didChangeRemoteMedia(videoEnabled: Boolean, audioEnabled: Boolean) {
        remoteMedia.add(videoEnabled to audioEnabled)
    }

    /** The media states and quality levels heard, apart from [all]. */
    val mediaStates = CopyOnWriteArrayList<MediaState>()
    val qualities = CopyOnWriteArrayList<Pair<UByte, UByte>>()
    override fun didChangeMediaState(state: MediaState) { mediaStates.add(state) }
    override fun didChangeNetworkQuality(local: UByte, remote: UByte) { qualities.add(local to remote) }

    /** The next event, waiting at most [timeoutMs]; errors are skipped unless [keepErrors]. */
    suspend fun next(timeoutMs: Long = 10_000, keepErrors: Boolean = false): Event = try {
        withTimeout(timeoutMs) {
            var event = channel.receive()
            while (!keepErrors && event is Event.Failed) event = channel.receive()
            event
        }
    } catch (e: TimeoutCancellationException) {
        throw AssertionError("no conversation event within $timeoutMs ms (so far: $all)")
    }

    /** The next event if one comes within [timeoutMs], else null. */
    suspend fun poll(timeoutMs: Long): Event? = withTimeoutOrNull(timeoutMs) { channel.receive() }
}

class Incoming(val conversation: Conversation, val data: String?)

/** A video-call delegate that records incoming calls. */
class RecordingVideoCallDelegate : VideoCallDelegate {
    private val channel = Channel<Incoming>(Channel.UNLIMITED)
    val connectionStates = CopyOnWriteArrayList<ConnectionState>()
    /** `did_end_woken_call`s heard: (call id, reason). */
    val wokenEnded = CopyOnWriteArrayList<Pair<String, EndReason?>>()

    override fun didReceiveCallWithConversation(conversation: Conversation, data: String?) {
        channel.trySend(Incoming(conversation, data))
    }

    override fun didChangeConnectionState(state: ConnectionState) {
        connectionStates.add(state)
    }

    override fun didEndWokenCall(callId: String, reason: EndReason?) {
        wokenEnded.add(callId to reason)
    }

    suspend fun next(timeoutMs: Long = 10_000): Incoming = try {
        withTimeout(timeoutMs) { channel.receive() }
    } catch (e: TimeoutCancellationException) {
        throw AssertionError("no incoming call within $timeoutMs ms")
    }

    suspend fun poll(timeoutMs: Long): Incoming? = withTimeoutOrNull(timeoutMs) { channel.receive() }
}

/** `-Dduet.log=LEVEL` (e.g. `debug`, or `duet_core=debug,info`): the engine logs to stderr. */
private val engineLogging: Unit by lazy {
    System.getProperty("duet.log")?.takeIf { it.isNotEmpty() }?.let { initLogging(it) }
    Unit
}

/** A connected client with its recording delegate. */
class Client(val uid: String, val videoCall: VideoCall, val delegate: RecordingVideoCallDelegate) : AutoCloseable {
    override fun close() = videoCall.close()

    companion object {
        suspend fun connect(
            server: DuetServer,
            uid: String,
            videoCodecs: VideoCodecs? = null,
            tlsConnector: TlsConnector? = null,
        ): Client {
            engineLogging
            val delegate = RecordingVideoCallDelegate()
            return Client(uid, VideoCall.connect(server.config(uid), delegate, videoCodecs, tlsConnector), delegate)
        }
    }
}

/**
 * Alice calls Bob, Bob accepts; both have each other's stream. Holds both conversations:
 * one that nobody holds any more is hung up once the garbage collector frees it, so a test
 * keeps this until its call should end (hanging up at the end says so).
 */
class Call(
    val alice: Client, val bob: Client,
    val outgoing: Conversation, val incoming: Conversation,
    val aliceEvents: RecordingConversationDelegate, val bobEvents: RecordingConversationDelegate,
    val aliceRemote: RemoteStream, val bobRemote: RemoteStream,
)

/** [camera]: what Alice sends. */
suspend fun connectedCall(
    alice: Client, bob: Client, data: String? = null, camera: LocalStream = syntheticStream(),
): Call {
    val aliceEvents = RecordingConversationDelegate()
    val outgoing = alice.videoCall.call(bob.uid, camera, callOptions(data))
    outgoing.setDelegate(aliceEvents)
    val incoming = bob.delegate.next()
    val bobEvents = RecordingConversationDelegate()
    incoming.conversation.setDelegate(bobEvents)
    incoming.conversation.accept(syntheticStream())
    assertEquals(Event.Response(CallStatus.ACCEPTED), aliceEvents.next())
    val aliceRemote = (aliceEvents.next() as Event.Stream).stream
    val bobRemote = (bobEvents.next() as Event.Stream).stream
    return Call(alice, bob, outgoing, incoming.conversation, aliceEvents, bobEvents, aliceRemote, bobRemote)
}

fun syntheticStream(width: UInt = 320u, height: UInt = 240u): LocalStream =
    LocalStream.synthetic(StreamConstraints(audio = true, video = VideoConstraints(width, height, 30u, 600_000u)))

fun callOptions(data: String? = null) = CallOptions(data = data, iceTransportPolicy = IceTransportPolicy.ALL)

/**
 * Polls [condition] every 20 ms until it holds, failing with [what] (and what [lastSeen]
 * says then) after [timeoutMs].
 */
suspend fun eventually(
    what: String,
    timeoutMs: Long = 10_000,
    lastSeen: () -> Any? = { null },
    condition: () -> Boolean,
) {
    val deadline = System.nanoTime() + timeoutMs * 1_000_000
    while (!condition()) {
        if (System.nanoTime() > deadline) {
            throw AssertionError("timed out after $timeoutMs ms waiting for $what" + (lastSeen()?.let { " (last seen: $it)" } ?: ""))
        }
        delay(20)
    }
}

/** Prints each test's outcome and time, so the run's log shows where the time goes. */
class Timing : TestWatcher() {
    private var start = 0L
    override fun starting(description: Description) { start = System.nanoTime() }
    private fun took() = "%.2f s".format((System.nanoTime() - start) / 1e9)
    override fun succeeded(description: Description) = println("test-kotlin: PASS ${description.methodName} (${took()})")
    override fun failed(e: Throwable, description: Description) = println("test-kotlin: FAIL ${description.methodName} (${took()}): $e")
}
