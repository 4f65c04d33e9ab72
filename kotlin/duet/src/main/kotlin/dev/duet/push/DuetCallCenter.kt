package dev.duet.push

import dev.duet.ActionException
import dev.duet.CallException
import dev.duet.CallOptions
import dev.duet.CallStatus
import dev.duet.ClientConfig
import dev.duet.ConnectionState
import dev.duet.Conversation
import dev.duet.ConversationDelegate
import dev.duet.EndReason
import dev.duet.IceTransportPolicy
import dev.duet.MediaState
import dev.duet.LocalStream
import dev.duet.RemoteStream
import dev.duet.VideoCall
import dev.duet.VideoCallDelegate
import dev.duet.connect
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.util.UUID
import java.util.concurrent.Callable
import java.util.concurrent.Executors

/**
 * The platform-free heart of Duet's Android calling: a push in, the call screen told at
 * once, Duet connected for the call the push named, and the screen's actions turned into
 * Duet's. One call at a time, as Duet has.
 *
 * Everything after the first report runs on one thread of its own, which owns the state
 * below; Duet's delegate events and the screen's actions are moved onto it.
 *
 * [configFor] gives the config to connect with for the call a push named (`wokenFor`, to go
 * into [ClientConfig.wokenFor]) or for an outgoing call (null): the app's server URL, a
 * fresh token, its device id.
 */
class DuetCallCenter(
    private val screen: CallScreen,
    private val audio: CallAudio? = null,
    private val makeStream: () -> LocalStream,
    private val configFor: suspend (wokenFor: String?) -> ClientConfig,
) {
    private val thread = Executors.newSingleThreadExecutor { r -> Thread(r, "duet-call-center").apply { isDaemon = true } }
    private val dispatcher = thread.asCoroutineDispatcher()
    private val scope = CoroutineScope(SupervisorJob() + dispatcher)

    // Owned by `thread`.
    private var call: CallRecord? = null
    private var client: VideoCall? = null
    private var audioActive = false
    /** A woken call the user ended before Duet handed it over: rejected when it is. */
    private var declineNext: String? = null

    // --- Inputs from the push service -------------------------------------------------------

    /** Reports the call to the screen before returning, then connects for it. */
    fun handlePush(push: DuetPushMessage): Boolean {
        val id = screenId(push.callId)
        screen.reportIncoming(id, push.caller, hasVideo = true)
        scope.launch { ringFromPush(push, id) }
        return true
    }

    private suspend fun ringFromPush(push: DuetPushMessage, id: String) {
        if (call.let { it != null && it.id != id }) {
            screen.reportEnded(id, CallScreenEndReason.FAILED) // Duet has one call at a time.
            return
        }
        call = CallRecord(id, push.callId, push.caller, outgoing = false)
        try {
            connect(configFor(push.callId))
        } catch (e: Exception) {
            finish(push.callId, CallScreenEndReason.FAILED)
        }
    }

    /** On `thread`: replaces the client. */
    private suspend fun connect(config: ClientConfig) {
        client?.let { old ->
            client = null
            old.shutdown()
        }
        client = VideoCall.connect(config, ClientRelay())
    }

    // --- Inputs from the call screen ------------------------------------------------------

    /** The user answered. False if [id] is not the ringing call. */
    fun answer(id: String): Boolean = onThread {
        val c = call?.takeIf { it.id == id && !it.outgoing && !it.answered } ?: return@onThread false
        c.answered = true
        if (c.stream == null) c.stream = makeStream()
        applyMedia()
        val conversation = c.conversation
        if (conversation != null) accept(conversation, c.stream!!) // else when handed over
        true
    }

    /** The user declined a ringing call or hung up. False if [id] is not the call. */
    fun end(id: String): Boolean = onThread {
        val c = call?.takeIf { it.id == id } ?: return@onThread false
        c.conversation?.let { conversation ->
            if (!c.answered && !c.outgoing) {
                try { conversation.reject() } catch (_: ActionException) {}
            }
            conversation.hangUp()
        }
        declineNext = if (c.conversation == null && !c.outgoing) c.callId else null
        stopAudio(c)
        call = null
        true
    }

    fun setMuted(id: String, muted: Boolean): Boolean = update(id) { it.muted = muted }

    /** Hold: neither camera nor microphone reaches the other party until resumed. */
    fun setHeld(id: String, held: Boolean): Boolean = update(id) { it.held = held }

    /** The call's audio may start now (Telecom: the connection is active, the foreground service up). */
    fun audioActivated() = onThread {
        audioActive = true
        applyMedia()
        call?.takeIf { it.answered }?.let { startAudio(it) }
    }

    fun audioDeactivated() = onThread {
        audioActive = false
        applyMedia()
        call?.let { stopAudio(it) }
    }

    // --- Outgoing ------------------------------------------------------------------------------

    /** Calls [callee] and shows it on the call screen; returns the call's screen id. */
    suspend fun startCall(callee: String, data: String? = null): String = withContext(dispatcher) {
        if (client == null) connect(configFor(null))
        val videoCall = client ?: error("not connected")
        call?.conversation?.hangUp()
        val stream = makeStream()
        val conversation = videoCall.call(callee, stream, CallOptions(data, IceTransportPolicy.ALL))
        val c = CallRecord(UUID.randomUUID().toString(), conversation.callId(), callee, outgoing = true)
        c.conversation = conversation
        c.stream = stream
        call = c
        conversation.setDelegate(ConversationRelay(conversation))
        applyMedia()
        screen.reportOutgoingStarted(c.id, callee)
        c.id
    }

    /** The call the screen shows, once it has media. */
    val currentCall: CallHandle? get() = onThread { call?.handle() }

    /** Whether Duet has handed over the call the screen shows. */
    val callHandedOver: Boolean get() = onThread { call?.conversation != null }

    /** Hangs up and disconnects (after a woken call, once the app is done). */
    suspend fun shutdown(): Unit = withContext(dispatcher) {
        call = null
        client?.let { client = null; it.shutdown() }
    }

    // --- Duet's events (on `thread`) ----------------------------------------------------------

    private fun adopt(conversation: Conversation) {
        val callId = conversation.callId()
        if (callId != null && callId == declineNext) {
            declineNext = null
            try { conversation.reject() } catch (_: ActionException) {}
            conversation.hangUp()
            return
        }
        val c = call
        if (c == null) {
            // A call while connected (not woken): it rings as a pushed one would.
            val fresh = CallRecord(screenId(callId), callId, conversation.remoteUid(), outgoing = false)
            fresh.conversation = conversation
            call = fresh
            conversation.setDelegate(ConversationRelay(conversation))
            screen.reportIncoming(fresh.id, fresh.peer, hasVideo = true)
            return
        }
        if (c.callId != callId || c.conversation != null) {
            try { conversation.reject() } catch (_: ActionException) {} // busy with another
            conversation.hangUp()
            return
        }
        c.conversation = conversation
        conversation.setDelegate(ConversationRelay(conversation))
        if (c.answered) accept(conversation, c.stream ?: makeStream().also { c.stream = it })
    }

    private fun accepted(conversation: Conversation) {
        val c = call?.takeIf { it.conversation === conversation && it.outgoing } ?: return
        c.answered = true
        screen.reportOutgoingConnected(c.id)
        if (audioActive) startAudio(c)
    }

    private fun remoteStreamArrived(conversation: Conversation, stream: RemoteStream) {
        val c = call?.takeIf { it.conversation === conversation } ?: return
        c.remote = stream
        if (audioActive && c.answered) c.handle()?.let { audio?.play(it, stream) }
    }

    private fun closed(conversation: Conversation) {
        val c = call?.takeIf { it.conversation === conversation } ?: return
        finish(c.callId, screenReason(conversation.closeReason()))
    }

    private fun finish(callId: String?, reason: CallScreenEndReason) {
        val c = call?.takeIf { it.callId == callId } ?: return
        stopAudio(c)
        call = null
        // An incoming call that ended before it was answered here (the caller gave up, or
        // it timed out) shows as missed, whatever the remote did.
        val missed = !c.outgoing && !c.answered && reason == CallScreenEndReason.REMOTE_ENDED
        screen.reportEnded(c.id, if (missed) CallScreenEndReason.UNANSWERED else reason)
    }

    // --- Helpers (on `thread`) ------------------------------------------------------------------

    private fun accept(conversation: Conversation, stream: LocalStream) {
        try {
            conversation.accept(stream)
            // Answered on the lock screen, the system activates the audio at once, often
            // before Duet has handed the call over: its audio starts now, then.
            if (audioActive) call?.let { startAudio(it) }
        } catch (e: ActionException) {
            // Over already (cancelled as the user answered): its close reports the end.
            if (conversation.closeReason() == null) finish(call?.callId, CallScreenEndReason.FAILED)
        }
    }

    private fun update(id: String, change: (CallRecord) -> Unit): Boolean = onThread {
        val c = call?.takeIf { it.id == id } ?: return@onThread false
        change(c)
        applyMedia()
        true
    }

    /** The microphone reaches the other party only with audio active, unmuted, not held. */
    private fun applyMedia() {
        val c = call ?: return
        val stream = c.stream ?: return
        stream.setAudioEnabled(audioActive && !c.muted && !c.held)
        stream.setVideoEnabled(!c.held)
    }

    private fun startAudio(c: CallRecord) {
        val handle = c.handle() ?: return
        audio?.start(handle)
        c.remote?.let { audio?.play(handle, it) }
    }

    private fun stopAudio(c: CallRecord) {
        c.handle()?.let { audio?.stop(it) }
    }

    private fun <T> onThread(block: () -> T): T = thread.submit(Callable { block() }).get()

    private fun post(block: () -> Unit) {
        thread.execute(block)
    }

    private inner class ClientRelay : VideoCallDelegate {
        override fun didReceiveCallWithConversation(conversation: Conversation, data: String?) =
            post { adopt(conversation) }

        override fun didChangeConnectionState(state: ConnectionState) {}

        override fun didEndWokenCall(callId: String, reason: EndReason?) =
            post { finish(callId, screenReason(reason)) }
    }

    private inner class ConversationRelay(private val conversation: Conversation) : ConversationDelegate {
        override fun didReceiveResponse(status: CallStatus) {
            if (status == CallStatus.ACCEPTED) post { accepted(conversation) }
        }

        override fun didReceiveStream(stream: RemoteStream) = post { remoteStreamArrived(conversation, stream) }
        override fun didFailWithError(error: CallException) {}
        override fun didClose() = post { closed(conversation) }
        override fun didChangeRemoteMedia(videoEnabled: Boolean, audioEnabled: Boolean) {}
        override fun didChangeMediaState(state: MediaState) {}
        override fun didChangeNetworkQuality(local: UByte, remote: UByte) {}
    }

    companion object {
        /** The server's call id is a UUID; Telecom and the tests use it as the screen's id. */
        fun screenId(callId: String?): String = callId ?: UUID.randomUUID().toString()

        fun screenReason(reason: EndReason?): CallScreenEndReason = when (reason) {
            EndReason.TIMEOUT -> CallScreenEndReason.UNANSWERED
            EndReason.ANSWERED_ELSEWHERE -> CallScreenEndReason.ANSWERED_ELSEWHERE
            EndReason.DECLINED_ELSEWHERE -> CallScreenEndReason.DECLINED_ELSEWHERE
            EndReason.UNREACHABLE, EndReason.CONNECTION_LOST, EndReason.NETWORK_LOST, EndReason.FAILED -> CallScreenEndReason.FAILED
            else -> CallScreenEndReason.REMOTE_ENDED
        }
    }
}

/** The call the screen shows. */
private class CallRecord(val id: String, val callId: String?, val peer: String, val outgoing: Boolean) {
    var answered = false
    var conversation: Conversation? = null
    var stream: LocalStream? = null
    var remote: RemoteStream? = null
    var muted = false
    var held = false

    fun handle(): CallHandle? {
        val conversation = conversation ?: return null
        val stream = stream ?: return null
        return CallHandle(id, conversation, stream)
    }
}
