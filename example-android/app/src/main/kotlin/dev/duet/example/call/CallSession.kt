package dev.duet.example.call

import dev.duet.ActionException
import dev.duet.CallException
import dev.duet.CallOptions
import dev.duet.CallStats
import dev.duet.CallStatus
import dev.duet.ClientConfig
import dev.duet.ConnectException
import dev.duet.ConnectionState
import dev.duet.Conversation
import dev.duet.ConversationDelegate
import dev.duet.EndReason
import dev.duet.IceTransportPolicy
import dev.duet.MediaState
import dev.duet.PushException
import dev.duet.PushToken
import dev.duet.RemoteStream
import dev.duet.VideoCall
import dev.duet.VideoCallDelegate
import dev.duet.VideoCodecs
import dev.duet.connect
import dev.duet.fetchDevelopmentToken
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/**
 * The app's calling logic, one per process: signs in, places and answers calls, and says
 * which [screen] to show. Plain Kotlin, no Android classes, so the same code runs in JVM
 * tests against a real `duet serve`.
 *
 * Duet calls its delegates on its own threads; here every change of state runs on one
 * serial dispatcher, so the state machine needs no locks, and the UI only collects flows and
 * calls the action methods (from any thread; they return at once).
 */
@OptIn(ExperimentalCoroutinesApi::class)
class CallSession(
    private val media: LocalMedia,
    /** The client's configuration for a server URL and token (tests bind to loopback). */
    private val clientConfig: (serverUrl: String, token: String) -> ClientConfig =
        { url, token -> ClientConfig(serverUrl = url, token = token) },
    private val statsInterval: Duration = 1.seconds,
    /** This device's push token (FCM's), registered at each sign-in; null: none yet. */
    private val pushToken: () -> PushToken? = { null },
    /** The video codecs (the app passes MediaCodec's with OpenH264 behind); null: OpenH264. */
    private val videoCodecs: VideoCodecs? = null,
) {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default.limitedParallelism(1))

    private val screenFlow = MutableStateFlow<Screen>(Screen.SignIn())
    val screen: StateFlow<Screen> = screenFlow.asStateFlow()

    private val connectionFlow = MutableStateFlow<ConnectionState>(ConnectionState.Connected)
    /** The signaling connection; `Reconnecting` while a lost one is retried. */
    val connection: StateFlow<ConnectionState> = connectionFlow.asStateFlow()

    private val statsFlow = MutableStateFlow<CallStats?>(null)
    /** The call's stats, polled every [statsInterval] while in a call; null otherwise. */
    val stats: StateFlow<CallStats?> = statsFlow.asStateFlow()

    // Touched only on [scope]'s dispatcher.
    private var videoCall: VideoCall? = null
    private var conversation: Conversation? = null
    private var remote: RemoteStream? = null
    /** What the other side last said of its camera (Duet's didChangeRemoteMedia). */
    private var remoteVideoOn = true
    private var lastError: String? = null
    private var statsJob: Job? = null
    private var lastCallee = ""
    private var lastData = ""
    /** Bumped at each sign-in and sign-out, so that late events of an old client are ignored. */
    private var generation = 0

    init {
        media.onProblem = { problem -> scope.launch { warn(problem) } }
    }

    fun signIn(serverUrl: String, uid: String) = act {
        if ((screenFlow.value as? Screen.SignIn)?.busy != false) return@act
        screenFlow.value = Screen.SignIn(busy = true)
        val url = serverUrl.trim()
        val token = try {
            fetchDevelopmentToken(url, uid.trim())
        } catch (e: ConnectException.Refused) {
            screenFlow.value = Screen.SignIn(error = Messages.noDevelopmentTokens(e))
            return@act
        } catch (e: ConnectException) {
            screenFlow.value = Screen.SignIn(error = Messages.signInFailed(e))
            return@act
        }
        try {
            val connected = VideoCall.connect(clientConfig(url, token), Incoming(++generation), videoCodecs)
            videoCall = connected
            connectionFlow.value = ConnectionState.Connected
            screenFlow.value = Screen.Home(uid = connected.uid())
            registerPush()
        } catch (e: ConnectException) {
            screenFlow.value = Screen.SignIn(error = Messages.signInFailed(e))
        }
    }

    /** A new token from FCM (onNewToken): registered at once when signed in. */
    fun pushTokenChanged() = act { registerPush() }

    private suspend fun registerPush() {
        val client = videoCall ?: return
        val token = pushToken() ?: return
        try {
            client.registerPush(token)
        } catch (e: PushException) {
            val home = screenFlow.value as? Screen.Home ?: return
            screenFlow.value = home.copy(notice = "Calls will ring only while Duet is open: ${e.message}")
        }
    }

    /** Hangs up any call, disconnects, and goes back to the sign-in screen. */
    fun signOut() = act { disconnect(error = null) }

    fun call(remoteUid: String, data: String) = act {
        val client = videoCall ?: return@act
        val state = screenFlow.value
        if (state !is Screen.Home && !(state is Screen.Outgoing && state.ended != null)) return@act
        lastCallee = remoteUid.trim()
        lastData = data
        val customData = data.takeIf { it.isNotBlank() }
        val stream = media.start()
        try {
            val c = client.call(lastCallee, stream, CallOptions(data = customData, iceTransportPolicy = IceTransportPolicy.ALL))
            follow(c)
            screenFlow.value = Screen.Outgoing(lastCallee, customData)
        } catch (e: ActionException) {
            media.stop()
            home(notice = Messages.actionFailed(e))
        }
    }

    /** Cancels a ringing call or hangs up one under way. The other side hears it; this side does not. */
    fun hangUp() = act {
        systemCall?.let { call ->
            // The system's call screen owns it: hanging up there closes it everywhere.
            call.end()
            systemCallGone(call)
            return@act
        }
        conversation?.hangUp()
        endCall(notice = null)
    }

    // --- Calls answered on the system's call screen (dev.duet.push, woken by a push) -------

    /** A call that the system's call screen answered and the library runs; [end] hangs it up. */
    private class SystemCall(val remoteUid: String, val end: () -> Unit, val before: Screen)

    private var systemCall: SystemCall? = null

    /**
     * A call woken by a push and answered on the system's call screen ([SystemCallView]):
     * shown here in call, with its video once [systemCallStream] brings it. Ignored while
     * the app has a call of its own (Duet has one at a time; the library declines the other).
     */
    fun systemCallAnswered(remoteUid: String, end: () -> Unit) = act {
        if (conversation != null || systemCall != null) return@act
        systemCall = SystemCall(remoteUid, end, screenFlow.value)
        remote = null
        remoteVideoOn = true
        screenFlow.value = Screen.InCall(remoteUid)
    }

    /** The other side's media of the system call: drawn by the call view. */
    fun systemCallStream(stream: RemoteStream) = act {
        if (systemCall == null) return@act
        (screenFlow.value as? Screen.InCall)?.let { screenFlow.value = it.copy(remote = stream) }
    }

    /** The system call is over (either side hung up): back to where the app was. */
    fun systemCallEnded() = act { systemCall?.let { systemCallGone(it) } }

    private fun systemCallGone(call: SystemCall) {
        systemCall = null
        val before = call.before
        screenFlow.value = when {
            videoCall != null -> Screen.Home(videoCall!!.uid(), lastCallee, lastData, notice = null)
            before is Screen.SignIn -> before.copy(busy = false)
            else -> Screen.SignIn()
        }
    }

    fun accept() = act {
        val c = conversation ?: return@act
        if (screenFlow.value !is Screen.Incoming) return@act
        try {
            c.accept(media.start())
            enterCall(c.remoteUid())
        } catch (e: ActionException) {
            endCall(notice = Messages.actionFailed(e))
        }
    }

    fun reject() = act {
        val c = conversation ?: return@act
        try {
            c.reject()
        } catch (_: ActionException) {
            // Already over (the caller cancelled meanwhile): nothing left to decline.
        }
        endCall(notice = null)
    }

    /** Leaves the ended outgoing-call screen for home. */
    fun dismiss() = act {
        if ((screenFlow.value as? Screen.Outgoing)?.ended != null) home(notice = null)
    }

    private fun act(block: suspend () -> Unit) {
        scope.launch { block() }
    }

    // --- Duet's events, moved onto the session's dispatcher ---------------------------------

    private inner class Incoming(private val of: Int) : VideoCallDelegate {
        override fun didReceiveCallWithConversation(conversation: Conversation, data: String?) {
            scope.launch { if (of == generation) onIncoming(conversation, data) else conversation.close() }
        }

        override fun didChangeConnectionState(state: ConnectionState) {
            scope.launch { if (of == generation) onConnectionState(state) }
        }

        // This session connects only from the app's screen, never for a push (the
        // library's dev.duet.push does that), so no woken call ends here.
        override fun didEndWokenCall(callId: String, reason: EndReason?) {}
    }

    /** One per conversation, so that late events of a finished call are recognised and ignored. */
    private inner class Events(private val c: Conversation) : ConversationDelegate {
        override fun didReceiveResponse(status: CallStatus) {
            scope.launch { if (c === conversation) onResponse(c, status) }
        }

        override fun didReceiveStream(stream: RemoteStream) {
            scope.launch { if (c === conversation) onStream(stream) }
        }

        override fun didFailWithError(error: CallException) {
            scope.launch { if (c === conversation) onError(error) }
        }

        override fun didClose() {
            scope.launch { if (c === conversation) onClose(c) }
        }

        override fun didChangeRemoteMedia(videoEnabled: Boolean, audioEnabled: Boolean) {
            scope.launch { if (c === conversation) onRemoteMedia(videoEnabled) }
        }

        // The example shows neither a "reconnecting" banner nor signal bars yet.
        override fun didChangeMediaState(state: MediaState) {}
        override fun didChangeNetworkQuality(local: UByte, remote: UByte) {}
    }

    private fun onIncoming(c: Conversation, data: String?) {
        // The server answers BUSY for a device already in a call; this covers the moments
        // in between (e.g. a call arriving while this side's own call is being placed).
        if (conversation != null || videoCall == null) {
            try { c.reject() } catch (_: ActionException) {}
            c.close()
            return
        }
        follow(c)
        screenFlow.value = Screen.Incoming(c.remoteUid(), data)
    }

    private suspend fun onConnectionState(state: ConnectionState) {
        connectionFlow.value = state
        if (state is ConnectionState.Refused) {
            // Only a new token helps (VideoCall.updateToken); with development tokens that
            // means signing in again, which the user does from the sign-in screen.
            disconnect(error = Messages.tokenRefused(state))
        }
    }

    private fun onResponse(c: Conversation, status: CallStatus) {
        val state = screenFlow.value as? Screen.Outgoing ?: return
        if (status == CallStatus.ACCEPTED) enterCall(c.remoteUid())
        else screenFlow.value = state.copy(response = status) // didClose follows and says it ended
    }

    private fun onStream(stream: RemoteStream) {
        remote = stream
        media.play(stream)
        (screenFlow.value as? Screen.InCall)?.let { screenFlow.value = it.copy(remote = stream) }
    }

    private fun onRemoteMedia(videoOn: Boolean) {
        remoteVideoOn = videoOn
        (screenFlow.value as? Screen.InCall)?.let { screenFlow.value = it.copy(remoteVideoOn = videoOn) }
    }

    private fun onError(error: CallException) {
        lastError = Messages.callFailed(error)
        warn(lastError!!) // didClose follows if the error ended the call
    }

    private fun onClose(c: Conversation) {
        val uid = c.remoteUid()
        val message = Messages.ended(c.closeReason(), uid, lastError)
        val wasOutgoing = screenFlow.value as? Screen.Outgoing
        endCall(notice = message)
        if (wasOutgoing != null && message != null) {
            // Stay on the calling screen to show the answer, with "call again" there.
            screenFlow.value = wasOutgoing.copy(ended = message, warning = null)
        }
    }

    // --- Transitions ----------------------------------------------------------------------

    private fun follow(c: Conversation) {
        conversation = c
        remote = null
        remoteVideoOn = true
        lastError = null
        c.setDelegate(Events(c))
    }

    private fun enterCall(remoteUid: String) {
        screenFlow.value = Screen.InCall(remoteUid, remote, remoteVideoOn = remoteVideoOn)
        val c = conversation ?: return
        statsJob?.cancel()
        statsJob = scope.launch {
            while (true) {
                statsFlow.value = c.stats()
                delay(statsInterval)
            }
        }
    }

    private fun warn(problem: String) {
        when (val state = screenFlow.value) {
            is Screen.InCall -> screenFlow.value = state.copy(warning = problem)
            is Screen.Outgoing -> screenFlow.value = state.copy(warning = problem)
            else -> {}
        }
    }

    /** Lets go of the call (already hung up, rejected or closed) and its media; goes home. */
    private fun endCall(notice: String?) {
        statsJob?.cancel()
        statsJob = null
        statsFlow.value = null
        conversation?.close()
        conversation = null
        remote = null
        remoteVideoOn = true
        media.stop()
        if (videoCall != null) home(notice)
    }

    private fun home(notice: String?) {
        val uid = videoCall?.uid() ?: return
        screenFlow.value = Screen.Home(uid, lastCallee, lastData, notice)
    }

    private suspend fun disconnect(error: String?) {
        conversation?.hangUp()
        val client = videoCall
        videoCall = null
        generation++
        endCall(notice = null)
        client?.shutdown()
        client?.close()
        connectionFlow.value = ConnectionState.Connected
        screenFlow.value = Screen.SignIn(error = error)
    }
}
