package dev.duet.example.push

import android.content.Context
import dev.duet.ClientConfig
import dev.duet.PushToken
import dev.duet.RemoteStream
import dev.duet.android.CallNotifications
import dev.duet.android.DuetTelecom
import dev.duet.example.DeviceMedia
import dev.duet.example.MainActivity
import dev.duet.example.SavedSignIn
import dev.duet.example.call.CallSession
import dev.duet.example.call.SystemCallView
import dev.duet.fetchDevelopmentToken
import dev.duet.push.CallAudio
import dev.duet.push.CallHandle
import dev.duet.push.DuetCallCenter
import dev.duet.push.DuetPush

/**
 * Ringing while the app is in the background or killed: FCM wakes it (the app's
 * FirebaseMessagingService, src/firebase), Telecom and the call notification show the call
 * (dev.duet.android.DuetTelecom), and a [DuetCallCenter] connects for the call the push
 * named. Made in Application.onCreate, which runs before the push is handled.
 */
class PushCalls(
    context: Context,
    private val media: DeviceMedia,
    private val saved: SavedSignIn,
    session: CallSession,
) {
    val center: DuetCallCenter

    init {
        val screen = DuetTelecom.install(context, "Duet")
        // Answered on the system's screen, the call then shows in the app's own call view
        // (MainActivity, brought up by the notification's full-screen intent).
        val audio = SystemCallView(session, DeviceAudio(), end = DuetTelecom::hangUp)
        center = DuetCallCenter(screen, audio, makeStream = { media.start() }) { wokenFor ->
            // The server and uid last signed in with; a development server's token.
            val url = saved.serverUrl
            ClientConfig(serverUrl = url, token = fetchDevelopmentToken(url, saved.uid), wokenFor = wokenFor)
        }
        DuetTelecom.center = center
        DuetPush.install(center)
        // Rings over the lock screen (if the user allowed full-screen intents on Android 14).
        CallNotifications.fullScreenActivity = MainActivity::class.java
    }

    /** The FCM token, as the session registers it at sign-in. */
    fun token(): PushToken? = saved.fcmToken?.let { PushToken.Fcm(it) }

    /** The microphone runs from the stream's start (DeviceMedia); the remote side plays once Telecom made the call active. */
    private inner class DeviceAudio : CallAudio {
        override fun start(call: CallHandle) {}

        override fun play(call: CallHandle, remote: RemoteStream) = media.play(remote)

        override fun stop(call: CallHandle) = media.stop()
    }
}
