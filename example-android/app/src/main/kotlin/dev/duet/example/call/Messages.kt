package dev.duet.example.call

import dev.duet.ActionException
import dev.duet.CallException
import dev.duet.CallStatus
import dev.duet.ConnectException
import dev.duet.ConnectionState
import dev.duet.EndReason
import dev.duet.InvalidArgumentKind
import dev.duet.MediaKind
import dev.duet.WrongStateKind

/** What the user reads when something happens: each says what went wrong and what to do. */
object Messages {
    fun signInFailed(e: ConnectException): String = when (e) {
        is ConnectException.InvalidUrl ->
            "That server URL does not work (${e.reason}). Use http://HOST:7480; from the emulator, http://10.0.2.2:7480."
        is ConnectException.Unreachable ->
            "Cannot reach the server (${e.reason}). Is duet serve running, listening on an address this device can reach?"
        is ConnectException.Refused ->
            "The server refused to sign you in: ${e.reason} (${e.code})."
        is ConnectException.Timeout ->
            "The server did not answer within ${e.timeoutMs.toLong() / 1000} s. Check the URL and the network, then try again."
        is ConnectException.Protocol ->
            "The server answered something unexpected (${e.reason}). Is this a Duet server of the same version?"
    }

    /** [fetchDevelopmentToken] was refused: the server was started with a secret. */
    fun noDevelopmentTokens(e: ConnectException.Refused): String =
        "This server does not hand out development tokens (${e.reason}): it runs with a secret, " +
            "so tokens come from your backend. Use a server started as plain `duet serve`."

    fun tokenRefused(state: ConnectionState.Refused): String =
        "The server no longer accepts your sign-in (${state.code}: ${state.reason}). Sign in again."

    /** The callee's answer, as the outgoing-call screen shows it. */
    fun response(status: CallStatus, remoteUid: String): String = when (status) {
        CallStatus.ACCEPTED -> "$remoteUid answered. Connecting…"
        CallStatus.REJECTED -> "$remoteUid declined the call."
        CallStatus.BUSY -> "$remoteUid is in another call."
        CallStatus.TIMEOUT -> "$remoteUid did not answer."
    }

    /** Why a call ended, or null when this side ended it (nothing to tell). */
    fun ended(reason: EndReason?, remoteUid: String, error: String?): String? = when (reason) {
        null, EndReason.LOCAL -> null
        EndReason.HANGUP -> "$remoteUid hung up."
        EndReason.CANCELLED -> "$remoteUid cancelled the call."
        EndReason.REJECTED -> response(CallStatus.REJECTED, remoteUid)
        EndReason.BUSY -> response(CallStatus.BUSY, remoteUid)
        EndReason.TIMEOUT -> response(CallStatus.TIMEOUT, remoteUid)
        EndReason.ANSWERED_ELSEWHERE -> "Answered on another of your devices."
        EndReason.DECLINED_ELSEWHERE -> "Declined on another of your devices."
        EndReason.PEER_DISCONNECTED -> "$remoteUid lost their connection."
        EndReason.UNREACHABLE -> "$remoteUid is not online. Check the uid, or ask them to sign in."
        EndReason.REPLACED -> "A newer call replaced this one."
        EndReason.CONNECTION_LOST -> "The connection to the server was lost. Check the network and call again."
        EndReason.NETWORK_LOST -> "The network was lost and did not come back. Check the network and call again."
        EndReason.FAILED -> error ?: "The call failed. Try again."
    }

    /** One message per kind of call error: apps switch on the kind, never parse its text. */
    fun callFailed(e: CallException): String = when (e) {
        is CallException.Unreachable -> "${e.uid} is not online. Check the uid, or ask them to sign in."
        is CallException.ConnectionLost -> "The connection to the server was lost."
        is CallException.Server -> "The server refused: ${e.reason} (${e.code})."
        // Calling again over the same networks finds no more paths than this time.
        is CallException.IceFailed ->
            "No network path to the other party was found. On different networks the server needs TURN (see the README)."
        is CallException.DtlsFailed ->
            "The other party was reached, but the call's encryption could not be set up. Try calling again."
        is CallException.NoCodec ->
            "This device could not start its ${if (e.kind == MediaKind.AUDIO) "audio" else "video"} codec (${e.reason})."
        is CallException.BadRemoteDescription ->
            "The other party's app set up the call in a way this one cannot use (${e.reason}). Both apps may need updating."
        is CallException.NetworkLost ->
            "The network went away for 30 seconds and the call could not carry on. Check the network and call again."
        is CallException.MediaSetup -> "The call's audio and video could not be set up (${e.reason}). Try again."
    }

    /** One message per kind of refused action. */
    fun actionFailed(e: ActionException): String = when (e) {
        is ActionException.InvalidArgument -> when (e.kind) {
            InvalidArgumentKind.CALLING_YOURSELF -> "You cannot call yourself."
            InvalidArgumentKind.UID -> "That uid cannot be called (${e.reason})."
            InvalidArgumentKind.DATA_TOO_LONG -> "The custom data is too long for the server. Shorten it."
        }
        is ActionException.InvalidState -> when (e.kind) {
            WrongStateKind.ALREADY_ACCEPTED -> "The call is already answered."
            WrongStateKind.NOT_THE_CALLEE -> "Only the person called can answer or decline."
            WrongStateKind.NOT_RINGING -> "The call is no longer ringing."
            WrongStateKind.NOT_ACCEPTED -> "The call has not been answered yet."
        }
        // No end reason: the client itself is gone (signed out).
        is ActionException.Closed -> when (e.endReason) {
            null -> "You are signed out. Sign in again."
            EndReason.ANSWERED_ELSEWHERE -> "The call was answered on another of your devices."
            else -> "The call is already over."
        }
    }
}
