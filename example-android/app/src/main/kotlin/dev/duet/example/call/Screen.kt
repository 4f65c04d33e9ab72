package dev.duet.example.call

import dev.duet.CallStatus
import dev.duet.RemoteStream

/** What the app shows: one value per screen, with what that screen needs to draw itself. */
sealed interface Screen {
    /** Server URL and uid; [busy] while signing in, [error] when it failed or the token was refused. */
    data class SignIn(val busy: Boolean = false, val error: String? = null) : Screen

    /**
     * Signed in as [uid]. [callee] and [data] are what was last called, for calling again;
     * [notice] says why the last call ended, when it did not end by this side's hand.
     */
    data class Home(
        val uid: String,
        val callee: String = "",
        val data: String = "",
        val notice: String? = null,
    ) : Screen

    /**
     * Calling [remoteUid]. [response] is the callee's answer once there is one; [ended] says
     * why the call is over (rejected, busy, no answer, failed), and the screen then offers
     * to call again.
     */
    data class Outgoing(
        val remoteUid: String,
        val data: String?,
        val response: CallStatus? = null,
        val ended: String? = null,
        val warning: String? = null,
    ) : Screen

    /** [remoteUid] is calling, with the caller's custom [data]. */
    data class Incoming(val remoteUid: String, val data: String?) : Screen

    /**
     * Talking to [remoteUid]. [remote] is the other side's media once it has arrived;
     * [warning] is a problem that did not end the call (a camera error, a media hiccup);
     * [remoteVideoOn] is false while the other side's camera is off (or it has none).
     */
    data class InCall(
        val remoteUid: String,
        val remote: RemoteStream? = null,
        val warning: String? = null,
        val remoteVideoOn: Boolean = true,
    ) : Screen
}
