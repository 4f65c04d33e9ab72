package dev.duet.android

import android.content.ComponentName
import android.content.Context
import android.net.Uri
import android.os.Bundle
import android.telecom.DisconnectCause
import android.telecom.PhoneAccount
import android.telecom.PhoneAccountHandle
import android.telecom.TelecomManager
import dev.duet.push.CallScreen
import dev.duet.push.CallScreenEndReason
import dev.duet.push.DuetCallCenter
import java.util.concurrent.ConcurrentHashMap

/**
 * Android's system call screen for Duet: a self-managed [PhoneAccount] whose calls live in
 * [DuetConnectionService] (so the system knows a call is on: other apps' audio, Bluetooth
 * buttons, car screens), with Duet's own call-style notification as the incoming UI.
 * Needs API 26 (self-managed calls); on older systems only the notification rings.
 *
 * At app start (Application.onCreate):
 * ```kotlin
 * val screen = DuetTelecom.install(context, "My app")
 * val center = DuetCallCenter(screen, audio, makeStream = { ... }) { wokenFor -> config(wokenFor) }
 * DuetTelecom.center = center
 * DuetPush.install(center)
 * ```
 * and in the app's FirebaseMessagingService: `DuetPush.handleMessage(message.data)`.
 */
object DuetTelecom {
    @Volatile
    var center: DuetCallCenter? = null

    @Volatile
    internal var context: Context? = null
    internal var appName = "Duet"
    internal val connections = ConcurrentHashMap<String, DuetConnection>()

    internal const val EXTRA_ID = "dev.duet.call_id"
    internal const val EXTRA_PEER = "dev.duet.peer"

    /** Registers the phone account; returns the call screen to give the [DuetCallCenter]. */
    fun install(context: Context, appName: String): CallScreen {
        this.context = context.applicationContext
        this.appName = appName
        val account = PhoneAccount.builder(accountHandle(context), appName)
            .setCapabilities(PhoneAccount.CAPABILITY_SELF_MANAGED or PhoneAccount.CAPABILITY_VIDEO_CALLING)
            .build()
        context.getSystemService(TelecomManager::class.java).registerPhoneAccount(account)
        return TelecomCallScreen
    }

    /**
     * Hangs up call [id] from the app's own UI (its in-call view of a call answered on the
     * system's screen): Duet ends it, and the system's call, notification and foreground
     * service go with it.
     */
    fun hangUp(id: String) {
        connections[id]?.hangUp(DisconnectCause.LOCAL) ?: center?.end(id)
    }

    internal fun accountHandle(context: Context) =
        PhoneAccountHandle(ComponentName(context, DuetConnectionService::class.java), "duet")

    internal fun extras(id: String, peer: String) = Bundle().apply {
        putString(EXTRA_ID, id)
        putString(EXTRA_PEER, peer)
    }

    internal fun address(peer: String): Uri = Uri.fromParts("duet", peer, null)
}

/** The [CallScreen] that Telecom and the call notification are. */
private object TelecomCallScreen : CallScreen {
    override fun reportIncoming(id: String, caller: String, hasVideo: Boolean) {
        val context = DuetTelecom.context ?: return
        val telecom = context.getSystemService(TelecomManager::class.java)
        val extras = Bundle().apply {
            putBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS, DuetTelecom.extras(id, caller))
            putParcelable(TelecomManager.EXTRA_INCOMING_CALL_ADDRESS, DuetTelecom.address(caller))
        }
        try {
            telecom.addNewIncomingCall(DuetTelecom.accountHandle(context), extras)
        } catch (e: SecurityException) {
            // The account was disabled: ring with the notification alone.
            CallNotifications.showIncoming(context, id, caller)
        }
    }

    override fun reportOutgoingStarted(id: String, callee: String) {
        val context = DuetTelecom.context ?: return
        val extras = Bundle().apply {
            putParcelable(TelecomManager.EXTRA_PHONE_ACCOUNT_HANDLE, DuetTelecom.accountHandle(context))
            putBundle(TelecomManager.EXTRA_OUTGOING_CALL_EXTRAS, DuetTelecom.extras(id, callee))
        }
        try {
            context.getSystemService(TelecomManager::class.java).placeCall(DuetTelecom.address(callee), extras)
        } catch (e: SecurityException) {
            // Without MANAGE_OWN_CALLS the call still goes on, outside the system's view.
        }
    }

    override fun reportOutgoingConnected(id: String) {
        DuetTelecom.connections[id]?.setActive()
    }

    override fun reportEnded(id: String, reason: CallScreenEndReason) {
        val cause = when (reason) {
            CallScreenEndReason.REMOTE_ENDED -> DisconnectCause.REMOTE
            CallScreenEndReason.UNANSWERED -> DisconnectCause.MISSED
            CallScreenEndReason.ANSWERED_ELSEWHERE -> DisconnectCause.ANSWERED_ELSEWHERE
            CallScreenEndReason.DECLINED_ELSEWHERE -> DisconnectCause.REJECTED
            CallScreenEndReason.FAILED -> DisconnectCause.ERROR
        }
        DuetTelecom.connections.remove(id)?.let {
            it.setDisconnected(DisconnectCause(cause))
            it.destroy()
        }
        DuetTelecom.context?.let {
            CallNotifications.cancel(it, id)
            CallForegroundService.stop(it)
        }
    }
}
