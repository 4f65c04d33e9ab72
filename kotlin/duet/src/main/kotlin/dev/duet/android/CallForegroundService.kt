package dev.duet.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.Person
import android.app.PendingIntent
import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder

/**
 * Keeps an answered call alive with the app in the background, and lets it use the
 * microphone and camera there: Android 14 requires a foreground service of the types
 * phoneCall, microphone and camera (declared in the library's manifest, with their
 * FOREGROUND_SERVICE_* permissions), started while the app may still start one (from the
 * answer, a user action).
 */
class CallForegroundService : Service() {
    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val id = intent?.getStringExtra(DuetTelecom.EXTRA_ID) ?: ""
        val peer = intent?.getStringExtra(DuetTelecom.EXTRA_PEER) ?: ""
        val notification = ongoing(id, peer)
        if (Build.VERSION.SDK_INT >= 30) {
            startForeground(
                NOTIFICATION_ID, notification,
                ServiceInfo.FOREGROUND_SERVICE_TYPE_PHONE_CALL or ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE or
                    ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA,
            )
        } else {
            startForeground(NOTIFICATION_ID, notification)
        }
        return START_NOT_STICKY
    }

    /** The ongoing call's notification (call style, with hang up). */
    @Suppress("DEPRECATION")
    private fun ongoing(id: String, peer: String): Notification {
        val manager = getSystemService(NotificationManager::class.java)
        val builder = if (Build.VERSION.SDK_INT >= 26) {
            manager.createNotificationChannel(NotificationChannel(CHANNEL, "Ongoing calls", NotificationManager.IMPORTANCE_LOW))
            Notification.Builder(this, CHANNEL)
        } else {
            Notification.Builder(this)
        }
        builder.setSmallIcon(android.R.drawable.sym_call_outgoing)
            .setContentTitle(peer)
            .setCategory(Notification.CATEGORY_CALL)
            .setOngoing(true)
        if (Build.VERSION.SDK_INT >= 31) {
            val hangUp = Intent(this, CallActionReceiver::class.java)
                .setAction(CallNotifications.ACTION_DECLINE).putExtra(DuetTelecom.EXTRA_ID, id)
            val pending = PendingIntent.getBroadcast(
                this, id.hashCode(), hangUp, PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_IMMUTABLE,
            )
            builder.setStyle(Notification.CallStyle.forOngoingCall(Person.Builder().setName(peer).build(), pending))
        }
        return builder.build()
    }

    companion object {
        private const val CHANNEL = "duet_ongoing_calls"
        private const val NOTIFICATION_ID = 0x0d0e7

        internal fun start(context: Context, id: String, peer: String) {
            val intent = Intent(context, CallForegroundService::class.java)
                .putExtra(DuetTelecom.EXTRA_ID, id).putExtra(DuetTelecom.EXTRA_PEER, peer)
            if (Build.VERSION.SDK_INT >= 26) context.startForegroundService(intent) else context.startService(intent)
        }

        internal fun stop(context: Context) {
            context.stopService(Intent(context, CallForegroundService::class.java))
        }
    }
}
