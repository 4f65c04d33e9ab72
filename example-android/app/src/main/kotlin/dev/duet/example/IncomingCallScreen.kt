package dev.duet.example

import android.graphics.Color
import android.media.RingtoneManager
import dev.duet.example.call.CallSession
import dev.duet.example.call.Screen

/** Someone calls: who, the custom data they sent, accept or decline; the phone rings meanwhile. */
class IncomingCallScreen(activity: MainActivity, session: CallSession, permissions: Permissions) : ScreenView {
    private val caller = activity.title("")
    private val data = activity.label()
    private val media = activity.notice(color = Color.DKGRAY)
    private val ringtone = RingtoneManager.getRingtone(activity, RingtoneManager.getDefaultUri(RingtoneManager.TYPE_RINGTONE))

    override val root = activity.form(
        caller,
        data,
        media,
        activity.row(
            activity.button("Decline") { session.reject() },
            activity.button("Accept") { session.accept() },
        ),
    )

    init {
        // Answering sends what is allowed; say beforehand what that is.
        media.say(permissions.explanation())
        ringtone?.play()
    }

    override fun shows(state: Screen) = state is Screen.Incoming

    override fun update(state: Screen) {
        state as Screen.Incoming
        caller.text = "${state.remoteUid} is calling"
        data.say(state.data?.let { "They sent: “$it”" })
    }

    override fun dispose() {
        ringtone?.stop()
    }
}
