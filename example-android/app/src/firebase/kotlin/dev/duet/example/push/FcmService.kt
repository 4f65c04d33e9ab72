package dev.duet.example.push

import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage
import dev.duet.example.ExampleApp
import dev.duet.push.DuetPush

/**
 * The app's own FCM service: Duet's library has no Firebase dependency, so the app hands
 * it the messages and the token. Built only when app/google-services.json is there (see
 * build.gradle.kts and the README); not type-checked by scripts/test-kotlin, which has no
 * Firebase jars.
 */
class FcmService : FirebaseMessagingService() {
    override fun onMessageReceived(message: RemoteMessage) {
        // A Duet call is on the call screen when this returns; anything else is the app's.
        DuetPush.handleMessage(message.data)
    }

    override fun onNewToken(token: String) {
        val app = application as ExampleApp
        app.savedSignIn.fcmToken = token
        app.session.pushTokenChanged()
    }
}
