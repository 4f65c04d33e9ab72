package dev.duet.example

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.view.TextureView
import dev.duet.LocalStream
import dev.duet.RemoteStream
import dev.duet.StreamConstraints
import dev.duet.VideoConstraints
import dev.duet.android.AudioDevice
import dev.duet.android.CameraCapturer
import dev.duet.example.call.LocalMedia

/**
 * The phone's camera, microphone and speaker for a call, through Duet's Android shims. A
 * call gets whatever the user allowed: with only one of CAMERA and RECORD_AUDIO granted the
 * stream is video-only or audio-only, with neither it only receives.
 */
class DeviceMedia(context: Context) : LocalMedia {
    private val context = context.applicationContext
    private val audio = AudioDevice(this.context)

    // Written on the session's thread, read by the call screens on the main thread.
    @Volatile private var stream: LocalStream? = null
    @Volatile private var camera: CameraCapturer? = null

    override var onProblem: ((String) -> Unit)? = null

    /** Whether the call sends video / audio at all (the permission was granted). */
    val hasCamera: Boolean get() = camera != null
    val hasMicrophone: Boolean get() = stream?.constraints()?.audio == true

    override fun start(): LocalStream {
        stop()
        val withAudio = granted(Manifest.permission.RECORD_AUDIO)
        val withVideo = granted(Manifest.permission.CAMERA)
        val local = LocalStream(StreamConstraints(audio = withAudio, video = if (withVideo) VideoConstraints() else null))
        stream = local
        if (withVideo) {
            camera = CameraCapturer(context, local, CameraCapturer.Facing.FRONT).also {
                it.onError = { problem -> onProblem?.invoke("Camera: $problem") }
                it.start()
            }
        }
        audio.onError = { problem -> onProblem?.invoke("Audio: $problem") }
        if (withAudio) audio.startCapture(local)
        audio.speakerphoneOn = true // a video call is held at arm's length
        return local
    }

    override fun play(remote: RemoteStream) = audio.startPlayback(remote)

    override fun stop() {
        camera?.release()
        camera = null
        audio.release()
        stream?.close()
        stream = null
    }

    var microphoneOn: Boolean
        get() = stream?.audioEnabled() == true
        set(on) { stream?.setAudioEnabled(on) }

    /** Off stops the camera too (its light goes out), not only the frames sent. */
    var cameraOn: Boolean
        get() = stream?.videoEnabled() == true
        set(on) {
            stream?.setVideoEnabled(on)
            if (on) camera?.start() else camera?.stop()
        }

    var speakerOn: Boolean
        get() = audio.speakerphoneOn
        set(on) { audio.speakerphoneOn = on }

    fun switchCamera() {
        camera?.switchCamera()
    }

    // The view showing the camera, on the main thread only.
    private var previewView: TextureView? = null

    /** Shows the camera of the current call in [view]. Main thread. */
    fun showPreview(view: TextureView) {
        previewView = view
        camera?.setPreview(view)
    }

    /**
     * Takes the camera off [view] unless another view has it already: the next screen
     * shows its preview before the previous screen lets go of its own.
     */
    fun hidePreview(view: TextureView) {
        if (previewView !== view) return
        previewView = null
        camera?.setPreview(null)
    }

    private fun granted(permission: String) =
        context.checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED
}
