package dev.duet.example.call

import dev.duet.CallStatus
import dev.duet.ClientConfig
import dev.duet.ConnectionState
import dev.duet.DuetServer
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import kotlin.time.Duration.Companion.milliseconds

/**
 * The app's screens as CallSession drives them, against a real development `duet serve`:
 * sign-in through a development token, calls answered, declined, cancelled, and the errors
 * the user reads.
 */
class CallSessionTest {
    private lateinit var server: DuetServer
    private val sessions = mutableListOf<CallSession>()

    @Before
    fun start() {
        server = DuetServer.start(ringTimeoutSeconds = 30)
    }

    @After
    fun stop() = runBlocking {
        sessions.forEach { it.signOut() }
        sessions.forEach { s -> s.awaitScreen<Screen.SignIn> { !it.busy } }
        server.close()
    }

    private fun session(media: LocalMedia = TestMedia()) = CallSession(
        media,
        // Loopback only: ICE then needs no network beyond this machine.
        clientConfig = { url, token -> ClientConfig(serverUrl = url, token = token, bindAddresses = listOf("127.0.0.1:0")) },
        statsInterval = 200.milliseconds,
    ).also { sessions += it }

    private suspend fun signedIn(uid: String, media: LocalMedia = TestMedia()): CallSession {
        val s = session(media)
        s.signIn(server.url, uid)
        assertEquals(uid, s.awaitScreen<Screen.Home>().uid)
        return s
    }

    @Test
    fun callAnsweredWithStatsThenHungUp() = runBlocking {
        val alice = signedIn("alice")
        val bobMedia = TestMedia()
        val bob = signedIn("bob", bobMedia)

        alice.call("bob", "hello")
        assertEquals(Screen.Outgoing("bob", "hello"), alice.awaitScreen<Screen.Outgoing>())
        assertEquals(Screen.Incoming("alice", "hello"), bob.awaitScreen<Screen.Incoming>())

        bob.accept()
        bob.awaitScreen<Screen.InCall> { it.remote != null }
        assertEquals("bob", alice.awaitScreen<Screen.InCall> { it.remote != null }.remoteUid)
        assertNotNull("bob plays alice's audio", bobMedia.playing)

        // The overlay's numbers: alice receives bob's synthetic 320x240 camera.
        val stats = withTimeout(10_000) { alice.stats.first { it != null && it.receivedWidth > 0u && it.receivedFps >= 1.0 } }!!
        assertTrue(StatsText.format(stats), StatsText.format(stats).startsWith("320×240"))

        // Camera off on bob's side: Duet tells alice, whose screen shows "no picture"
        // (InCallScreen) rather than bob's last frame; on again, the picture comes back.
        bobMedia.stream!!.setVideoEnabled(false)
        alice.awaitScreen<Screen.InCall> { !it.remoteVideoOn }
        bobMedia.stream!!.setVideoEnabled(true)
        alice.awaitScreen<Screen.InCall> { it.remoteVideoOn }

        alice.hangUp()
        assertNull(alice.awaitScreen<Screen.Home>().notice)
        assertEquals("alice hung up.", bob.awaitScreen<Screen.Home>().notice)
        assertNull("no stats out of a call", alice.stats.value)
        assertNull("the call's media is stopped", bobMedia.stream)
    }

    @Test
    fun declinedCallStaysOnTheCallingScreenToSaySo() = runBlocking {
        val alice = signedIn("alice")
        val bob = signedIn("bob")

        alice.call("bob", "")
        assertNull("blank data is not sent", bob.awaitScreen<Screen.Incoming>().data)
        bob.reject()
        assertNull(bob.awaitScreen<Screen.Home>().notice)

        val ended = alice.awaitScreen<Screen.Outgoing> { it.ended != null }
        assertEquals(CallStatus.REJECTED, ended.response)
        assertEquals("bob declined the call.", ended.ended)

        alice.dismiss()
        assertEquals("bob", alice.awaitScreen<Screen.Home>().callee)
    }

    @Test
    fun cancelWhileRinging() = runBlocking {
        val alice = signedIn("alice")
        val bob = signedIn("bob")

        alice.call("bob", "")
        bob.awaitScreen<Screen.Incoming>()
        alice.hangUp()
        assertNull(alice.awaitScreen<Screen.Home>().notice)
        assertEquals("alice cancelled the call.", bob.awaitScreen<Screen.Home>().notice)
    }

    @Test
    fun callingSomeoneOfflineSaysSo() = runBlocking {
        val alice = signedIn("alice", TestMedia(video = false))

        alice.call("nobody", "")
        val ended = alice.awaitScreen<Screen.Outgoing> { it.ended != null }
        assertTrue(ended.ended, ended.ended!!.startsWith("nobody is not online"))
    }

    @Test
    fun callingYourselfSaysSoOnTheHomeScreen() = runBlocking {
        val alice = signedIn("alice")

        // The engine refuses at once with InvalidArgument(CALLING_YOURSELF); the app says so by kind.
        alice.call("alice", "")
        assertEquals("You cannot call yourself.", alice.awaitScreen<Screen.Home> { it.notice != null }.notice)
    }

    @Test
    fun withNeitherPermissionACallStillReceives() = runBlocking {
        val alice = signedIn("alice")
        val bob = signedIn("bob", TestMedia(video = false, audio = false))

        alice.call("bob", "")
        bob.awaitScreen<Screen.Incoming>()
        bob.accept()
        bob.awaitScreen<Screen.InCall> { it.remote != null }
        withTimeout(10_000) { bob.stats.first { it != null && it.receivedWidth > 0u } }
        bob.hangUp()
        assertEquals("bob hung up.", alice.awaitScreen<Screen.Home>().notice)
    }

    @Test
    fun aLostServerIsShownAsReconnecting() = runBlocking {
        val alice = signedIn("alice")
        server.close()
        withTimeout(10_000) { alice.connection.first { it is ConnectionState.Reconnecting } }
        assertTrue("stays signed in, home", alice.screen.value is Screen.Home)
    }

    @Test
    fun aTokenRefusedOnReconnectSignsOutWithTheReason() = runBlocking {
        val alice = signedIn("alice")
        // The same address, another secret: alice's development token no longer verifies.
        val address = server.url.removePrefix("http://").trimEnd('/')
        server.close()
        server = DuetServer.start(ringTimeoutSeconds = 30, listen = address, secret = "another-secret")

        val signIn = alice.awaitScreen<Screen.SignIn>(timeoutMs = 20_000) { it.error != null }
        assertTrue(signIn.error, signIn.error!!.startsWith("The server no longer accepts your sign-in (UNAUTHORIZED"))
    }

    @Test
    fun signInErrorsAreShownOnTheSignInScreen() = runBlocking {
        val s = session()
        s.signIn("http://127.0.0.1:1", "alice")
        val unreachable = s.awaitScreen<Screen.SignIn> { it.error != null }
        assertTrue(unreachable.error, unreachable.error!!.startsWith("Cannot reach the server"))

        DuetServer.start(secret = "not-a-development-server").use { production ->
            s.signIn(production.url, "alice")
            val refused = s.awaitScreen<Screen.SignIn> { !it.busy && it.error != unreachable.error }
            assertTrue(refused.error, refused.error!!.startsWith("This server does not hand out development tokens"))
        }
    }
}

/** The session's next screen of type [S] that satisfies [test]. */
suspend inline fun <reified S : Screen> CallSession.awaitScreen(
    timeoutMs: Long = 10_000,
    crossinline test: (S) -> Boolean = { true },
): S = try {
    withTimeout(timeoutMs) { screen.first { it is S && test(it) } as S }
} catch (e: kotlinx.coroutines.TimeoutCancellationException) {
    throw AssertionError("no ${S::class.simpleName} screen within $timeoutMs ms (showing ${screen.value})")
}
