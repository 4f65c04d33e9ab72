package dev.duet.example

import android.graphics.Color
import android.graphics.Typeface
import android.view.Gravity
import android.view.TextureView
import android.view.View
import android.view.ViewGroup
import android.widget.FrameLayout
import dev.duet.RemoteStream
import dev.duet.android.VideoRenderer
import dev.duet.example.call.CallSession
import dev.duet.example.call.Screen
import dev.duet.example.call.StatsText
import kotlinx.coroutines.launch

/**
 * The call: the other side's video full screen, yours in a corner, the controls, and a
 * stats overlay (resolution, frame rate, bitrates, round trip, ICE candidate types).
 */
class InCallScreen(
    activity: MainActivity,
    private val session: CallSession,
    private val media: DeviceMedia,
) : ScreenView {
    private val remoteView = VideoRenderer(activity).apply { scaleMode = VideoRenderer.ScaleMode.FILL }
    private val localView = TextureView(activity)
    private val who = activity.title("").apply { setTextColor(Color.WHITE); gravity = Gravity.CENTER }
    private val stats = activity.label(size = 12f).apply {
        setTextColor(Color.WHITE)
        setBackgroundColor(Color.argb(0x80, 0, 0, 0))
        typeface = Typeface.MONOSPACE
        setPadding(activity.dp(6), activity.dp(4), activity.dp(6), activity.dp(4))
    }
    private val warning = activity.notice(color = Color.YELLOW)

    private val mute = activity.button("") { media.microphoneOn = !media.microphoneOn; refreshControls() }
    private val camera = activity.button("") { media.cameraOn = !media.cameraOn; refreshControls() }
    private val flip = activity.button("Flip") { media.switchCamera() }
    private val speaker = activity.button("") { media.speakerOn = !media.speakerOn; refreshControls() }
    private val hangUp = activity.button("End") { session.hangUp() }.apply { setTextColor(Color.rgb(0xD0, 0x20, 0x20)) }

    private var sinkOf: RemoteStream? = null

    override val root: View = FrameLayout(activity).apply {
        setBackgroundColor(Color.BLACK)
        fun params(w: Int, h: Int, gravity: Int) = FrameLayout.LayoutParams(w, h, gravity)
        val all = ViewGroup.LayoutParams.MATCH_PARENT
        val wrap = ViewGroup.LayoutParams.WRAP_CONTENT
        addView(remoteView, params(all, all, Gravity.CENTER))
        addView(who, params(all, wrap, Gravity.CENTER))
        addView(localView, params(activity.dp(108), activity.dp(144), Gravity.TOP or Gravity.END).apply {
            setMargins(0, activity.dp(16), activity.dp(16), 0)
        })
        addView(stats, params(wrap, wrap, Gravity.TOP or Gravity.START).apply {
            setMargins(activity.dp(16), activity.dp(16), 0, 0)
        })
        val controls = activity.column(warning, activity.row(mute, camera, flip, speaker, hangUp)).apply {
            setPadding(activity.dp(8), 0, activity.dp(8), activity.dp(24))
        }
        addView(controls, params(all, wrap, Gravity.BOTTOM))
    }

    private val statsJob = activity.scope.launch {
        session.stats.collect { s ->
            stats.text = s?.let(StatsText::format) ?: "waiting for stats…"
        }
    }

    override fun shows(state: Screen) = state is Screen.InCall

    override fun update(state: Screen) {
        state as Screen.InCall
        who.text = state.remoteUid
        // No picture (an audio-only peer, or their camera is off): show who is on the line
        // rather than a black screen or their last frame, frozen.
        val noVideo = state.remote == null || !state.remoteVideoOn
        who.visibility = if (noVideo) View.VISIBLE else View.GONE
        remoteView.visibility = if (noVideo) View.INVISIBLE else View.VISIBLE
        warning.say(state.warning)
        if (state.remote !== sinkOf) {
            sinkOf?.setVideoSink(null)
            state.remote?.setVideoSink(remoteView)
            sinkOf = state.remote
        }
        media.showPreview(localView)
        refreshControls()
    }

    private fun refreshControls() {
        mute.isEnabled = media.hasMicrophone
        mute.text = if (media.microphoneOn || !media.hasMicrophone) "Mute" else "Unmute"
        camera.isEnabled = media.hasCamera
        flip.isEnabled = media.hasCamera && media.cameraOn
        camera.text = if (media.cameraOn || !media.hasCamera) "Cam off" else "Cam on"
        localView.visibility = if (media.hasCamera && media.cameraOn) View.VISIBLE else View.INVISIBLE
        speaker.text = if (media.speakerOn) "Earpiece" else "Speaker"
    }

    override fun dispose() {
        statsJob.cancel()
        sinkOf?.setVideoSink(null)
        sinkOf = null
        remoteView.release()
        media.hidePreview(localView)
    }
}
