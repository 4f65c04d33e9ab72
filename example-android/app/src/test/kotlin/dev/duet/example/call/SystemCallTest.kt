package dev.duet.example.call

import dev.duet.ClientConfig
import dev.duet.DuetServer
import dev.duet.FakePush
import dev.duet.PushToken
import dev.duet.RecordingVideoCallDelegate
import dev.duet.VideoCall
import dev.duet.connect
import dev.duet.eventually
import dev.duet.push.CallScreen
import dev.duet.push.CallScreenEndReason
import dev.duet.push.DuetCallCenter
import dev.duet.push.DuetPush
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.time.Duration.Companion.milliseconds

/**
 * The sample app woken by a push (its process started for it, nobody signed in): Bob's
 * phone registered its FCM token and went away; Alice calls; the server pushes to a fake
 * FCM ([FakePush]) and the message it received goes to [DuetPush.handleMessage], as the
 * app's FirebaseMessagingService passes it on. Bob answers on the system's call screen
 * (what Telecom's onAnswer does: `answer`, then `audioActivated`), and the call shows in
 * the app's own call view with Alice's media; hanging up there ends it for both.
 */
class SystemCallTest {
    private lateinit var fake: FakePush
    private lateinit var server: DuetServer
    private val sessions = mutableListOf<CallSession>()
    private val ended = CopyOnWriteArrayList<CallScreenEndReason>()
    private var center: DuetCallCenter? = null

    @Before
    fun start() {
        fake = FakePush.start()
        server = DuetServer.start(ringTimeoutSeconds = 30, extraArgs = fake.serveArgs)
    }

    @After
    fun stop() = runBlocking {
        DuetPush.install(null)
        center?.shutdown()
        sessions.forEach { it.signOut() }
        server.close()
        fake.close()
    }

    private fun loopback(config: ClientConfig) = config.copy(bindAddresses = listOf("127.0.0.1:0"))

    private fun session() = CallSession(
        TestMedia(),
        clientConfig = { url, token -> loopback(ClientConfig(serverUrl = url, token = token)) },
        statsInterval = 200.milliseconds,
    ).also { sessions += it }

    /** The system's call screen, as far as the test needs it: whether it was closed. */
    private inner class SystemScreen : CallScreen {
        override fun reportIncoming(id: String, caller: String, hasVideo: Boolean) {}
        override fun reportOutgoingStarted(id: String, callee: String) {}
        override fun reportOutgoingConnected(id: String) {}
        override fun reportEnded(id: String, reason: CallScreenEndReason) { ended.add(reason) }
    }

    @Test
    fun aCallWokenByAPushAndAnsweredOnTheSystemScreenShowsInTheAppsCallView() = runBlocking<Unit> {
        val phone = VideoCall.connect(loopback(server.config("bob")).copy(deviceId = "phone"), RecordingVideoCallDelegate())
        phone.registerPush(PushToken.Fcm("dGVzdA:APA91b-sample-phone"))
        phone.shutdown()
        phone.close()
        eventually("the phone's connection is closed", lastSeen = { server.metrics() }) {
            Regex("""(?m)^duet_connections_open 0$""").containsMatchIn(server.metrics())
        }

        // The app's process, started for the push: nobody signed in.
        val bob = session()
        val view = SystemCallView(bob, audio = null, end = { id -> center?.end(id) })
        val center = DuetCallCenter(SystemScreen(), view, makeStream = { TestMedia().start() }) { wokenFor ->
            loopback(server.config("bob")).copy(deviceId = "phone", wokenFor = wokenFor)
        }.also { center = it }
        DuetPush.install(center)

        val alice = session()
        alice.signIn(server.url, "alice")
        alice.awaitScreen<Screen.Home>()
        alice.call("bob", "")
        val push = fake.nextFcm()
        assertTrue(DuetPush.handleMessage(push.data))
        val id = push.data["duet_call_id"]!!

        // Answered on the system's screen.
        assertTrue(center.answer(id))
        center.audioActivated()
        val inCall = bob.awaitScreen<Screen.InCall> { it.remote != null }
        assertEquals("alice", inCall.remoteUid)
        alice.awaitScreen<Screen.InCall> { it.remote != null }

        // Hung up in the app's call view: over for Alice, and back to where the app was.
        bob.hangUp()
        bob.awaitScreen<Screen.SignIn>()
        alice.awaitScreen<Screen.Home>()
        assertTrue("the system's screen closed itself (it asked for the end)", ended.isEmpty())
    }
}
