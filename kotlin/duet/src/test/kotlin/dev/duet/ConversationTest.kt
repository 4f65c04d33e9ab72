package dev.duet

import com.sun.jna.Pointer
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Rule
import org.junit.Test
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.math.abs

/**
 * The generated Kotlin API against the real engine and a real `duet serve` on loopback:
 * the seed's lifecycle (call, didReceiveCallWithConversation, accept/reject, responses,
 * streams, close), errors as exceptions, and releasing objects.
 */
class ConversationTest {
    @get:Rule
    val timing = Timing()

    /** A decoded frame as a Kotlin sink copied it out of the engine. */
    class Copied(val width: Int, val height: Int, val bytes: ByteArray)

    /** A [VideoSink] written in Kotlin: copies each frame's bytes inside `frame.use {}`. */
    class CopyingSink(private val keep: Int = 8) : VideoSink {
        val frames = CopyOnWriteArrayList<Copied>()
        @Volatile var count = 0

        override fun onVideoFrame(frame: VideoFrame) {
            frame.use {
                val length = it.dataLen().toInt()
                val bytes = Pointer(it.dataAddress().toLong()).getByteArray(0, length)
                if (frames.size < keep) frames.add(Copied(it.width().toInt(), it.height().toInt(), bytes))
                count++
            }
        }
    }

    class RecordingAudioSink : AudioSink {
        val frames = CopyOnWriteArrayList<AudioFrame>()
        override fun onAudioFrame(frame: AudioFrame) {
            if (frames.size < 500) frames.add(frame)
        }
    }

    @Test
    fun cameraOffAndOnIsHeardByThePeer() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val camera = syntheticStream()
                    val call = connectedCall(alice, bob, camera = camera)
                    val atBob = call.bobRemote
                    val bobEvents = call.bobEvents
                    assertTrue(atBob.videoEnabled())

                    camera.setVideoEnabled(false)
                    eventually("bob hears alice's camera is off", lastSeen = { bobEvents.remoteMedia }) {
                        bobEvents.remoteMedia.toList() == listOf(false to true)
                    }
                    assertFalse(atBob.videoEnabled())
                    camera.setVideoEnabled(true)
                    eventually("bob hears it is on again", lastSeen = { bobEvents.remoteMedia }) {
                        bobEvents.remoteMedia.lastOrNull() == (true to true)
                    }
                    assertTrue(atBob.videoEnabled())
                    call.outgoing.hangUp()
                }
            }
        }
    }

    @Test
    fun fullCall() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    assertEquals("alice", alice.videoCall.uid())
                    assertTrue(alice.videoCall.isConnected())

                    // Caller: call(remoteUid, localStream, options) gives a conversation.
                    val aliceEvents = RecordingConversationDelegate()
                    val outgoing = alice.videoCall.call("bob", syntheticStream(), callOptions("custom-data"))
                    outgoing.setDelegate(aliceEvents)
                    assertEquals(ConversationState.CALLING, outgoing.state())
                    assertEquals("bob", outgoing.remoteUid())

                    // Callee: didReceiveCallWithConversation with the caller's data.
                    val incoming = bob.delegate.next()
                    assertEquals("custom-data", incoming.data)
                    val answer = incoming.conversation
                    assertEquals("alice", answer.remoteUid())
                    assertEquals(ConversationState.RINGING, answer.state())
                    assertEquals(outgoing.callId(), answer.callId())
                    val bobEvents = RecordingConversationDelegate()
                    answer.setDelegate(bobEvents)
                    answer.accept(syntheticStream())

                    // Caller hears ACCEPTED, then the stream; callee hears the stream.
                    assertEquals(Event.Response(CallStatus.ACCEPTED), aliceEvents.next())
                    val aliceRemote = (aliceEvents.next() as Event.Stream).stream
                    val bobRemote = (bobEvents.next() as Event.Stream).stream
                    assertEquals(listOf(Event.Response(CallStatus.ACCEPTED), Event.Stream(aliceRemote)), aliceEvents.all.toList())
                    assertEquals(outgoing.callId(), aliceRemote.callId())
                    val testThread = Thread.currentThread().name
                    assertFalse("events come on the engine's thread", (aliceEvents.threads + bobEvents.threads).contains(testThread))

                    // Synthetic frames reach a Kotlin VideoSink, both ways.
                    val aliceSees = CopyingSink()
                    val bobSees = CopyingSink()
                    aliceRemote.setVideoSink(aliceSees)
                    bobRemote.setVideoSink(bobSees)
                    eventually("8 frames each way") { aliceSees.frames.size >= 8 && bobSees.frames.size >= 8 }
                    for (sink in listOf(aliceSees, bobSees)) {
                        val frames = sink.frames.toList()
                        for (f in frames) {
                            assertEquals(320, f.width)
                            assertEquals(240, f.height)
                            assertEquals(320 * 240 * 3 / 2, f.bytes.size)
                        }
                        for (i in 1 until frames.size) {
                            assertFalse("frame $i repeats frame ${i - 1}", frames[i].bytes.contentEquals(frames[i - 1].bytes))
                        }
                    }
                    assertEquals(VideoSize(320u, 240u), aliceRemote.videoSize())
                    assertTrue(aliceRemote.framesDecoded() >= 8u)

                    // Audio: pulled by Alice, pushed to a sink for Bob; the tone is there.
                    eventually("non-silent audio pulled") {
                        val pcm = aliceRemote.pullAudio(480u)
                        assertEquals(480, pcm.size)
                        pcm.any { abs(it.toInt()) > 1000 }
                    }
                    val bobHears = RecordingAudioSink()
                    bobRemote.setAudioSink(bobHears)
                    eventually("non-silent audio pushed to a sink") {
                        bobHears.frames.any { f -> f.samples.size == 480 && f.samples.any { abs(it.toInt()) > 1000 } }
                    }

                    val stats = outgoing.stats()
                    assertNotNull(stats)
                    assertTrue("bytes received: ${stats!!.bytesReceived}", stats.bytesReceived > 0u)
                    assertTrue("frames decoded: ${stats.framesDecoded}", stats.framesDecoded > 0u)
                    assertEquals(CandidateType.HOST, stats.localCandidateType)

                    // hangUp: the other side hears didClose, reason HANGUP; this side hears nothing.
                    assertEquals(ConversationState.CONNECTED, outgoing.state())
                    outgoing.hangUp()
                    assertEquals(Event.Closed, bobEvents.next())
                    assertEquals(EndReason.HANGUP, answer.closeReason())
                    assertEquals(ConversationState.CLOSED, answer.state())
                    assertEquals(EndReason.LOCAL, outgoing.closeReason())
                    assertNull(aliceEvents.poll(300))
                    assertEquals(listOf(Event.Stream(bobRemote), Event.Closed), bobEvents.all.toList())
                }
            }
        }
    }

    @Test
    fun reject() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val aliceEvents = RecordingConversationDelegate()
                    val outgoing = alice.videoCall.call("bob", syntheticStream(), callOptions())
                    outgoing.setDelegate(aliceEvents)
                    val incoming = bob.delegate.next()
                    assertNull(incoming.data)
                    val bobEvents = RecordingConversationDelegate()
                    incoming.conversation.setDelegate(bobEvents)
                    incoming.conversation.reject()

                    assertEquals(Event.Response(CallStatus.REJECTED), aliceEvents.next())
                    assertEquals(Event.Closed, aliceEvents.next())
                    assertEquals(EndReason.REJECTED, outgoing.closeReason())
                    assertEquals(EndReason.LOCAL, incoming.conversation.closeReason())
                    assertNull("the side that rejected hears nothing", bobEvents.poll(300))
                }
            }
        }
    }

    @Test
    fun busy() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    Client.connect(server, "carol").use { carol ->
                        // Bob is in a call (ringing counts as in a call).
                        val first = alice.videoCall.call("bob", syntheticStream(), callOptions())
                        first.setDelegate(RecordingConversationDelegate())
                        val ringing = bob.delegate.next()
                        ringing.conversation.setDelegate(RecordingConversationDelegate())

                        val carolEvents = RecordingConversationDelegate()
                        val second = carol.videoCall.call("bob", syntheticStream(), callOptions("second"))
                        second.setDelegate(carolEvents)
                        assertEquals(Event.Response(CallStatus.BUSY), carolEvents.next())
                        assertEquals(Event.Closed, carolEvents.next())
                        assertEquals(EndReason.BUSY, second.closeReason())
                        assertNull("a busy callee is not rung again", bob.delegate.poll(300))
                        assertEquals(ConversationState.RINGING, ringing.conversation.state())
                        first.hangUp()
                    }
                }
            }
        }
    }

    @Test
    fun timeout() = runBlocking {
        DuetServer.start(ringTimeoutSeconds = 1).use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val aliceEvents = RecordingConversationDelegate()
                    val started = System.nanoTime()
                    val outgoing = alice.videoCall.call("bob", syntheticStream(), callOptions())
                    outgoing.setDelegate(aliceEvents)
                    val incoming = bob.delegate.next() // kept, never answered
                    val bobEvents = RecordingConversationDelegate()
                    incoming.conversation.setDelegate(bobEvents)

                    assertEquals(Event.Response(CallStatus.TIMEOUT), aliceEvents.next(5_000))
                    val rang = (System.nanoTime() - started) / 1_000_000
                    assertTrue("rang $rang ms, the ring timeout is 1 s", rang in 800..4_000)
                    assertEquals(Event.Closed, aliceEvents.next())
                    assertEquals(EndReason.TIMEOUT, outgoing.closeReason())
                    assertEquals(Event.Closed, bobEvents.next())
                    assertEquals(EndReason.TIMEOUT, incoming.conversation.closeReason())
                }
            }
        }
    }

    @Test
    fun hangUpWhileRinging() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val aliceEvents = RecordingConversationDelegate()
                    val outgoing = alice.videoCall.call("bob", syntheticStream(), callOptions())
                    outgoing.setDelegate(aliceEvents)
                    val incoming = bob.delegate.next()
                    val bobEvents = RecordingConversationDelegate()
                    incoming.conversation.setDelegate(bobEvents)

                    outgoing.hangUp()
                    assertEquals(Event.Closed, bobEvents.next())
                    assertEquals(EndReason.CANCELLED, incoming.conversation.closeReason())
                    assertEquals(EndReason.LOCAL, outgoing.closeReason())
                    assertNull(aliceEvents.poll(300))
                }
            }
        }
    }

    @Test
    fun developmentTokenSignsInAndALostServerIsHeard() = runBlocking {
        val server = DuetServer.start()
        val token = fetchDevelopmentToken(server.url, "alice")
        val delegate = RecordingVideoCallDelegate()
        VideoCall.connect(server.config("alice").copy(token = token), delegate).use { alice ->
            assertEquals("alice", alice.uid())
            server.close()
            eventually("the delegate hears the connection go", lastSeen = { delegate.connectionStates }) {
                delegate.connectionStates.firstOrNull() == ConnectionState.Reconnecting
            }
        }
        val e = runCatching { fetchDevelopmentToken(server.url, "alice") }.exceptionOrNull()
        assertTrue("expected ConnectException.Unreachable, got $e", e is ConnectException.Unreachable)
        // toString() is the engine's message, not a dump of the fields.
        assertTrue(e.toString(), e.toString().startsWith("cannot reach the server"))
    }

    @Test
    fun forgedTokenIsAConnectException() = runBlocking {
        DuetServer.start().use { server ->
            val real = server.token("mallory")
            val forged = real.dropLast(2) + (if (real.endsWith("AA")) "BB" else "AA")
            for (token in listOf(forged, "not-a-token")) {
                try {
                    VideoCall.connect(server.config("mallory").copy(token = token), RecordingVideoCallDelegate()).close()
                    fail("connect with token $token succeeded")
                } catch (e: ConnectException.Refused) {
                    assertEquals(ServerErrorCode.UNAUTHORIZED, e.code)
                }
            }
            // Nobody listening: Unreachable, also a ConnectException.
            val closedPort = DuetServer.start().use { it.url }
            val e = runCatching {
                withTimeout(15_000) { VideoCall.connect(server.config("x").copy(serverUrl = closedPort), RecordingVideoCallDelegate()) }
            }.exceptionOrNull()
            assertTrue("expected ConnectException, got $e", e is ConnectException)
        }
    }

    @Test
    fun callingYourselfIsAnActionException() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                try {
                    alice.videoCall.call("alice", syntheticStream(), callOptions())
                    fail("calling yourself succeeded")
                } catch (e: ActionException) {
                    assertTrue("got $e", e is ActionException.InvalidArgument)
                    assertEquals(InvalidArgumentKind.CALLING_YOURSELF, (e as ActionException.InvalidArgument).kind)
                }
                try {
                    alice.videoCall.call("", syntheticStream(), callOptions())
                    fail("calling an empty uid succeeded")
                } catch (e: ActionException.InvalidArgument) {
                    assertEquals(InvalidArgumentKind.UID, e.kind)
                }
            }
        }
    }

    /** What an app does with an [ActionException]: `when` on its class and kind, never on its text. */
    private fun kindOf(action: () -> Unit): String = try {
        action()
        "no error"
    } catch (e: ActionException) {
        when (e) {
            is ActionException.InvalidArgument -> "invalid argument ${e.kind}"
            is ActionException.InvalidState -> "invalid state ${e.kind}"
            is ActionException.Closed -> "closed ${e.endReason}"
        }
    }

    @Test
    fun anAppSwitchesOnTheActionExceptionsKind() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val call = connectedCall(alice, bob)
                    assertEquals("invalid state ALREADY_ACCEPTED", kindOf { call.incoming.accept(syntheticStream()) })
                    assertEquals("invalid state NOT_RINGING", kindOf { call.incoming.reject() })
                    call.outgoing.hangUp()
                    assertEquals(Event.Closed, call.bobEvents.next())
                    // The callee's accept now says the call is over, and why.
                    assertEquals("closed HANGUP", kindOf { call.incoming.accept(syntheticStream()) })
                    assertEquals(
                        "invalid argument CALLING_YOURSELF",
                        kindOf { alice.videoCall.call("alice", syntheticStream(), callOptions()) },
                    )
                }
            }
        }
    }

    @Test
    fun acceptAfterCloseIsAnActionException() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val outgoing = alice.videoCall.call("bob", syntheticStream(), callOptions())
                    outgoing.setDelegate(RecordingConversationDelegate())
                    val incoming = bob.delegate.next()
                    val bobEvents = RecordingConversationDelegate()
                    incoming.conversation.setDelegate(bobEvents)
                    outgoing.hangUp()
                    assertEquals(Event.Closed, bobEvents.next())

                    // Too late, and the error says why: the caller cancelled.
                    val e = runCatching { incoming.conversation.accept(syntheticStream()) }.exceptionOrNull()
                    assertTrue("expected ActionException, got $e", e is ActionException)
                    assertEquals(EndReason.CANCELLED, (e as? ActionException.Closed)?.endReason)
                    val r = runCatching { incoming.conversation.reject() }.exceptionOrNull()
                    assertTrue("expected ActionException, got $r", r is ActionException)
                    assertEquals(EndReason.CANCELLED, (r as? ActionException.Closed)?.endReason)
                    // Accepting your own outgoing call does not fit its state either; this
                    // side ended it, so it is closed with reason LOCAL.
                    val own = runCatching { outgoing.accept(syntheticStream()) }.exceptionOrNull()
                    assertTrue("expected ActionException, got $own", own is ActionException)
                    assertEquals(EndReason.LOCAL, (own as? ActionException.Closed)?.endReason)
                }
            }
        }
    }

    @Test
    fun shutdownHangsUp() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val call = connectedCall(alice, bob)
                    bob.videoCall.shutdown()
                    assertEquals(Event.Closed, call.aliceEvents.next())
                    assertEquals(EndReason.HANGUP, call.outgoing.closeReason())
                    assertFalse(bob.videoCall.isConnected())
                    assertEquals(ConversationState.CLOSED, call.incoming.state())
                    val e = runCatching { bob.videoCall.call("alice", syntheticStream(), callOptions()) }.exceptionOrNull()
                    assertTrue("calling after shutdown: expected ActionException, got $e", e is ActionException)
                    // Closed with no end reason: the client is gone, not one call.
                    assertTrue("calling after shutdown: got $e", e is ActionException.Closed && e.endReason == null)
                }
            }
        }
    }

    @Test
    fun closingTheVideoCallHangsUp() = runBlocking {
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val call = connectedCall(alice, bob)
                    // AutoCloseable: destroys the Rust object, which hangs up and disconnects,
                    // even though the app still holds Bob's conversation and stream.
                    bob.videoCall.close()
                    assertEquals(Event.Closed, call.aliceEvents.next())
                    assertEquals(EndReason.HANGUP, call.outgoing.closeReason())
                    assertEquals(ConversationState.CLOSED, call.incoming.state())
                    // A destroyed object refuses further use instead of crashing.
                    val e = runCatching { bob.videoCall.uid() }.exceptionOrNull()
                    assertTrue("using a closed VideoCall: got $e", e is IllegalStateException)
                }
            }
        }
    }

    @Test
    fun framesCopiedInsideUseAreStable() = runBlocking {
        // The lifetime rule: bytes read at dataAddress while the frame is alive are the
        // frame's; reading twice inside use {} gives the same bytes.
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val call = connectedCall(alice, bob)
                    val pairs = CopyOnWriteArrayList<Pair<ByteArray, ByteArray>>()
                    call.aliceRemote.setVideoSink(object : VideoSink {
                        override fun onVideoFrame(frame: VideoFrame) = frame.use {
                            val p = Pointer(it.dataAddress().toLong())
                            val n = it.dataLen().toInt()
                            assertEquals(it.vOffset().toLong() + it.chromaWidth().toLong() * it.chromaHeight().toLong(), n.toLong())
                            val first = p.getByteArray(0, n)
                            Thread.sleep(5)
                            if (pairs.size < 3) pairs.add(first to p.getByteArray(0, n))
                        }
                    })
                    eventually("3 frames") { pairs.size >= 3 }
                    call.aliceRemote.setVideoSink(null)
                    for ((a, b) in pairs) assertArrayEquals(a, b)
                    call.outgoing.hangUp()
                    assertEquals(Event.Closed, call.bobEvents.next())
                }
            }
        }
    }
}
