package dev.duet.example

import android.graphics.Color
import android.view.Gravity
import android.view.TextureView
import android.view.View
import android.view.ViewGroup
import android.widget.FrameLayout
import dev.duet.example.call.CallSession
import dev.duet.example.call.Messages
import dev.duet.example.call.Screen

/**
 * Ringing: your camera full screen, the callee's answer as it comes, and a cancel button.
 * When the call did not happen (declined, busy, no answer) it says so and offers to call
 * again.
 */
class OutgoingCallScreen(
    activity: MainActivity,
    private val session: CallSession,
    private val media: DeviceMedia,
) : ScreenView {
    private val preview = TextureView(activity)
    private val status = activity.title("").apply { setTextColor(Color.WHITE) }
    private val warning = activity.notice(color = Color.YELLOW)
    private val cancel = activity.button("Cancel") { session.hangUp() }
    private var last: Screen.Outgoing? = null
    private val again = activity.button("Call again") { last?.let { session.call(it.remoteUid, it.data ?: "") } }
    private val done = activity.button("Done") { session.dismiss() }

    override val root: View = FrameLayout(activity).apply {
        setBackgroundColor(Color.BLACK)
        addView(preview, FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.MATCH_PARENT))
        val panel = activity.column(status, warning, cancel, activity.row(again, done)).apply {
            gravity = Gravity.BOTTOM
            setPadding(activity.dp(24), activity.dp(48), activity.dp(24), activity.dp(32))
        }
        addView(panel, FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.MATCH_PARENT, Gravity.BOTTOM))
    }

    override fun shows(state: Screen) = state is Screen.Outgoing

    override fun update(state: Screen) {
        state as Screen.Outgoing
        last = state
        val ringing = state.ended == null
        status.text = when {
            state.ended != null -> state.ended
            state.response != null -> Messages.response(state.response, state.remoteUid)
            else -> "Calling ${state.remoteUid}…"
        }
        warning.say(state.warning)
        cancel.visibility = if (ringing) View.VISIBLE else View.GONE
        (again.parent as View).visibility = if (ringing) View.GONE else View.VISIBLE
        // A call placed again has a new camera: give it the view.
        preview.visibility = if (ringing && media.hasCamera) View.VISIBLE else View.GONE
        if (ringing) media.showPreview(preview)
    }

    override fun dispose() = media.hidePreview(preview)
}
