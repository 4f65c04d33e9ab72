package dev.duet.example

import android.app.Application
import dev.duet.example.call.CallSession

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

    override fun onCreate() {
        super.onCreate()
        media = DeviceMedia(this)
        session = CallSession(media)
        savedSignIn = SavedSignIn(this)
    }
}
