package dev.duet.android

import android.os.Build
import android.telecom.CallAudioState
import android.telecom.Connection
import android.telecom.ConnectionRequest
import android.telecom.ConnectionService
import android.telecom.DisconnectCause
import android.telecom.PhoneAccountHandle
import android.telecom.TelecomManager
import android.telecom.VideoProfile

/**
 * Telecom's side of Duet's calls (declared in the library's manifest). Each call is a
 * [DuetConnection] that turns the system's actions into the [dev.duet.push.DuetCallCenter]'s.
 */
class DuetConnectionService : ConnectionService() {
    override fun onCreateIncomingConnection(account: PhoneAccountHandle?, request: ConnectionRequest): Connection {
        val extras = request.extras?.getBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS) ?: request.extras
        val connection = DuetConnection(extras?.getString(DuetTelecom.EXTRA_ID) ?: "", extras?.getString(DuetTelecom.EXTRA_PEER) ?: "")
        connection.setRinging()
        return connection
    }

    override fun onCreateOutgoingConnection(account: PhoneAccountHandle?, request: ConnectionRequest): Connection {
        val extras = request.extras
        val connection = DuetConnection(extras?.getString(DuetTelecom.EXTRA_ID) ?: "", extras?.getString(DuetTelecom.EXTRA_PEER) ?: "")
        connection.setDialing()
        return connection
    }

    override fun onCreateIncomingConnectionFailed(account: PhoneAccountHandle?, request: ConnectionRequest) {
        // The system refused (e.g. an emergency call is on): the call is declined.
        val extras = request.extras?.getBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS) ?: request.extras
        extras?.getString(DuetTelecom.EXTRA_ID)?.let { DuetTelecom.center?.end(it) }
    }

    override fun onCreateOutgoingConnectionFailed(account: PhoneAccountHandle?, request: ConnectionRequest) {
        request.extras?.getString(DuetTelecom.EXTRA_ID)?.let { DuetTelecom.center?.end(it) }
    }
}

/** One call as Telecom sees it. */
class DuetConnection internal constructor(private val id: String, private val peer: String) : Connection() {
    init {
        connectionProperties = PROPERTY_SELF_MANAGED
        connectionCapabilities = CAPABILITY_MUTE or CAPABILITY_HOLD or CAPABILITY_SUPPORT_HOLD
        audioModeIsVoip = true
        videoState = VideoProfile.STATE_BIDIRECTIONAL
        setAddress(DuetTelecom.address(peer), TelecomManager.PRESENTATION_ALLOWED)
        setCallerDisplayName(peer, TelecomManager.PRESENTATION_ALLOWED)
        DuetTelecom.connections[id] = this
    }

    /** A self-managed call shows its own incoming UI: the call-style notification. */
    override fun onShowIncomingCallUi() {
        DuetTelecom.context?.let { CallNotifications.showIncoming(it, id, peer) }
    }

    override fun onAnswer() {
        val context = DuetTelecom.context ?: return
        // First, before answering opens the microphone and camera: Android 14 lets a call
        // use them from the background only under a foreground service of those types, and
        // an answer (a user action) is when the app may still start one.
        CallForegroundService.start(context, id, peer)
        if (DuetTelecom.center?.answer(id) != true) {
            CallForegroundService.stop(context)
            return
        }
        CallNotifications.cancel(context, id)
        setActive()
        DuetTelecom.center?.audioActivated()
    }

    override fun onAnswer(videoState: Int) = onAnswer()

    override fun onReject() = hangUp(DisconnectCause.REJECTED)

    override fun onDisconnect() = hangUp(DisconnectCause.LOCAL)

    override fun onAbort() = hangUp(DisconnectCause.CANCELED)

    override fun onHold() {
        if (DuetTelecom.center?.setHeld(id, true) == true) setOnHold()
    }

    override fun onUnhold() {
        if (DuetTelecom.center?.setHeld(id, false) == true) setActive()
    }

    @Deprecated("Superseded by onMuteStateChanged on API 34; kept for older systems.")
    override fun onCallAudioStateChanged(state: CallAudioState) {
        if (Build.VERSION.SDK_INT < 34) DuetTelecom.center?.setMuted(id, state.isMuted)
    }

    override fun onMuteStateChanged(isMuted: Boolean) {
        DuetTelecom.center?.setMuted(id, isMuted)
    }

    /** Ends the call in Duet and on the system's screen (the user's action, there or in the app). */
    internal fun hangUp(cause: Int) {
        DuetTelecom.center?.end(id)
        DuetTelecom.connections.remove(id)
        DuetTelecom.context?.let {
            CallNotifications.cancel(it, id)
            CallForegroundService.stop(it)
        }
        setDisconnected(DisconnectCause(cause))
        destroy()
    }
}
