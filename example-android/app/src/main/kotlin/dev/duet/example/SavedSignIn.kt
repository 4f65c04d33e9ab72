package dev.duet.example

import android.content.Context

/** The server URL and uid last signed in with, so the next launch starts from them. */
class SavedSignIn(context: Context) {
    private val prefs = context.getSharedPreferences("sign-in", Context.MODE_PRIVATE)

    /** The emulator reaches the laptop's loopback (where `duet serve` listens by default) at 10.0.2.2. */
    val serverUrl: String get() = prefs.getString(SERVER_URL, null) ?: "http://10.0.2.2:7480"
    val uid: String get() = prefs.getString(UID, null) ?: ""

    /** Whether the camera and microphone permissions were asked for once already. */
    var askedPermissions: Boolean
        get() = prefs.getBoolean(ASKED_PERMISSIONS, false)
        set(value) { prefs.edit().putBoolean(ASKED_PERMISSIONS, value).apply() }

    /** The FCM registration token, from the app's FirebaseMessagingService (onNewToken). */
    var fcmToken: String?
        get() = prefs.getString(FCM_TOKEN, null)
        set(value) { prefs.edit().putString(FCM_TOKEN, value).apply() }

    fun save(serverUrl: String, uid: String) {
        prefs.edit().putString(SERVER_URL, serverUrl.trim()).putString(UID, uid.trim()).apply()
    }

    private companion object {
        const val SERVER_URL = "server-url"
        const val UID = "uid"
        const val ASKED_PERMISSIONS = "asked-permissions"
        const val FCM_TOKEN = "fcm-token"
    }
}
