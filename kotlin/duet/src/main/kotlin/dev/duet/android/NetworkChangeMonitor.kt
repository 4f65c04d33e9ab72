package dev.duet.android

import android.net.ConnectivityManager
import android.net.LinkProperties
import android.net.Network
import dev.duet.VideoCall

/**
 * Tells the engine when the device's network changes, so that calls restart ICE at once
 * ([VideoCall.networkChanged]) instead of waiting seconds for ICE to find the old path dead:
 * the default network switching (Wi-Fi to cellular), going away, or its addresses changing.
 * Thin on purpose: the platform says "it changed", the engine decides what to do.
 *
 * Start it for as long as the [VideoCall] lives; [stop] unregisters it. Needs
 * `ACCESS_NETWORK_STATE`.
 */
class NetworkChangeMonitor(private val connectivity: ConnectivityManager, private val call: VideoCall) {
    private var current: Network? = null
    private var addresses: List<String>? = null
    private var registered = false

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) = changed(network, null)

        override fun onLinkPropertiesChanged(network: Network, linkProperties: LinkProperties) =
            changed(network, linkProperties.linkAddresses.map { it.toString() })

        override fun onLost(network: Network) {
            if (network == current) {
                current = null
                call.networkChanged()
            }
        }
    }

    /** The first report describes the network as it is: nothing has changed yet. */
    @Synchronized
    private fun changed(network: Network, newAddresses: List<String>?) {
        val first = current == null && addresses == null
        val switched = network != current
        val readdressed = newAddresses != null && addresses != null && newAddresses != addresses
        current = network
        if (newAddresses != null) addresses = newAddresses
        if (!first && (switched || readdressed)) call.networkChanged()
    }

    fun start() {
        if (registered) return
        connectivity.registerDefaultNetworkCallback(callback)
        registered = true
    }

    fun stop() {
        if (!registered) return
        connectivity.unregisterNetworkCallback(callback)
        registered = false
    }
}
