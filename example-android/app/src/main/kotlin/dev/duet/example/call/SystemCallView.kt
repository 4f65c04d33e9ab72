package dev.duet.example.call

import dev.duet.RemoteStream
import dev.duet.push.CallAudio
import dev.duet.push.CallHandle

/**
 * Brings a call answered on the system's call screen (Telecom, woken by a push) into the
 * app's own call view: the library's `DuetCallCenter` runs the call and tells its
 * [CallAudio] when the answered call's audio starts, when the other side's media is there,
 * and when it stops; this passes each on to the device's [audio] and to the [session],
 * which then shows the call (and its video) as one it placed or answered itself. Hanging up
 * in the app calls [end] with the call's id: on Android, `DuetTelecom.hangUp`, which ends
 * it in Duet and closes the system's call too.
 */
class SystemCallView(
    private val session: CallSession,
    private val audio: CallAudio?,
    private val end: (id: String) -> Unit,
) : CallAudio {
    override fun start(call: CallHandle) {
        audio?.start(call)
        session.systemCallAnswered(call.conversation.remoteUid()) { end(call.id) }
    }

    override fun play(call: CallHandle, remote: RemoteStream) {
        audio?.play(call, remote)
        session.systemCallStream(remote)
    }

    override fun stop(call: CallHandle) {
        audio?.stop(call)
        session.systemCallEnded()
    }
}
