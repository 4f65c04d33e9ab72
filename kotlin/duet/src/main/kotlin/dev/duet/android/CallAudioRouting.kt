package dev.duet.android

import android.media.AudioDeviceInfo
import android.media.AudioManager
import android.os.Build

/**
 * Where a call's audio plays: earpiece, speaker, a wired headset or Bluetooth, through the
 * framework's communication-device API (API 31+; [AudioManager.setCommunicationDevice]).
 * (twilio's audioswitch is not on Maven Central, which is where Duet's dependencies come
 * from.) On older systems only the speakerphone switch of [AudioDevice] applies.
 */
class CallAudioRouting(private val audioManager: AudioManager) {
    enum class Route { EARPIECE, SPEAKER, WIRED, BLUETOOTH }

    /** The routes available now (a headset plugged in, Bluetooth connected). */
    fun available(): Set<Route> =
        if (Build.VERSION.SDK_INT >= 31) audioManager.availableCommunicationDevices.mapNotNull { route(it.type) }.toSet() else emptySet()

    /** The route in use, if the system says. */
    fun current(): Route? =
        if (Build.VERSION.SDK_INT >= 31) audioManager.communicationDevice?.let { route(it.type) } else null

    /** Switches to [route]; false if it is not available. */
    fun select(route: Route): Boolean {
        if (Build.VERSION.SDK_INT < 31) return false
        val device = audioManager.availableCommunicationDevices.firstOrNull { route(it.type) == route } ?: return false
        return audioManager.setCommunicationDevice(device)
    }

    /** What a video call starts on: Bluetooth, else a wired headset, else the speaker. */
    fun selectDefault(): Route? {
        val available = available()
        val choice = listOf(Route.BLUETOOTH, Route.WIRED, Route.SPEAKER).firstOrNull { it in available } ?: return null
        return choice.takeIf { select(it) }
    }

    /** Gives the routing back to the system when the call ends. */
    fun release() {
        if (Build.VERSION.SDK_INT >= 31) audioManager.clearCommunicationDevice()
    }

    private fun route(type: Int): Route? = when (type) {
        AudioDeviceInfo.TYPE_BUILTIN_EARPIECE -> Route.EARPIECE
        AudioDeviceInfo.TYPE_BUILTIN_SPEAKER -> Route.SPEAKER
        AudioDeviceInfo.TYPE_WIRED_HEADSET, AudioDeviceInfo.TYPE_WIRED_HEADPHONES, AudioDeviceInfo.TYPE_USB_HEADSET -> Route.WIRED
        AudioDeviceInfo.TYPE_BLUETOOTH_SCO, AudioDeviceInfo.TYPE_BLE_HEADSET -> Route.BLUETOOTH
        else -> null
    }
}
