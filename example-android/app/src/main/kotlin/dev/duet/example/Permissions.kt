package dev.duet.example

import android.Manifest
import android.app.Activity
import android.app.AlertDialog
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.provider.Settings

/**
 * CAMERA and RECORD_AUDIO, asked for at run time. Calls work with either, both or neither
 * ([DeviceMedia] sends what it may), so a refusal is explained, never blocking.
 */
class Permissions(private val activity: Activity, private val saved: SavedSignIn) {
    /** What is not granted, as the user would name it. */
    fun missing(): List<String> = listOfNotNull(
        "camera".takeUnless { granted(Manifest.permission.CAMERA) },
        "microphone".takeUnless { granted(Manifest.permission.RECORD_AUDIO) },
    )

    /** What calls will lack, for the home screen; null when everything is granted. */
    fun explanation(): String? = when (missing().size) {
        0 -> null
        2 -> "Without the camera and microphone, calls only receive: the other side neither sees nor hears you."
        else -> if ("camera" in missing()) "Without the camera, your calls are audio-only."
        else "Without the microphone, the other side sees you but cannot hear you."
    }

    /** Asks on the first launch, so that an incoming call can be answered with both. */
    fun askOnce() {
        if (!saved.askedPermissions) ask()
    }

    /**
     * Explains first when Android says the user should be told why (they refused once);
     * opens the app's settings when Android will no longer ask (refused for good).
     */
    fun ask() {
        val wanted = RUNTIME.filterNot(::granted)
        if (wanted.isEmpty()) return
        val refusedForGood = saved.askedPermissions && wanted.none { activity.shouldShowRequestPermissionRationale(it) }
        when {
            refusedForGood -> openSettings()
            wanted.any { activity.shouldShowRequestPermissionRationale(it) } ->
                AlertDialog.Builder(activity)
                    .setTitle("Camera and microphone")
                    .setMessage(RATIONALE)
                    .setPositiveButton("Continue") { _, _ -> request(wanted) }
                    .setNegativeButton("Not now", null)
                    .show()
            else -> request(wanted)
        }
    }

    private fun request(wanted: List<String>) {
        saved.askedPermissions = true
        activity.requestPermissions(wanted.toTypedArray(), REQUEST_CODE)
    }

    private fun openSettings() {
        activity.startActivity(
            Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", activity.packageName, null)),
        )
    }

    private fun granted(permission: String) =
        activity.checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED

    companion object {
        const val REQUEST_CODE = 1
        private val RUNTIME = listOf(Manifest.permission.CAMERA, Manifest.permission.RECORD_AUDIO)
        private const val RATIONALE =
            "Duet sends your camera and microphone to the person you call, and only during a call. " +
                "You can allow one and not the other: calls then go audio-only or video-only."
    }
}
