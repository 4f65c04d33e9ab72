package dev.duet.example

import android.app.Application
import dev.duet.android.MediaCodecVideoCodecs
import dev.duet.example.call.CallSession
import dev.duet.example.push.PushCalls

/**
 * Holds what outlives a screen: the call session (signed-in client, current call) and the
 * device's media. An activity that is recreated (rotation) or reopened finds the call where
 * it was.
 */
class ExampleApp : Application() {
    lateinit var media: DeviceMedia
        private set
    lateinit var session: CallSession
        private set
    lateinit var savedSignIn: SavedSignIn
        private set
    /** Calls that ring through pushes, on the system's call screen. */
    lateinit var pushCalls: PushCalls
        private set

    override fun onCreate() {
        super.onCreate()
        media = DeviceMedia(this)
        savedSignIn = SavedSignIn(this)
        session = CallSession(media, pushToken = { pushCalls.token() }, videoCodecs = MediaCodecVideoCodecs.withFallback())
        pushCalls = PushCalls(this, media, savedSignIn, session)
    }
}
