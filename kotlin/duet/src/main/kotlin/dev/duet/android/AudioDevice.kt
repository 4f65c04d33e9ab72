package dev.duet.android

import android.annotation.SuppressLint
import android.content.Context
import android.media.AudioAttributes
import android.media.AudioDeviceInfo
import android.media.AudioFormat
import android.media.AudioManager
import android.media.AudioRecord
import android.media.AudioTrack
import android.media.MediaRecorder
import android.media.audiofx.AcousticEchoCanceler
import android.media.audiofx.NoiseSuppressor
import android.os.Build
import android.os.Process
import android.util.Log
import dev.duet.LocalStream
import dev.duet.RemoteStream

/**
 * The call's microphone and speaker: captures 48 kHz mono 16-bit PCM with [AudioRecord]
 * (`VOICE_COMMUNICATION`, so the platform's echo canceller applies where it has one) and
 * pushes it into a [LocalStream] 10 ms (480 samples) at a time; plays a [RemoteStream] with
 * an [AudioTrack] that pulls 10 ms from it at a time (`RemoteStream.pullAudio`, which pads
 * with silence when the network is late). Puts the [AudioManager] in communication mode
 * while either runs, and switches between earpiece and speakerphone.
 *
 * ```kotlin
 * val audio = AudioDevice(context)
 * audio.startCapture(localStream)            // after RECORD_AUDIO is granted
 * // in ConversationDelegate.didReceiveStream(stream):
 * audio.startPlayback(stream)
 * audio.speakerphoneOn = true
 * // when the call ends:
 * audio.release()
 * ```
 *
 * Capture and playback each run on a thread of their own at audio priority. Needs the
 * RECORD_AUDIO and MODIFY_AUDIO_SETTINGS permissions (declared in the library's manifest;
 * RECORD_AUDIO must also be granted at run time).
 */
class AudioDevice(context: Context) {
    private val audioManager = context.applicationContext.getSystemService(Context.AUDIO_SERVICE) as AudioManager
    private val lock = Any()
    private var capture: Thread? = null
    private var playback: Thread? = null
    @Volatile private var capturing = false
    @Volatile private var playing = false
    private var savedMode: Int? = null

    /** Hears errors (the microphone could not be opened, ...), on the audio thread. */
    @Volatile
    var onError: ((String) -> Unit)? = null

    /** Routes playback to the loudspeaker (true) or the earpiece/headset (false). */
    var speakerphoneOn: Boolean
        get() = if (Build.VERSION.SDK_INT >= 31) {
            audioManager.communicationDevice?.type == AudioDeviceInfo.TYPE_BUILTIN_SPEAKER
        } else {
            @Suppress("DEPRECATION")
            audioManager.isSpeakerphoneOn
        }
        set(on) {
            if (Build.VERSION.SDK_INT >= 31) {
                if (on) {
                    val speaker = audioManager.availableCommunicationDevices
                        .firstOrNull { it.type == AudioDeviceInfo.TYPE_BUILTIN_SPEAKER }
                    if (speaker != null) audioManager.setCommunicationDevice(speaker)
                } else {
                    audioManager.clearCommunicationDevice()
                }
            } else {
                @Suppress("DEPRECATION")
                audioManager.isSpeakerphoneOn = on
            }
        }

    /** Starts pushing the microphone into [stream]. Needs RECORD_AUDIO granted. */
    fun startCapture(stream: LocalStream) {
        synchronized(lock) {
            if (capture != null) return
            enterCommunicationMode()
            capturing = true
            capture = Thread({ captureLoop(stream) }, "duet-audio-capture").apply { start() }
        }
    }

    fun stopCapture() {
        val thread = synchronized(lock) { capture.also { capture = null; capturing = false } } ?: return
        thread.join()
        leaveCommunicationModeIfIdle()
    }

    /** Starts playing [stream] (pulling 10 ms at a time from it). */
    fun startPlayback(stream: RemoteStream) {
        synchronized(lock) {
            if (playback != null) return
            enterCommunicationMode()
            playing = true
            playback = Thread({ playbackLoop(stream) }, "duet-audio-playback").apply { start() }
        }
    }

    fun stopPlayback() {
        val thread = synchronized(lock) { playback.also { playback = null; playing = false } } ?: return
        thread.join()
        leaveCommunicationModeIfIdle()
    }

    /** Stops capture and playback and gives the audio mode back. */
    fun release() {
        stopCapture()
        stopPlayback()
    }

    @SuppressLint("MissingPermission") // startCapture() asks its caller for RECORD_AUDIO; refused, it is reported.
    private fun captureLoop(stream: LocalStream) {
        Process.setThreadPriority(Process.THREAD_PRIORITY_URGENT_AUDIO)
        val minBuffer = AudioRecord.getMinBufferSize(SAMPLE_RATE, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT)
        val record = try {
            AudioRecord(
                MediaRecorder.AudioSource.VOICE_COMMUNICATION, SAMPLE_RATE, AudioFormat.CHANNEL_IN_MONO,
                AudioFormat.ENCODING_PCM_16BIT, maxOf(minBuffer, FRAME_SAMPLES * 2 * 4),
            )
        } catch (e: Exception) {
            return fail("cannot open the microphone: $e")
        }
        if (record.state != AudioRecord.STATE_INITIALIZED) {
            record.release()
            return fail("cannot open the microphone (no RECORD_AUDIO permission?)")
        }
        val effects = listOfNotNull(
            if (AcousticEchoCanceler.isAvailable()) AcousticEchoCanceler.create(record.audioSessionId) else null,
            if (NoiseSuppressor.isAvailable()) NoiseSuppressor.create(record.audioSessionId) else null,
        )
        effects.forEach { it.enabled = true }
        val frame = ShortArray(FRAME_SAMPLES)
        val samples = frame.asList() // a view: pushAudio reads it, nothing is copied here
        try {
            record.startRecording()
            while (capturing) {
                var filled = 0
                while (filled < FRAME_SAMPLES && capturing) {
                    val n = record.read(frame, filled, FRAME_SAMPLES - filled)
                    if (n < 0) return fail("microphone read failed: $n")
                    filled += n
                }
                if (filled < FRAME_SAMPLES) break
                stream.pushAudio(samples, (System.nanoTime() / 1000).toULong())
            }
        } catch (e: Exception) {
            fail("audio capture stopped: $e")
        } finally {
            effects.forEach { it.release() }
            try { record.stop() } catch (_: IllegalStateException) {}
            record.release()
        }
    }

    private fun playbackLoop(stream: RemoteStream) {
        Process.setThreadPriority(Process.THREAD_PRIORITY_URGENT_AUDIO)
        val minBuffer = AudioTrack.getMinBufferSize(SAMPLE_RATE, AudioFormat.CHANNEL_OUT_MONO, AudioFormat.ENCODING_PCM_16BIT)
        val track = try {
            AudioTrack.Builder()
                .setAudioAttributes(
                    AudioAttributes.Builder()
                        .setUsage(AudioAttributes.USAGE_VOICE_COMMUNICATION)
                        .setContentType(AudioAttributes.CONTENT_TYPE_SPEECH)
                        .build(),
                )
                .setAudioFormat(
                    AudioFormat.Builder()
                        .setSampleRate(SAMPLE_RATE)
                        .setChannelMask(AudioFormat.CHANNEL_OUT_MONO)
                        .setEncoding(AudioFormat.ENCODING_PCM_16BIT)
                        .build(),
                )
                .setBufferSizeInBytes(maxOf(minBuffer, FRAME_SAMPLES * 2 * 4))
                .setTransferMode(AudioTrack.MODE_STREAM)
                .build()
        } catch (e: Exception) {
            return fail("cannot open audio output: $e")
        }
        val frame = ShortArray(FRAME_SAMPLES)
        try {
            track.play()
            while (playing) {
                val pcm = stream.pullAudio(FRAME_SAMPLES.toUInt())
                for (i in 0 until FRAME_SAMPLES) frame[i] = if (i < pcm.size) pcm[i] else 0
                // Blocking write: returns once the track has room, which paces this loop at
                // one 10 ms frame per 10 ms.
                val n = track.write(frame, 0, FRAME_SAMPLES)
                if (n < 0) return fail("audio output write failed: $n")
            }
        } catch (e: Exception) {
            fail("audio playback stopped: $e")
        } finally {
            try { track.stop() } catch (_: IllegalStateException) {}
            track.release()
        }
    }

    private fun enterCommunicationMode() {
        if (savedMode == null) {
            savedMode = audioManager.mode
            audioManager.mode = AudioManager.MODE_IN_COMMUNICATION
        }
    }

    private fun leaveCommunicationModeIfIdle() {
        synchronized(lock) {
            if (capture != null || playback != null) return
            savedMode?.let { audioManager.mode = it }
            savedMode = null
        }
    }

    private fun fail(message: String) {
        Log.e(TAG, message)
        onError?.invoke(message)
    }

    private companion object {
        const val TAG = "Duet"
        const val SAMPLE_RATE = 48_000
        const val FRAME_SAMPLES = 480 // 10 ms at 48 kHz
    }
}
