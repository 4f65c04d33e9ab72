package dev.duet

import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.rules.TestWatcher
import org.junit.runner.Description
import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * The `duet` binary: `-Dduet.bin=PATH`, else `$DUET_BIN`, else `target/debug/duet` in the
 * first directory up from the working directory that has one.
 */
object DuetBinary {
    val path: String by lazy {
        System.getProperty("duet.bin")?.takeIf { it.isNotEmpty() }
            ?: System.getenv("DUET_BIN")?.takeIf { it.isNotEmpty() }
            ?: generateSequence(File(System.getProperty("user.dir")).absoluteFile) { it.parentFile }
                .map { File(it, "target/debug/duet") }
                .firstOrNull { it.canExecute() }?.path
            ?: error("no duet binary: build it (cargo build -p duet-cli) or pass -Dduet.bin=PATH")
    }

    /** Runs `duet ARGS` to completion and returns its stdout, trimmed. */
    fun run(vararg args: String): String {
        val process = ProcessBuilder(listOf(path) + args)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .also { devEnvironment(it) }
            .start()
        val out = process.inputStream.bufferedReader().readText()
        check(process.waitFor(10, TimeUnit.SECONDS)) { "duet ${args.joinToString(" ")} did not finish" }
        check(process.exitValue() == 0) { "duet ${args.joinToString(" ")} exited ${process.exitValue()}" }
        return out.trim()
    }

    /** Development mode: no secret from the caller's environment, so tokens and server agree. */
    fun devEnvironment(builder: ProcessBuilder) {
        builder.environment().keys.removeAll { it.startsWith("DUET_") }
    }
}

/**
 * A `duet serve` of the test's own, on loopback with ephemeral ports (signaling and TURN)
 * and a 1 s ring timeout. Development mode: `duet token` mints tokens it accepts.
 */
class DuetServer private constructor(private val process: Process, val url: String) : AutoCloseable {
    fun token(uid: String): String = DuetBinary.run("token", "--uid", uid)

    fun config(uid: String) = ClientConfig(
        serverUrl = url,
        token = token(uid),
        deviceId = null,
        bindAddresses = listOf("127.0.0.1:0"),
    )

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
    }

    companion object {
        private val LISTENING = Regex("""duet-server listening on (http://\S+)""")

        fun start(ringTimeoutSeconds: Int = 1): DuetServer {
            val builder = ProcessBuilder(
                DuetBinary.path, "serve",
                "--listen", "127.0.0.1:0",
                "--turn-listen", "127.0.0.1:0",
                "--ring-timeout", ringTimeoutSeconds.toString(),
            ).redirectError(ProcessBuilder.Redirect.DISCARD)
            DuetBinary.devEnvironment(builder)
            val process = builder.start()
            val lines = LinkedBlockingQueue<String>()
            // Reads stdout for good, so the server never blocks on a full pipe.
            Thread({
                try {
                    BufferedReader(InputStreamReader(process.inputStream)).useLines { seq -> seq.forEach { lines.add(it) } }
                } catch (_: java.io.IOException) {
                    // The server was stopped.
                }
            }, "duet-serve-stdout").apply { isDaemon = true; start() }
            val first = lines.poll(10, TimeUnit.SECONDS)
            val url = first?.let { LISTENING.find(it)?.groupValues?.get(1) }
            if (url == null) {
                process.destroyForcibly()
                error("duet serve did not start (first line: $first)")
            }
            return DuetServer(process, url)
        }
    }
}

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

    override fun didReceiveCallWithConversation(conversation: Conversation, data: String?) {
        channel.trySend(Incoming(conversation, data))
    }

    override fun didChangeConnectionState(state: ConnectionState) {
        connectionStates.add(state)
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
        suspend fun connect(server: DuetServer, uid: String): Client {
            engineLogging
            val delegate = RecordingVideoCallDelegate()
            return Client(uid, VideoCall.connect(server.config(uid), delegate), delegate)
        }
    }
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
